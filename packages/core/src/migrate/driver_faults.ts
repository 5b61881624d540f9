/**
 * How the VM reports what a driver's callback did wrong: the protocol_violation warning and
 * the text of odd values a callback returned or threw (internal to the migration core).
 * @module
 */

import { dumpPage } from '../debug/dump_page.js';
import { printable } from '../errors.js';
import type { Memory } from '../memory/mem.js';
import type { DefinedOps } from './movable.js';

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
