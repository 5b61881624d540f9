/**
 * The VM's calls of a driver's `putback_page` (spec §3.2) and the checks after them.
 * @module
 */

import { MmBug } from '../errors.js';
import type { Memory } from '../memory/mem.js';
import { ISOLATED, LOCKED } from '../page/flags.js';
import type { KernelGen } from '../sched/types.js';
import {
  describe,
  isIterator,
  isThenable,
  lockDropped,
  protocolViolation,
  shown,
} from './driver_faults.js';
import type { DefinedOps } from './movable.js';

function putbackThrew(mem: Memory, d: DefinedOps, pfn: number, e: unknown): void {
  if (e instanceof MmBug) throw e;
  protocolViolation(mem, d.name, `putback_page threw (${describe(e)})`, pfn);
}

/**
 * After `putback_page`: the page must still be locked (the VM's lock) and the isolated flag
 * still set. `before` says whether it was when the call began, and `gen` whether the
 * callback is a generator (other tasks may run between its steps), so the report names
 * what is known: the callback, the callback or its owner while it ran, or someone before it.
 */
function checkPutback(
  mem: Memory,
  d: DefinedOps,
  pfn: number,
  before: boolean,
  gen: boolean,
): void {
  const f = mem.pages.flags[pfn];
  if (!(f & LOCKED)) lockDropped(mem, d, 'putback_page', 'the page', pfn);
  if (f & ISOLATED) return;
  const what = !before
    ? 'the isolated flag was cleared before putback_page, while the VM held the page isolated'
    : gen
      ? 'the isolated flag was cleared while putback_page ran (by the callback or its owner)'
      : 'putback_page cleared the isolated flag';
  protocolViolation(mem, d.name, `${what}; only the VM may touch it`, pfn);
}

/**
 * Calls a plain `putback_page` from code that cannot wait (the VM itself calls
 * {@link callPutbackPageGen}). A throw is recorded as a violation; the VM still clears the
 * isolated flag and drops its reference afterwards.
 */
export function callPutbackPage(mem: Memory, d: DefinedOps, pfn: number): void {
  const before = (mem.pages.flags[pfn] & ISOLATED) !== 0;
  try {
    mem.onDriverCall?.('putback_page', pfn);
    const r: unknown = d.ops.putbackPage(pfn);
    if (isThenable(r)) asyncPutback(mem, d, pfn, r);
  } catch (e) {
    putbackThrew(mem, d, pfn, e);
  }
  checkPutback(mem, d, pfn, before, false);
}

/**
 * {@link callPutbackPage} in a task: a generator `putback_page`, or the iterator a plain
 * one returned, runs with its scheduling points.
 */
export function* callPutbackPageGen(mem: Memory, d: DefinedOps, pfn: number): KernelGen<void> {
  const before = (mem.pages.flags[pfn] & ISOLATED) !== 0;
  let gen = d.putbackGen;
  try {
    mem.onDriverCall?.('putback_page', pfn);
    const r: unknown = d.ops.putbackPage(pfn);
    if (isIterator(r)) {
      gen = true;
      yield* r;
    } else if (isThenable(r)) asyncPutback(mem, d, pfn, r);
  } catch (e) {
    putbackThrew(mem, d, pfn, e);
  }
  checkPutback(mem, d, pfn, before, gen);
}

/** Async work would run after the VM moved on. */
function asyncPutback(mem: Memory, d: DefinedOps, pfn: number, r: unknown): void {
  protocolViolation(
    mem,
    d.name,
    `putback_page returned ${shown(r)}; it must finish before it returns`,
    pfn,
  );
}
