/**
 * The page lock (mm/filemap.c): PG_locked as a sleeping bit lock with a wait queue, and
 * PG_waiters telling unlock whether anyone sleeps on it. The lock belongs to the folio.
 * @module
 */

import { bug } from '../debug/dump_page.js';
import type { Memory } from '../memory/mem.js';
import { mightSleep, type Scheduler } from '../sched/scheduler.js';
import type { BlockPoint, KernelGen } from '../sched/types.js';
import { LOCKED, PG } from './flags.js';

/** What kernel-context code needs: the memory and the scheduler of its machine. */
export interface Kctx {
  /** The machine's memory. */
  readonly mem: Memory;
  /** The machine's scheduler. */
  readonly sched: Scheduler;
}

const WAITERS = 1 << PG.waiters;

/** Wait-queue key of a folio's page lock. */
export function pageWaitKey(folio: number): string {
  return `page:${folio}`;
}

function folioOf(mem: Memory, pfn: number): number {
  const c = mem.pages.compound[pfn];
  return c < 0 ? pfn + c : pfn;
}

/** trylock_page() / folio_trylock(): atomic test-and-set of PG_locked; never sleeps. */
export function trylockPage(mem: Memory, pfn: number): boolean {
  const folio = folioOf(mem, pfn);
  const f = mem.pages.flags[folio];
  if (f & LOCKED) return false;
  mem.pages.flags[folio] = f | LOCKED;
  return true;
}

/** PageLocked() / folio_test_locked(). */
export function PageLocked(mem: Memory, pfn: number): boolean {
  return (mem.pages.flags[folioOf(mem, pfn)] & LOCKED) !== 0;
}

/**
 * lock_page() / folio_lock(): take PG_locked, sleeping on the folio's wait queue (with
 * PG_waiters set) while another task holds it.
 */
export function* lockPage(k: Kctx, pfn: number): KernelGen {
  const { mem, sched } = k;
  const folio = folioOf(mem, pfn);
  mightSleep(sched, 'lock_page');
  for (;;) {
    if (sched.preemptible) yield { op: 'lock_page', pfn: folio };
    const f = mem.pages.flags[folio];
    if (!(f & LOCKED)) {
      mem.pages.flags[folio] = f | LOCKED;
      return;
    }
    mem.pages.flags[folio] = f | WAITERS;
    const wait: BlockPoint = {
      op: 'block',
      key: pageWaitKey(folio),
      what: `lock_page pfn 0x${folio.toString(16)}`,
      pfn: folio,
    };
    yield wait;
  }
}

/**
 * The uncontended lock_page() of a task running alone: takes the lock without creating a
 * generator when nothing can interleave. Returns false when the caller must use
 * {@link lockPage} (another task may run, or the page is locked).
 */
export function lockPageFast(k: Kctx, pfn: number): boolean {
  const { mem, sched } = k;
  if (sched.preemptible) return false;
  mightSleep(sched, 'lock_page');
  return trylockPage(mem, pfn);
}

/**
 * unlock_page() / folio_unlock(): clear PG_locked and wake the sleepers. Unlocking an
 * unlocked page is an MmBug.
 */
export function unlockPage(k: Kctx, pfn: number): void {
  const p = k.mem.pages;
  const c = p.compound[pfn];
  const folio = c < 0 ? pfn + c : pfn;
  const f = p.flags[folio];
  if ((f & (LOCKED | WAITERS)) !== LOCKED) unlockPageSlow(k, folio, f);
  else p.flags[folio] = f & ~LOCKED;
}

/** {@link unlockPage} of a page that has waiters or is not locked. */
function unlockPageSlow(k: Kctx, folio: number, f: number): void {
  const mem = k.mem;
  if (!(f & LOCKED)) bug(mem, 'VM_BUG_ON_FOLIO(!folio_test_locked(folio))', folio);
  mem.pages.flags[folio] = f & ~(LOCKED | WAITERS);
  if (f & WAITERS) k.sched.wake(pageWaitKey(folio));
}
