/**
 * The state one migrate_pages() call carries through its passes, and the small steps every
 * profile shares: releasing a target and dropping the isolation reference.
 * @module
 */

import { folioPut } from '../buddy/free_page.js';
import { Errno } from '../errors.js';
import type { Memory } from '../memory/mem.js';
import type { Kctx } from '../page/lock.js';
import { PF_MEMALLOC } from '../sched/types.js';
import { NS } from '../vmstat/vmstat.js';
import type { PendingMigrate } from './callbacks.js';
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
}

export function releaseDst(c: Ctx, dst: number): void {
  if (c.putNew) c.putNew(dst);
  else folioPut(c.mem, dst);
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
