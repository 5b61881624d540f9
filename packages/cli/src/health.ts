/**
 * What a command checks after its run: the kernel warnings the machine logged (protocol
 * violations of a driver among them) and the invariant checker, its plugins' checkers
 * included. A command that finds either reports it and exits 1.
 * @module
 */

import { checkInvariants, type Machine } from '@mops/core';

/** Lines of each kind shown before "… and N more". */
const SHOWN = 10;

/** The checks of one machine after a run. */
export interface Health {
  /** No warning was logged and the invariant checker passed. */
  readonly ok: boolean;
  /** The first line of each warning, in the order logged. */
  readonly warnings: string[];
  /** The invariant checker's violations (empty when it passed). */
  readonly violations: string[];
}

/** Runs the checks on `m`. */
export function machineHealth(m: Machine): Health {
  const warnings = m.mem.warnings.map((w) => w.text.split('\n')[0]);
  const { violations } = checkInvariants(m);
  return { ok: warnings.length === 0 && violations.length === 0, warnings, violations };
}

/** The report of {@link machineHealth}: one line when all is well. */
export function healthLines(h: Health): string[] {
  if (h.ok) return ['checks: no kernel warning, and the invariant checker passed'];
  const out: string[] = [];
  if (h.warnings.length > 0) {
    // The same warning at many pages is one line with its count, in the order first logged.
    const counts = new Map<string, number>();
    for (const w of h.warnings) counts.set(w, (counts.get(w) ?? 0) + 1);
    out.push(
      `kernel warnings: ${h.warnings.length} (first lines; machine.mem.warnings has each in full, with its dump_page)`,
    );
    out.push(...listed([...counts].map(([w, n]) => (n > 1 ? `${n}× ${w}` : w))));
  }
  if (h.violations.length > 0) {
    const n = h.violations.length;
    out.push(`invariant checker: ${n} violation${n === 1 ? '' : 's'}`);
    out.push(...listed(h.violations));
  }
  return out;
}

function listed(items: string[]): string[] {
  const out = items.slice(0, SHOWN).map((x) => `  ${x}`);
  if (items.length > SHOWN) out.push(`  … and ${items.length - SHOWN} more`);
  return out;
}
