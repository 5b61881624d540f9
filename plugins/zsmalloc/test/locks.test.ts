import { checkInvariants } from '@mops/core';
import { describe, expect, it } from 'vitest';
import { isPinned } from '../src/pin.js';
import { expectClean, fill, PROFILES, pattern, rig } from './helpers.js';

describe.each(PROFILES)('a plain call that would wait for a task’s lock, %s', (profile) => {
  /** Runs `hold` in a task up to its 'hold' point; returns a function that lets it finish. */
  function holding(m: ReturnType<typeof rig>['m'], hold: () => Generator<{ op: string }, void>) {
    m.sched.manual = true;
    const t = m.sched.spawn('holder', hold);
    m.sched.runUntil(t, (p) => p.op === 'hold');
    return () => {
      m.sched.runToEnd(t);
      m.sched.manual = false;
    };
  }

  it('zsFree, zsMalloc: E_STATE, and the pool is as before (locks, handles, objects)', () => {
    const { m, pool } = rig(profile);
    const hs = [pool.zsMalloc(100), pool.zsMalloc(100), pool.zsMalloc(100)];
    pool.objWrite(hs[0], pattern(1, 100));
    const cls = pool.classFor(100);
    const release = holding(m, function* () {
      yield* cls.lock.lock();
      yield { op: 'hold' };
      cls.lock.unlock();
    });
    expect(() => pool.zsFree(hs[0])).toThrow(expect.objectContaining({ code: 'E_STATE' }));
    expect(() => pool.zsMalloc(100)).toThrow(expect.objectContaining({ code: 'E_STATE' }));
    expect(pool.lock.readers).toBe(0);
    release();
    expect(pool.objRead(hs[0])).toEqual(pattern(1, 100));
    pool.zsFree(hs[0]);
    expect(pool.zsMalloc(100)).toBeGreaterThan(0);
    pool.zsCompact(); // takes pool->lock for write: nobody was left holding it
    expectClean(m);
  });

  it('objWrite, objRead: E_STATE, no pool lock or pin left behind', () => {
    const { m, pool } = rig(profile);
    const hs = [pool.zsMalloc(100), pool.zsMalloc(100)];
    const slot = hs[0] % 2 ** 26;
    const zs = pool.zspageOf(pool.handles.pfn[slot])!;
    const release = holding(m, function* () {
      zs.lock.writeTrylock();
      yield { op: 'hold' };
      zs.lock.writeUnlock();
    });
    expect(() => pool.objWrite(hs[0], pattern(2, 100))).toThrow(
      expect.objectContaining({ code: 'E_STATE' }),
    );
    expect(() => pool.objRead(hs[0])).toThrow(expect.objectContaining({ code: 'E_STATE' }));
    expect([pool.lock.readers, isPinned(pool, slot)]).toEqual([0, false]);
    release();
    pool.objWrite(hs[0], pattern(2, 100));
    expect(pool.objRead(hs[0])).toEqual(pattern(2, 100));
    pool.zsCompact();
    expectClean(m);
  });

  it('zsCompact while a task holds a class lock: E_STATE before compacting anything', () => {
    const { m, pool } = rig(profile);
    const hs = fill(pool, 64 * 4, 1000);
    hs.forEach((h, i) => {
      if (i % 4 !== 0) pool.zsFree(h);
    });
    const allocated = pool.pagesAllocated;
    const cls = pool.classFor(100);
    const release = holding(m, function* () {
      yield* cls.lock.lock();
      yield { op: 'hold' };
      cls.lock.unlock();
    });
    expect(() => pool.zsCompact()).toThrow(/would wait for spin_lock/);
    expect([pool.pagesAllocated, pool.pagesCompacted]).toEqual([allocated, 0]);
    release();
    expect(pool.zsCompact()).toBeGreaterThan(0);
    expectClean(m);
  });

  it('zsFree while a task holds pool->lock for write: E_STATE, and the lock’s queue is clean', () => {
    const { m, pool } = rig(profile);
    const hs = [pool.zsMalloc(100), pool.zsMalloc(100)];
    const release = holding(m, function* () {
      yield* pool.lock.writeLock();
      yield { op: 'hold' };
      pool.lock.writeUnlock();
    });
    expect(() => pool.zsFree(hs[0])).toThrow(expect.objectContaining({ code: 'E_STATE' }));
    release();
    pool.zsFree(hs[0]);
    pool.zsCompact();
    expectClean(m);
  });
});

describe.each(PROFILES)(
  'object accessors and preemption, %s (zsmalloc-by-profile C10)',
  (profile) => {
    const atomic = profile !== 'v6.17';

    it(`sleeping while an object is mapped ${atomic ? 'is a sleep in atomic context' : 'is allowed (v6.17)'}`, () => {
      const { m, pool } = rig(profile);
      const h = pool.zsMalloc(100);
      const s = m.sched;
      s.spawn('reader', function* () {
        const map = yield* pool.objReadBegin(h);
        yield { op: 'block', key: 'wq', what: 'wait_event(wq)' };
        pool.objReadEnd(map);
      });
      s.spawn('waker', function* () {
        yield { op: 'wake_up' };
        s.wake('wq');
      });
      s.runAll('run-to-completion');
      // wait_event()'s might_sleep(), then schedule() with preemption off.
      expect(s.warnings.map((w) => w.kind)).toEqual(
        atomic ? ['sleep_in_atomic', 'scheduling_while_atomic'] : [],
      );
      expect(checkInvariants(m).ok).toBe(true);
    });
  },
);

// v6.0/v6.3 migration spins for the zspage lock (migrate_write_lock); the others trylock it.
describe.each(['v6.0', 'v6.3'] as const)(
  'a reader and a spinning writer on one CPU, %s',
  (profile) => {
    it('a reader keeps its CPU: a writer spinning on the same CPU waits for it, no lockup', () => {
      for (let seed = 1; seed <= 50; seed++) {
        const { m, pool } = rig(profile, '8M', seed);
        const zs = pool.zspageOf(pool.handles.pfn[pool.zsMalloc(100) % 2 ** 26])!;
        const s = m.sched;
        const order: string[] = [];
        s.spawn(
          'reader',
          function* () {
            yield* zs.lock.readLock();
            yield { op: 'copy' };
            order.push('read');
            zs.lock.readUnlock();
          },
          { cpu: 0 },
        );
        s.spawn(
          'migrator',
          function* () {
            yield* zs.lock.writeLockSpin();
            order.push('write');
            zs.lock.writeUnlock();
          },
          { cpu: 0 },
        );
        s.runAll('random');
        expect(order).toHaveLength(2);
      }
    });
  },
);
