import { checkInvariants, GFP, type KernelGen, type Machine, MmBug, MopsError } from '@mops/core';
import { describe, expect, it } from 'vitest';
import { drive } from '../src/index.js';
import { fill, PROFILES, rig, thrown } from './helpers.js';

/**
 * The machine is in the state any kernel BUG leaves it in: halted by `bugErr`, refusing
 * kernel calls with E_HALTED that name the BUG, its state still readable.
 */
function expectHaltedBy(m: Machine, bugErr: unknown): void {
  expect(bugErr).toBeInstanceOf(MmBug);
  expect(m.mem.halted).toBe(bugErr);
  const reason = (bugErr as MmBug).reason;
  for (const call of [
    () => m.run(function* () {}),
    () => m.allocPages(GFP.KERNEL),
    () => m.mem.assertRunning(),
  ]) {
    const e = thrown(call);
    expect(e).toBeInstanceOf(MopsError);
    expect(e).toMatchObject({ code: 'E_HALTED' });
    expect((e as MopsError).message).toContain(reason);
  }
  expect(checkInvariants(m).violations).toEqual([]);
}

describe.each(PROFILES)('drive() and kernel BUGs, %s', (profile) => {
  it('a BUG with a page dump (bug()) in a plain call halts the machine', () => {
    const { m, pool } = rig(profile);
    const [h] = fill(pool, 1, 100);
    const mp = pool.drive(pool.objReadBegin(h));
    pool.objReadEnd(mp);
    const e = thrown(() => pool.objReadEnd(mp));
    expect(e).toMatchObject({
      reason: expect.stringMatching(/zspage_read_unlock: not read-locked/),
    });
    expectHaltedBy(m, e);
  });

  it('a lock BUG (read_unlock of a lock not read-held) in a driven generator halts the machine the same way', () => {
    const { m, pool } = rig(profile);
    fill(pool, 1, 100);
    function* unlockTwice(): KernelGen<number> {
      yield* pool.lock.readLock();
      pool.lock.readUnlock();
      pool.lock.readUnlock();
      return 0;
    }
    const e = thrown(() => pool.drive(unlockTwice()));
    expect(e).toMatchObject({
      reason: expect.stringMatching(/\(pool->lock\): not held for read$/),
    });
    expectHaltedBy(m, e);
  });

  it('a lock BUG raised while drive() closes a generator that would wait halts the machine', () => {
    const { m, pool } = rig(profile);
    fill(pool, 1, 100);
    function* waitThenBadUnlock(): KernelGen {
      try {
        yield { op: 'block', key: 'test:wait', what: 'a test wait' };
      } finally {
        // pool->lock is not held: read_unlock() of it is a BUG.
        pool.lock.readUnlock();
      }
    }
    const e = thrown(() => drive(waitThenBadUnlock(), 'test', m.mem));
    expect(e).toMatchObject({ reason: expect.stringMatching(/^BUG: .*\(pool->lock\): not held/) });
    expectHaltedBy(m, e);
  });

  it('a call that would wait is E_STATE and leaves the machine running', () => {
    const { m, pool } = rig(profile);
    function* waits(): KernelGen {
      yield { op: 'block', key: 'test:wait', what: 'a test wait' };
    }
    expect(thrown(() => pool.drive(waits()))).toMatchObject({ code: 'E_STATE' });
    expect(m.mem.halted).toBeUndefined();
    expect(m.allocPages(GFP.KERNEL)).toBeGreaterThanOrEqual(0);
  });
});
