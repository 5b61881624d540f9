import {
  allocPages,
  folioPut,
  GFP,
  MIGRATE_MODE,
  migratePages,
  type SchedPoint,
  type Yielded,
} from '@mops/core';
import { describe, expect, it } from 'vitest';
import { expectClean, isolate, PROFILES, run, withBalloon } from './helpers.js';

/** The points the balloon driver yields while one page migrates, stepped one at a time. */
function driverPoints(profile: (typeof PROFILES)[number], design: 'classic' | '2026' = 'classic') {
  const { m, vb, dev } = withBalloon(profile, 1, { design });
  const [a] = dev.listPages();
  const list = m.mem.pages.lists.newList();
  isolate(m, list, a);
  m.sched.manual = true;
  const task = m.sched.spawn('compactor', () =>
    migratePages(
      m,
      list,
      () => allocPages(m.mem, GFP.HIGHUSER_MOVABLE, 0),
      (d) => folioPut(m.mem, d),
      MIGRATE_MODE.ASYNC,
      0,
    ),
  );
  const points: Yielded[] = [];
  while (task.state === 'runnable') points.push(m.sched.step(task));
  m.sched.manual = false;
  expect(task.state).toBe('done');
  const mine = (p: SchedPoint): string | undefined => {
    if (p.lock === 'balloon_lock' || p.lock === 'pages_lock' || p.lock === 'balloon_pages_lock')
      return `${p.op} ${p.lock}`;
    if (p.op === 'virtqueue_kick') return `tell_host ${p.note}`;
    return undefined;
  };
  return { m, vb, order: points.map(mine).filter((x) => x !== undefined) };
}

describe.each(PROFILES)('§0.2 balloon migratepage order, %s', (profile) => {
  it('trylock balloon_lock, insert new under pages_lock, inflate new, delete old, deflate old, unlock', () => {
    const { m, order } = driverPoints(profile);
    const deleteLocked = profile !== 'v4.8' && profile !== 'v6.17';
    expect(order).toEqual([
      'mutex_trylock balloon_lock',
      'spin_lock pages_lock',
      'tell_host inflate',
      ...(deleteLocked ? ['spin_lock pages_lock'] : []),
      'tell_host deflate',
      'mutex_unlock balloon_lock',
    ]);
    expectClean(m);
  });
});

describe('2026 design order', () => {
  it('the driver only talks to the host; the core takes balloon_pages_lock after it unlocks', () => {
    const { m, order } = driverPoints('v6.17', '2026');
    expect(order).toEqual([
      'mutex_trylock balloon_lock',
      'tell_host deflate',
      'tell_host inflate',
      'mutex_unlock balloon_lock',
      'spin_lock balloon_pages_lock',
    ]);
    expectClean(m);
  });

  it('a leak between the driver and the core bookkeeping finds nothing, without a BUG', () => {
    const { m, vb, dev } = withBalloon('v6.17', 1, { design: '2026' });
    const [a] = dev.listPages();
    const list = m.mem.pages.lists.newList();
    isolate(m, list, a);
    m.sched.manual = true;
    const comp = m.sched.spawn('compactor', () =>
      migratePages(m, list, () => allocPages(m.mem, GFP.HIGHUSER_MOVABLE, 0), undefined, 0, 0),
    );
    m.sched.runUntil(comp, (p) => p.op === 'spin_lock' && p.lock === 'balloon_pages_lock');
    // The host already has the new page and not the old one; the list is empty and the
    // old page still counts as isolated.
    expect(dev.isolatedPages).toBe(1);
    const leak = m.sched.spawn('leak', () => vb.leak(1));
    expect(m.sched.runToEnd(leak)).toBe(0);
    expect(vb.stats.leakShort).toBe(1);
    m.sched.runToEnd(comp);
    m.sched.manual = false;
    expect(dev.listLength()).toBe(1);
    expect(run(m, () => vb.leak(1))).toBe(1);
    expectClean(m);
  });
});
