import { describe, expect, it } from 'vitest';
import { createMachine } from '../../src/index.js';
import { PROFILE_NAMES, PROFILES, type ProfileName } from '../../src/profile.js';
import { type KernelGen, RwLock, type Scheduler, type Task } from '../../src/sched/index.js';

/**
 * When the writer at the head of a queued rwlock's wait queue sets `_QW_WAITING`: at once
 * (4.15 on: v6.0, v6.3, v6.17), or, in v4.8, only once no writer holds the lock, so the lock
 * word is zero between the holder's write_unlock() and the head writer's next run.
 * @see kernel/locking/qrwlock.c queued_write_lock_slowpath()
 */

/** A task that takes `l` (for write if its name starts with `w`), holds it one point, drops it. */
function locker(s: Scheduler, l: RwLock, name: string, order: string[]): Task {
  const write = name.startsWith('w');
  return s.spawn(name, function* (): KernelGen {
    if (write) yield* l.writeLock();
    else yield* l.readLock();
    order.push(name);
    yield { op: 'hold' };
    order.push(`/${name}`);
    if (write) l.writeUnlock();
    else l.readUnlock();
  });
}

/**
 * w1 holds `pool->lock` for write and w2 waits at the head of the queue; then w1 drops the
 * lock and w2 has not run since.
 */
function afterUnlock(profile: ProfileName) {
  const s = createMachine({ memory: '4M', profile, seed: 1 }).sched;
  const l = new RwLock(s, 'pool->lock');
  const order: string[] = [];
  const w1 = locker(s, l, 'w1', order);
  const w2 = locker(s, l, 'w2', order);
  s.runUntil(w1, (p) => p.op === 'hold');
  s.runUntil(w2, (p) => p.op === 'block');
  expect(l.queued).toEqual([w2]);
  const bitWhileHeld = l.writerWaitingBit;
  s.runToEnd(w1);
  return { s, l, order, w2, bitWhileHeld };
}

const oldRule = (p: ProfileName) => p === 'v4.8';

/** A task that tries `try_` once, holds what it got for one point and drops it. */
function tryer(s: Scheduler, l: RwLock, write: boolean, got: boolean[]): Task {
  return s.spawn(write ? 'n-write' : 'n-read', function* (): KernelGen {
    const ok = write ? l.writeTrylock() : l.readTrylock();
    got.push(ok);
    yield { op: 'hold' };
    if (!ok) return;
    if (write) l.writeUnlock();
    else l.readUnlock();
  });
}

describe('queued rwlock: when the head writer sets _QW_WAITING, per profile', () => {
  it('the profile row: only v4.8 waits for the write holder first; the scheduler follows it', () => {
    for (const p of PROFILE_NAMES) {
      expect(PROFILES[p].qrwlockWaitingAtOnce).toBe(!oldRule(p));
      expect(createMachine({ memory: '4M', profile: p }).sched.qrwlockWaitingAtOnce).toBe(
        !oldRule(p),
      );
    }
  });

  it.each(PROFILE_NAMES)(
    '%s: write_trylock right after write_unlock, before the queued writer runs',
    (p) => {
      const { s, l, order, w2, bitWhileHeld } = afterUnlock(p);
      // 6.x: _QW_WAITING was set while w1 held the lock; v4.8: not yet.
      expect(bitWhileHeld).toBe(!oldRule(p));
      expect(l.writerWaitingBit).toBe(!oldRule(p));
      expect(l.writable).toBe(oldRule(p));
      const got: boolean[] = [];
      const n = tryer(s, l, true, got);
      s.runUntil(n, (q) => q.op === 'hold');
      expect(got).toEqual([oldRule(p)]);
      if (oldRule(p)) {
        // The queued writer runs, finds the lock write-held and keeps waiting, still
        // without _QW_WAITING, so readers' fast path waits only for the holder.
        expect(s.step(w2).op).toBe('block');
        expect(l.writerWaitingBit).toBe(false);
      }
      s.runAll();
      expect(order).toEqual(['w1', '/w1', 'w2', '/w2']);
      expect(l.writerWaitingBit).toBe(false);
      expect(l.writersWaiting).toBe(0);
    },
  );

  it.each(PROFILE_NAMES)(
    '%s: read_trylock in the gap; the queued writer then sets _QW_WAITING and waits for it',
    (p) => {
      const { s, l, order, w2 } = afterUnlock(p);
      const got: boolean[] = [];
      const n = tryer(s, l, false, got);
      s.runUntil(n, (q) => q.op === 'hold');
      expect(got).toEqual([oldRule(p)]);
      if (oldRule(p)) {
        expect(s.step(w2).op).toBe('block');
        // It ran, found no write holder: now it sets _QW_WAITING and waits for the reader.
        expect(l.writerWaitingBit).toBe(true);
        expect(l.readTrylock()).toBe(false);
        expect(l.writeTrylock()).toBe(false);
      }
      s.runAll();
      expect(order).toEqual(['w1', '/w1', 'w2', '/w2']);
      expect(l.readers).toBe(0);
      expect(l.writerWaitingBit).toBe(false);
    },
  );

  it.each(PROFILE_NAMES)(
    '%s: fast-path write_lock and read_lock by tasks that run in the gap',
    (p) => {
      for (const late of ['w3', 'r3']) {
        const { s, l, order } = afterUnlock(p);
        const t = locker(s, l, late, order);
        // v4.8: the late task's fast path succeeds; 6.x: it queues behind w2.
        expect(s.runUntil(t, (q) => q.op === 'hold' || q.op === 'block').op).toBe(
          oldRule(p) ? 'hold' : 'block',
        );
        s.runAll();
        expect(order).toEqual(
          oldRule(p)
            ? ['w1', '/w1', late, `/${late}`, 'w2', '/w2']
            : ['w1', '/w1', 'w2', '/w2', late, `/${late}`],
        );
        expect(l.writeLocked).toBe(false);
        expect(l.readers).toBe(0);
        expect(l.writerWaitingBit).toBe(false);
        expect(l.queued).toEqual([]);
      }
    },
  );

  it('v4.8: a queued writer that never finds the lock free sets no bit until it does', () => {
    const s = createMachine({ memory: '4M', profile: 'v4.8', seed: 1 }).sched;
    const l = new RwLock(s, 'pool->lock');
    const order: string[] = [];
    const w1 = locker(s, l, 'w1', order);
    const w2 = locker(s, l, 'w2', order);
    const r1 = locker(s, l, 'r1', order);
    s.runUntil(w1, (p) => p.op === 'hold');
    s.runUntil(w2, (p) => p.op === 'block');
    // A reader's fast path fails only on the write holder: it queues behind w2.
    s.runUntil(r1, (p) => p.op === 'block');
    expect(l.queued).toEqual([w2, r1]);
    expect(l.writerWaitingBit).toBe(false);
    s.runAll();
    expect(order).toEqual(['w1', '/w1', 'w2', '/w2', 'r1', '/r1']);
  });
});
