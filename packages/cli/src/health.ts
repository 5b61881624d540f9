/**
 * What a command checks after its run: the warnings the machine logged (the kernel's own,
 * and mops's reports of a driver breaking the movable_ops protocol) and the invariant
 * checker, its plugins' checkers included. A command that finds either reports it and
 * exits 1.
 * @module
 */

import { checkInvariants, type Machine, NO_PAGE_CONTENTS, warningHeadline } from '@mops/core';

/** Lines of each kind shown before "… and N more". */
const SHOWN = 10;

/**
 * The kind of warning that is mops's own report, not a kernel message: a driver broke the
 * movable_ops protocol (the VM goes on as the kernel would).
 */
export const PROTOCOL_VIOLATION = 'protocol_violation';

/** One logged warning, as `--json` writes it. */
export interface WarningDetail {
  /** `protocol_violation` (mops's), or the kernel's: `VM_WARN_ON_ONCE`, `bad_page`, `lockdep`… */
  readonly kind: string;
  /** The page involved, or null. */
  readonly pfn: number | null;
  /** The full text, its dump_page included. */
  readonly text: string;
}

/** The checks of one machine after a run. */
export interface Health {
  /** No warning was logged and the invariant checker passed. */
  readonly ok: boolean;
  /** The line each warning is known by (its first, or a lockdep report's title), in order. */
  readonly warnings: string[];
  /** Each warning in full, in the order logged. */
  readonly details: WarningDetail[];
  /** The invariant checker's violations (empty when it passed). */
  readonly violations: string[];
}

/** Runs the checks on `m`. */
export function machineHealth(m: Machine): Health {
  const details = m.mem.warnings.map((w) => ({ kind: w.kind, pfn: w.pfn ?? null, text: w.text }));
  const warnings = details.map((w) => warningHeadline(w.text));
  const { violations } = checkInvariants(m);
  return { ok: warnings.length === 0 && violations.length === 0, warnings, details, violations };
}

/** What the core says of page contents used on a machine built without them. */

/**
 * The report of {@link machineHealth}: one line when all is well. `more` says where each
 * warning is in full (the command's option, or the file it wrote).
 */
export function healthLines(h: Health, more: string): string[] {
  if (h.ok) return ['checks: no kernel warning, and the invariant checker passed'];
  const out: string[] = [];
  if (h.details.length > 0) {
    // Per kind, mops's own reports apart from the kernel's.
    const kinds = new Map<string, number>();
    for (const w of h.details) kinds.set(w.kind, (kinds.get(w.kind) ?? 0) + 1);
    const named = [...kinds].map(
      ([k, n]) =>
        `${n} ${k} (${k === PROTOCOL_VIOLATION ? "mops's checks of the movable_ops protocol" : "the kernel's"})`,
    );
    const counted =
      named.length === 1
        ? named[0]
        : `${h.details.length}, of which ${named.slice(0, -1).join(', ')} and ${named.at(-1)}`;
    out.push(`warnings: ${counted}; first lines below, ${more}`);
    // The same warning at many pages is one line with its count, in the order first logged.
    const counts = new Map<string, number>();
    for (const w of h.details) {
      const line = `[${w.kind}] ${warningHeadline(w.text)}`;
      counts.set(line, (counts.get(line) ?? 0) + 1);
    }
    out.push(...listed([...counts].map(([w, n]) => (n > 1 ? `${n}× ${w}` : w))));
    if (h.details.some((w) => w.text.split('\n')[0].includes(NO_PAGE_CONTENTS)))
      out.push(
        '  a driver used page contents this machine was built without: a plugin that keeps data in pages says needsContents: true in its manifest',
      );
  }
  if (h.violations.length > 0) {
    const n = h.violations.length;
    out.push(`invariant checker: ${n} violation${n === 1 ? '' : 's'}`);
    out.push(...listed(h.violations));
  }
  return out;
}

/**
 * Where the warnings are in full, for {@link healthLines}: the file `--warnings` wrote
 * (`given`), or how to have them written (`usage`, e.g. `--warnings FILE`).
 */
export function warningsPointer(given: string | undefined, usage: string): string {
  const what = 'each in full, with its dump_page';
  if (given === undefined) return `${usage} writes ${what}`;
  return `${what}, ${given === '-' ? 'on standard output' : `in ${given}`}`;
}

/**
 * Every warning in full, as `--warnings` writes them: a heading with its number, kind and
 * page, then its text (the dump_page included), a blank line between two.
 */
export function warningsText(h: Health): string {
  const n = h.details.length;
  return h.details
    .map(
      (w, i) =>
        `warning ${i + 1} of ${n}: ${w.kind}${w.pfn === null ? '' : `, pfn 0x${w.pfn.toString(16)}`}\n${w.text.replace(/\n*$/, '')}\n`,
    )
    .join('\n');
}

function listed(items: string[]): string[] {
  const out = items.slice(0, SHOWN).map((x) => `  ${x}`);
  if (items.length > SHOWN) out.push(`  … and ${items.length - SHOWN} more`);
  return out;
}
