/**
 * The state one migrate_pages() call carries through its passes, and the small steps every
 * profile shares: releasing a target and dropping the isolation reference.
 * @module
 */

import { folioPut } from '../buddy/free_page.js';
import { Errno, MmBug, MopsError, valueKind } from '../errors.js';
import type { Memory } from '../memory/mem.js';
import { ISOLATED } from '../page/flags.js';
import type { Kctx } from '../page/lock.js';
import { PF_MEMALLOC } from '../sched/types.js';
import { NS } from '../vmstat/vmstat.js';
import type { PendingMigrate } from './callbacks.js';
import { describe } from './driver_faults.js';
import type { DefinedOps } from './movable.js';
import { MR, type NewFolio, type PutNewFolio } from './types.js';

export const EAGAIN = Errno.EAGAIN;
export const ENOMEM = Errno.ENOMEM;
/** MIGRATEPAGE_UNMAP: internal "src and dst locked, ready for the move phase". */
export const UNMAP = 1;

export interface Ctx {
  /** A target held across a sleep in the unmap step's fast path. */
  pendingDst: number;
  /** The link dst had on the pairing list before the move step took it off. */
  pendingPrev: number;
  /** The ops of a move step the fast path hands over to `moveCall`. */
  pendingOps: DefinedOps | null;
  /** The driver call of that step. */
  readonly pendingCall: PendingMigrate;
  readonly k: Kctx;
  readonly mem: Memory;
  readonly getNew: NewFolio;
  readonly putNew: PutNewFolio | undefined;
  readonly reason: number;
  /** What the caller's getNew or putNew did wrong, if anything: thrown when the run ends. */
  fault: MopsError | undefined;
}

/**
 * get_new_folio(): the caller's getNew for `src`. A result that is not -1 (no memory) nor
 * a freshly allocated order-0 page (allocated, no owner, not isolated, not `src`; another's
 * lock or reference on it is a race the VM handles), or a throw, is the caller's mistake:
 * it is recorded (thrown when the run ends, see {@link Ctx.fault}) and the run goes on as
 * if memory were short, so that every page ends where -ENOMEM leaves it.
 */
export function newTarget(c: Ctx, src: number): number {
  let dst: unknown;
  try {
    dst = c.getNew(src);
  } catch (e) {
    if (e instanceof MmBug) throw e;
    return callerFault(c, 'getNew', `threw ${describe(e)}`);
  }
  if (dst === -1) return -1;
  const p = c.mem.pages;
  if (
    typeof dst === 'number' &&
    Number.isInteger(dst) &&
    dst >= 0 &&
    dst < c.mem.nrPages &&
    dst !== src &&
    p.refcount[dst] >= 1 &&
    p.compound[dst] === 0 &&
    p.mapping[dst] === 0 &&
    p.type[dst] === -1 &&
    !(p.flags[dst] & ISOLATED)
  )
    return dst;
  return callerFault(
    c,
    'getNew',
    `returned ${valueKind(dst)} for pfn ${src}: it returns a freshly allocated order-0 page (allocated, nobody's) other than src, or -1 when there is no memory`,
  );
}

function callerFault(c: Ctx, field: 'getNew' | 'putNew', what: string): number {
  c.fault ??= new MopsError('E_USAGE', `migrate_pages: ${field} ${what}`, field);
  return -1;
}

/**
 * put_new_folio(): give back a target the run did not use, through the caller's putNew
 * or, without one, folio_put(). A putNew that throws is recorded (see {@link Ctx.fault});
 * the target is freed if it still holds the VM's reference.
 */
export function releaseDst(c: Ctx, dst: number): void {
  if (!c.putNew) {
    folioPut(c.mem, dst);
    return;
  }
  try {
    c.putNew(dst);
  } catch (e) {
    if (e instanceof MmBug) throw e;
    callerFault(c, 'putNew', `threw ${describe(e)}`);
    if (c.mem.pages.refcount[dst] === 1) folioPut(c.mem, dst);
  }
}

/**
 * migrate_folio_done(): drop the isolation reference of a migrated (or freed) src — except
 * for a memory-failure migration from v6.0 on, whose caller releases the page when it
 * poisons it (page_handle_poison).
 */
export function migrateFolioDone(c: Ctx, src: number): void {
  if (c.reason === MR.MEMORY_FAILURE && c.mem.profile.memoryFailureKeepsSrc) return;
  const mem = c.mem;
  folioPut(mem, src);
  // Someone still holds src: a task that drops it later, or a leaked reference.
  if (mem.pages.refcount[src] !== 0) mem.migratedHeld.add(src);
}

/**
 * MopsError('E_USAGE') unless `list` is a list of `mem` (from `mem.pages.lists.newList()`,
 * not freed): an id that names no list would walk links of no list.
 */
export function checkList(mem: Memory, list: unknown, fn: string, field: string): void {
  if (!mem.pages.lists.isList(list))
    throw new MopsError(
      'E_USAGE',
      `${fn}: ${field} must be a list of this machine (from mem.pages.lists.newList()), got ${valueKind(list)}`,
      field,
    );
}

export function mayNotSleep(c: Ctx): boolean {
  const t = c.k.sched.current;
  return t !== undefined && (t.flags & PF_MEMALLOC) !== 0;
}

/**
 * v4.8: migrate_pages() and putback_movable_pages() subtract a page compaction counted in
 * nr_isolated_file (see Memory.countedIsolated).
 */
export function uncountIsolated(mem: Memory, pfn: number): void {
  if (mem.profile.movableCountedIsolated && mem.countedIsolated.delete(pfn))
    mem.vmstat.node[NS.nr_isolated_file]--;
}
