import { describe, expect, it } from 'vitest';
import {
  GFP,
  type KernelGen,
  lockPage,
  PAGE_LOCK_UNFAIRNESS,
  PageLocked,
  PG,
  PROFILE_NAMES,
  type ProfileName,
  pageWaitKey,
  trylockPage,
  unlockPage,
} from '../../src/index.js';
import { smallMachine } from '../helpers.js';

const WAITERS = 1 << PG.waiters;

function setup(profile: ProfileName) {
  const m = smallMachine('4M', { profile });
  const pfn = m.allocPages(GFP.KERNEL, 0);
  const k = { mem: m.mem, sched: m.sched };
  return { m, s: m.sched, k, pfn };
}

/** A task that takes the page lock with trylock, holds it until stepped on, and unlocks. */
function holder(k: ReturnType<typeof setup>['k'], pfn: number) {
  return function* (): KernelGen {
    expect(trylockPage(k.mem, pfn)).toBe(true);
    yield { op: 'hold' };
    unlockPage(k, pfn);
  };
}

/** lock_page(), a critical section point, unlock_page(); records who got the lock. */
function locker(k: ReturnType<typeof setup>['k'], pfn: number, name: string, order: string[]) {
  return function* (): KernelGen {
    yield* lockPage(k, pfn);
    order.push(name);
    yield { op: `cs${name}` };
    unlockPage(k, pfn);
  };
}

/**
 * wait_on_page_locked() as zsmalloc's lockZspage and the explorer's migration-entry wait do
 * it: set PG_waiters and sleep on the page's wait queue (a non-exclusive waiter).
 */
function sharedWaiter(k: ReturnType<typeof setup>['k'], pfn: number, log: string[]) {
  return function* (): KernelGen {
    while (PageLocked(k.mem, pfn)) {
      k.mem.pages.flags[pfn] |= WAITERS;
      yield { op: 'block', key: pageWaitKey(pfn), what: `wait_on_page_locked pfn ${pfn}` };
    }
    log.push('W proceeds');
  };
}

/** A task that stays live until the end, so that a task blocking is not a deadlock. */
function* idle(): KernelGen {
  yield { op: 'idle' };
}

describe.each(PROFILE_NAMES)('page lock wake-ups (%s)', (profile) => {
  it('an unlock wakes only the first of two lock_page() sleepers; they lock in queue order', () => {
    const { s, k, pfn } = setup(profile);
    const order: string[] = [];
    const h = s.spawn('holder', holder(k, pfn));
    const a = s.spawn('A', locker(k, pfn, 'A', order));
    const b = s.spawn('B', locker(k, pfn, 'B', order));
    s.runUntil(h, (p) => p.op === 'hold');
    s.runUntil(a, (p) => p.op === 'block');
    s.runUntil(b, (p) => p.op === 'block');
    s.runToEnd(h);
    expect(a.state).toBe('runnable');
    expect(b.state).toBe('blocked');
    expect(s.hasWaiters(pageWaitKey(pfn))).toBe(true);
    expect(k.mem.pages.flags[pfn] & WAITERS).not.toBe(0); // B still sleeps
    s.runUntil(a, (p) => p.op === 'csA');
    expect(b.state).toBe('blocked');
    s.runToEnd(a); // A's unlock wakes B
    expect(b.state).toBe('runnable');
    s.runAll();
    expect(order).toEqual(['A', 'B']);
    expect(k.mem.pages.flags[pfn] & (WAITERS | (1 << PG.locked))).toBe(0);
  });

  it('a newcomer may still take the lock between the wake-up and the woken sleeper', () => {
    const { s, k, pfn } = setup(profile);
    const order: string[] = [];
    const h = s.spawn('holder', holder(k, pfn));
    const a = s.spawn('A', locker(k, pfn, 'A', order));
    s.spawn('idle', idle);
    s.runUntil(h, (p) => p.op === 'hold');
    s.runUntil(a, (p) => p.op === 'block');
    s.runToEnd(h);
    expect(a.state).toBe('runnable');
    expect(trylockPage(k.mem, pfn)).toBe(true); // the fast path of a newcomer
    s.runUntil(a, (p) => p.op === 'block'); // A lost and queued again
    expect(a.state).toBe('blocked');
    unlockPage(k, pfn);
    expect(a.state).toBe('runnable');
    s.runAll();
    expect(order).toEqual(['A']);
  });

  it('a wait_on_page_locked() sleeper queued behind a lock_page() one', () => {
    const { s, k, pfn } = setup(profile);
    const order: string[] = [];
    const log: string[] = [];
    const h = s.spawn('holder', holder(k, pfn));
    const a = s.spawn('A', locker(k, pfn, 'A', order));
    const w = s.spawn('W', sharedWaiter(k, pfn, log));
    s.runUntil(h, (p) => p.op === 'hold');
    s.runUntil(a, (p) => p.op === 'block');
    s.runUntil(w, (p) => p.op === 'block');
    s.runToEnd(h);
    expect(a.state).toBe('runnable');
    if (profile === 'v4.8') {
      // prepare_to_wait() queued W at the head: the unlock wakes it with A.
      expect(w.state).toBe('runnable');
      s.runToEnd(w);
      expect(log).toEqual(['W proceeds']);
    } else {
      // folio_wake_bit() stops at A, the first exclusive sleeper: W sleeps until A unlocks.
      expect(w.state).toBe('blocked');
      expect(k.mem.pages.flags[pfn] & WAITERS).not.toBe(0);
      s.runUntil(a, (p) => p.op === 'csA');
      expect(w.state).toBe('blocked');
      s.runToEnd(a);
      expect(w.state).toBe('runnable');
    }
    s.runAll();
    expect(order).toEqual(['A']);
    expect(log).toEqual(['W proceeds']);
  });

  it(`a waiter that keeps losing the lock is handed it after ${PAGE_LOCK_UNFAIRNESS} steals from 5.9 on`, () => {
    const { s, k, pfn } = setup(profile);
    const order: string[] = [];
    expect(trylockPage(k.mem, pfn)).toBe(true); // taken from outside the tasks
    const a = s.spawn('A', locker(k, pfn, 'A', order));
    const b = s.spawn('idle', idle);
    s.runUntil(a, (p) => p.op === 'block');
    let steals = 0;
    for (let i = 0; i < 20; i++) {
      unlockPage(k, pfn); // wakes A (or hands it the lock)
      expect(a.state).toBe('runnable');
      if (!trylockPage(k.mem, pfn)) break; // a lock/unlock loop relocks before A runs
      steals++;
      s.runUntil(a, (p) => p.op === 'block'); // A lost: it queues again
    }
    if (profile === 'v4.8') {
      expect(steals).toBe(20); // no handoff: A can lose forever
      unlockPage(k, pfn);
    } else {
      expect(steals).toBe(PAGE_LOCK_UNFAIRNESS);
      expect(PageLocked(k.mem, pfn)).toBe(true); // set for A by the unlock
    }
    s.runUntil(a, (p) => p.op === 'csA'); // A holds the lock, without sleeping again
    expect(order).toEqual(['A']);
    s.runAll();
    expect(b.state).toBe('done');
    expect(PageLocked(k.mem, pfn)).toBe(false);
  });
});
