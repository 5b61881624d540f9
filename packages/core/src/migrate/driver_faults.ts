/**
 * How the VM reports what a driver's callback did wrong: the protocol_violation warning and
 * the text of odd values a callback returned or threw (internal to the migration core).
 * @module
 */

import { dumpPage } from '../debug/dump_page.js';
import { printable } from '../errors.js';
import type { Memory } from '../memory/mem.js';
import type { KernelGen } from '../sched/types.js';
import { type DefinedOps, pageMovableLocked, pageMovableOps } from './movable.js';

/** Records a protocol violation by a driver: a warning event with the page dump. */
export function protocolViolation(mem: Memory, driver: string, what: string, pfn: number): void {
  mem.warn('protocol_violation', `${driver}: ${what}\n${dumpPage(mem, pfn, what)}`, pfn);
}

/** A thrown value as a violation shows it. */
export function describe(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : shown(e);
}

/**
 * A value a callback returned or threw, as a message shows it: strings quoted, bigints with
 * their `n`, and objects that cannot be turned into a string by their tag. A Promise has
 * its rejection handled (a violation is recorded for it, not an unhandled rejection).
 */
export function shown(v: unknown): string {
  if (isThenable(v)) {
    (v as PromiseLike<unknown>).then(undefined, () => {});
    return 'a Promise';
  }
  return printable(v);
}

/** Whether a callback handed back an iterator (a plain function returning a generator). */
export function isIterator(r: unknown): r is KernelGen<unknown> {
  return (
    typeof r === 'object' && r !== null && typeof (r as { next?: unknown }).next === 'function'
  );
}

/** Whether `v` is a Promise or another thenable. */
export function isThenable(v: unknown): boolean {
  return (
    (typeof v === 'object' || typeof v === 'function') &&
    v !== null &&
    typeof (v as { then?: unknown }).then === 'function'
  );
}

/** A callback unlocked a page the VM locked before calling it. */
export function lockDropped(
  mem: Memory,
  d: DefinedOps,
  callback: string,
  which: string,
  pfn: number,
) {
  protocolViolation(
    mem,
    d.name,
    `${callback} unlocked ${which}, whose lock the VM holds across the call and releases itself`,
    pfn,
  );
}

/**
 * v4.8–v6.3 (spec §2.5, §4.1): an isolated page left with only the VM's isolation reference
 * that is still PageMovable. Its owner holds a reference for as long as the page is its
 * movable page, and releases it only by __ClearPageMovable under the page lock, then
 * dropping its references; this one dropped them and left the page PageMovable, so the VM
 * calls putback_page or migrate_page for a page the driver gave up (or, on the "freed from
 * under us" shortcut, frees a page the driver still lists as movable). The kernel cannot
 * tell; mops reports the driver's protocol violation, and the VM goes on as the kernel
 * does. `step` names the VM's step that found it.
 */
export function ownerDroppedStillMovable(mem: Memory, pfn: number, step: string): void {
  if (mem.pages.refcount[pfn] !== 1 || !mem.profile.ownerMayRelease) return;
  if (!pageMovableLocked(mem, pfn)) return;
  protocolViolation(
    mem,
    pageMovableOps(mem, pfn)?.name ?? 'driver',
    `the owner dropped its references to an isolated page but left it PageMovable (only the VM's isolation reference is left at ${step}); release under the page lock with __ClearPageMovable first, then drop the references`,
    pfn,
  );
}
