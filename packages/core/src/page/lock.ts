/**
 * The page lock (mm/filemap.c): PG_locked as a sleeping bit lock with a wait queue, and
 * PG_waiters telling unlock whether anyone sleeps on it. The lock belongs to the folio.
 * @module
 */

import { assertText, bug } from '../debug/dump_page.js';
import type { Memory } from '../memory/mem.js';
import { mightSleep, type Scheduler } from '../sched/scheduler.js';
import { BLOCK_CHECKED, WQ_CUSTOM, WQ_DONE, WQ_EXCLUSIVE } from '../sched/task.js';
import type { BlockPoint, KernelGen } from '../sched/types.js';
import { LOCKED, PG } from './flags.js';

/**
 * What kernel-context code needs: the memory and the scheduler of its machine. A
 * {@link Machine} is one (pass `m`), and so is any `{ mem, sched }` pair, such as the `k` a
 * driver keeps.
 *
 * The primitives that may sleep ({@link lockPage}) or wake sleepers ({@link unlockPage})
 * take a Kctx, because both go through the scheduler's wait queues; those that never sleep
 * nor wake anyone ({@link trylockPage}, `getPage`, `putPage`, the flag tests) take only
 * the {@link Memory} (`m.mem`, `k.mem`). The machine's methods `m.putPage(pfn)`,
 * `m.freePages(pfn, order)` and `m.allocPages(gfp, order, owner)` are shorthands for the
 * memory-only ones that also check their arguments; the page lock has no such method:
 * pass the machine itself (`lockPage(m, pfn)`, `unlockPage(m, pfn)`).
 */
export interface Kctx {
  /** The machine's memory. */
  readonly mem: Memory;
  /** The machine's scheduler. */
  readonly sched: Scheduler;
}

const WAITERS = 1 << PG.waiters;

/**
 * Wait-queue key of a folio's page lock: what its lock_page() sleepers wait on.
 * @param folio the head pfn (the folio holding the page)
 * @returns the scheduler's wait key, for `sched.hasWaiters()` and the like
 */
export function pageWaitKey(folio: number): string {
  return `page:${folio}`;
}

function folioOf(mem: Memory, pfn: number): number {
  const c = mem.pages.compound[pfn];
  return c < 0 ? pfn + c : pfn;
}

/**
 * trylock_page() / folio_trylock(): atomic test-and-set of PG_locked. It never sleeps and
 * wakes no one, so it takes only the memory (`m.mem`, `k.mem`) and may be called anywhere,
 * under a spinlock too; to wait for the lock, use {@link lockPage}.
 * @param mem the machine's memory (`m.mem`, `k.mem`): no scheduler is needed
 * @param pfn any page of the folio (the lock is the folio's: a tail locks its head)
 * @returns true if this call took the lock (the caller must {@link unlockPage} it); false
 *   if it was held already
 * @see include/linux/pagemap.h folio_trylock()
 */
export function trylockPage(mem: Memory, pfn: number): boolean {
  const folio = folioOf(mem, pfn);
  const f = mem.pages.flags[folio];
  if (f & LOCKED) return false;
  mem.pages.flags[folio] = f | LOCKED;
  return true;
}

/**
 * PageLocked() / folio_test_locked(): whether the folio's PG_locked is set (by anyone).
 * @param mem the machine's memory
 * @param pfn any page of the folio
 * @returns true while the folio is locked
 */
export function PageLocked(mem: Memory, pfn: number): boolean {
  return (mem.pages.flags[folioOf(mem, pfn)] & LOCKED) !== 0;
}

/**
 * lock_page() / folio_lock(): take PG_locked, sleeping on the folio's wait queue (with
 * PG_waiters set) while another task holds it. The sleeper is an exclusive waiter: an unlock
 * wakes one of them at a time (see {@link unlockPage}); a woken one retries and may lose the
 * lock to a task that took it first, and then queues again at the tail. Since 5.9
 * (`pageLockWake: 'v5.9'`) a waiter that lost it {@link PAGE_LOCK_UNFAIRNESS} times is
 * handed the lock by the next unlock instead.
 *
 * It may sleep, so it takes a {@link Kctx} (the machine `m`, or `{ mem, sched }`) rather
 * than the memory: sleeping queues the current task on the folio's wait queue in the
 * scheduler. It is a generator: call it as `yield* lockPage(k, pfn)` from a task (the body
 * given to `m.run()`), never under a spinlock or with preemption off (might_sleep() reports
 * "sleeping function called from invalid context" there).
 * @param k the machine (or `{ mem, sched }`): the memory holding the page and the scheduler
 *   the caller sleeps in
 * @param pfn any page of the folio (the lock is the folio's); the generator ends with the
 *   lock held by the caller, who releases it with {@link unlockPage}
 * @param op what the caller's release calls here, naming the scheduling points and the
 *   sleep: `'lock_page'` (the default) or `'folio_lock'` (the VM's steps pass their
 *   release's `Profile.pointNames.lock`)
 * @see mm/filemap.c __folio_lock(), folio_wait_bit_common(); v4.8: __lock_page(),
 * kernel/sched/wait.c __wait_on_bit_lock()
 */
export function* lockPage(k: Kctx, pfn: number, op = 'lock_page'): KernelGen {
  const { mem, sched } = k;
  const folio = folioOf(mem, pfn);
  mightSleep(sched, op);
  if (sched.preemptible) yield { op, pfn: folio };
  const f = mem.pages.flags[folio];
  if (!(f & LOCKED)) {
    mem.pages.flags[folio] = f | LOCKED;
    return;
  }
  yield* lockPageSlow(k, folio, op);
}

/**
 * sysctl_page_lock_unfairness: how many times a lock_page() sleeper may lose the lock to
 * another task before an unlock hands it over (5.9 on).
 * @see mm/filemap.c sysctl_page_lock_unfairness
 */
export const PAGE_LOCK_UNFAIRNESS = 5;

/** The sleeping part of {@link lockPage}: the folio was locked when it looked. */
function* lockPageSlow(k: Kctx, folio: number, op: string): KernelGen {
  const { mem, sched } = k;
  const flags = mem.pages.flags;
  const handoff = mem.profile.pageLockWake === 'v5.9';
  const wait: BlockPoint = {
    op: 'block',
    key: pageWaitKey(folio),
    what: `${op} pfn 0x${folio.toString(16)}`,
    pfn: folio,
  };
  let unfairness = PAGE_LOCK_UNFAIRNESS;
  for (;;) {
    let wqFlags = WQ_EXCLUSIVE;
    if (handoff && --unfairness < 0) wqFlags |= WQ_CUSTOM;
    // Under the queue lock: PG_waiters first, then one more test_and_set, then queue.
    const f = flags[folio] | WAITERS;
    if (!(f & LOCKED)) {
      flags[folio] = f | LOCKED;
      return;
    }
    flags[folio] = f;
    const me = sched.current;
    if (me !== undefined) {
      me.nextWaitFlags = wqFlags;
      // lockPage() ran might_sleep() already.
      me.blockMode = BLOCK_CHECKED;
    }
    yield wait;
    // Woken: the unlock may have taken the lock for us (WQ_FLAG_DONE).
    if (me !== undefined && me.waitFlags & WQ_DONE) return;
    if (sched.preemptible) yield { op, pfn: folio };
    const g = flags[folio];
    if (!(g & LOCKED)) {
      flags[folio] = g | LOCKED;
      return;
    }
  }
}

/**
 * The uncontended lock_page() of a task running alone: takes the lock without creating a
 * generator when nothing can interleave.
 * @param k the machine (or `{ mem, sched }`)
 * @param pfn any page of the folio
 * @returns true if the lock is now the caller's; false when the caller must use
 *   {@link lockPage} (another task may run, the page is locked, or the caller holds a
 *   spinlock, which lockPage reports under the caller's name for the lock), nothing having
 *   changed
 */
export function lockPageFast(k: Kctx, pfn: number): boolean {
  const { mem, sched } = k;
  if (sched.preemptible) return false;
  const t = sched.current;
  if (t !== undefined && t.atomicDepth > 0) return false;
  return trylockPage(mem, pfn);
}

/**
 * unlock_page() / folio_unlock(): clear PG_locked and, when PG_waiters is set, wake the
 * sleepers as the profile's release does (`pageLockWake`):
 * - `'v4.8'` (wake_up_page(), __wake_up(wq, TASK_NORMAL, 1, key)): every non-exclusive
 *   sleeper (wait_on_page_locked(), which 4.8 queues at the head) and the first lock_page()
 *   sleeper;
 * - `'v5.9'` (folio_wake_bit(), wake_page_function()): the sleepers in queue order up to and
 *   including the first lock_page() one, so a non-exclusive sleeper queued behind it sleeps
 *   on; when that one is a handoff waiter (WQ_FLAG_CUSTOM) the unlock sets PG_locked for it.
 *
 * PG_waiters stays set while sleepers remain.
 *
 * It never sleeps, but it may wake sleepers, so it takes a {@link Kctx} (the machine `m`,
 * or `{ mem, sched }`): waking goes through the scheduler's wait queue of the folio. It is a
 * plain function, callable from a task or outside one.
 * @param k the machine (or `{ mem, sched }`): the memory holding the page and the scheduler
 *   whose sleepers it wakes
 * @param pfn any page of the folio, locked by the caller
 * @throws {@link MmBug} `VM_BUG_ON_FOLIO(!folio_test_locked(folio))` (v4.8:
 *   `VM_BUG_ON_PAGE(!PageLocked(page))`) when the folio is not locked; the machine halts
 * @see mm/filemap.c folio_unlock(), folio_wake_bit(); v4.8: unlock_page(), wake_up_page()
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
  const { mem, sched } = k;
  if (!(f & LOCKED))
    bug(
      mem,
      assertText(
        mem,
        'VM_BUG_ON_FOLIO(!folio_test_locked(folio))',
        'VM_BUG_ON_PAGE(!PageLocked(page))',
      ),
      folio,
    );
  const flags = mem.pages.flags;
  flags[folio] = f & ~LOCKED;
  if (!(f & WAITERS)) return;
  const key = pageWaitKey(folio);
  if (mem.profile.pageLockWake === 'v5.9') {
    // wake_page_function(): an exclusive sleeper ends the walk; a handoff one gets the lock.
    sched.wakeUp(key, 1, (t) => {
      const wf = t.waitFlags;
      if (wf & WQ_EXCLUSIVE) {
        const g = flags[folio];
        if (g & LOCKED) return -1;
        if (wf & WQ_CUSTOM) {
          flags[folio] = g | LOCKED;
          t.waitFlags = wf | WQ_DONE;
        }
      }
      return 1;
    });
  } else {
    // wake_bit_function() with nr_exclusive 1; the non-exclusive sleepers, queued at the
    // head in 4.8, are all reached before the first exclusive one.
    let exclusiveWoken = false;
    sched.wakeUp(key, 0, (t) => {
      if (flags[folio] & LOCKED) return 0;
      if (t.waitFlags & WQ_EXCLUSIVE) {
        if (exclusiveWoken) return 0;
        exclusiveWoken = true;
      }
      return 1;
    });
  }
  if (!sched.hasWaiters(key)) flags[folio] &= ~WAITERS;
}
