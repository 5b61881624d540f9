import {
  allocPages,
  folioPut,
  GFP,
  hasPageType,
  isolatedOk,
  isolateMovablePage,
  MIGRATE_MODE,
  migratePages,
  PGTY,
  putbackMovablePages,
  type SchedPoint,
  type Yielded,
} from '@mops/core';
import { describe, expect, it } from 'vitest';
import type { BalloonDesign, HypervisorOptions } from '../src/index.js';
import {
  expectClean,
  getNew,
  isolate,
  PROFILES,
  putNew,
  run,
  targets,
  withBalloon,
} from './helpers.js';

/** The points the balloon driver yields while one page migrates, stepped one at a time. */
function driverPoints(
  profile: (typeof PROFILES)[number],
  design: 'classic' | '2026' = 'classic',
  hypervisorOptions: HypervisorOptions = {},
) {
  const { m, vb, dev } = withBalloon(profile, 1, { design, hypervisorOptions });
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
  it('a host that never refuses: the driver inflates new, then deflates old; the core takes balloon_pages_lock after it unlocks', () => {
    const { m, vb, order } = driverPoints('v6.17', '2026');
    expect(order).toEqual([
      'mutex_trylock balloon_lock',
      'tell_host inflate',
      'tell_host deflate',
      'mutex_unlock balloon_lock',
      'spin_lock balloon_pages_lock',
    ]);
    expect(vb.dev.stats.migrations).toBe(1);
    expectClean(m);
  });

  it("a host that may refuse: vmw_balloon's order, the driver deflates old before it inflates new", () => {
    const { m, vb, order } = driverPoints('v6.17', '2026', { refuse: () => false });
    expect(order).toEqual([
      'mutex_trylock balloon_lock',
      'tell_host deflate',
      'tell_host inflate',
      'mutex_unlock balloon_lock',
      'spin_lock balloon_pages_lock',
    ]);
    expect(vb.dev.stats.migrations).toBe(1);
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

/** Profile and design pairs: every profile's classic design, and v6.17's 2026 design. */
const DESIGNS: [(typeof PROFILES)[number], BalloonDesign][] = [
  ...PROFILES.map((p): [(typeof PROFILES)[number], BalloonDesign] => [p, 'classic']),
  ['v6.17', '2026'],
];

describe.each(DESIGNS)('§6.2 fill_balloon order, %s %s', (profile, design) => {
  it('stopped in tell_host, the pages are listed, PageOffline, counted, and compaction can isolate one (its migration gets -EAGAIN)', () => {
    const { m, vb, dev } = withBalloon(profile, 0, { design, hypervisorOptions: { latency: 1 } });
    m.sched.manual = true;
    const fill = m.sched.spawn('fill', () => vb.fill(3));
    m.sched.runUntil(fill, (p) => p.op === 'wait_event(vb->acked)');
    // The host has not answered yet.
    expect(vb.host.inflatedCount).toBe(0);
    const listed = dev.listPages();
    expect(listed).toHaveLength(3);
    const p = m.mem.pages;
    for (const pfn of listed) {
      expect(hasPageType(m.mem, pfn, PGTY.offline)).toBe(true);
      expect(p.priv[pfn]).toBe(dev.id);
    }
    expect(m.mem.vmstat.get('balloon_inflate')).toBe(3);
    expect(vb.numPages).toBe(3);
    const ascending = (pfns: ArrayLike<number>) => Array.from(pfns).sort((x, y) => x - y);
    expect(ascending(vb.pfns.subarray(0, vb.numPfns))).toEqual(ascending(listed));
    // A compactor isolates a page fill published; balloon_lock is fill's, so the driver's
    // migratepage answers -EAGAIN and the page goes back.
    const [a] = listed;
    const list = p.lists.newList();
    const t = targets();
    const seen = { isolated: 0, rc: -1 };
    const comp = m.sched.spawn('compactor', function* () {
      if (!isolatedOk(yield* isolateMovablePage(m, a, 0))) return;
      p.lists.addTail(list, a);
      seen.isolated = dev.isolatedPages;
      const mode = MIGRATE_MODE.ASYNC;
      seen.rc = (yield* migratePages(m, list, getNew(m, t), putNew(m, t), mode, 0)).rc;
      yield* putbackMovablePages(m, list);
    });
    m.sched.runToEnd(comp);
    expect(seen).toEqual({ isolated: 1, rc: 1 });
    expect(vb.stats.migrateBusy).toBeGreaterThan(0);
    expect(dev.isolatedPages).toBe(0);
    expect(m.sched.runToEnd(fill)).toBe(3);
    m.sched.manual = false;
    expect(vb.host.inflatedPfns()).toEqual(ascending(listed));
    expectClean(m);
  });

  it('v6.x and the 2026 design enqueue last-allocated first (the host sees the pfns reversed, leak takes the first-allocated page); v4.8 in allocation order', () => {
    const { m, vb, dev } = withBalloon(profile, 0, { design });
    const allocated: number[] = [];
    const alloc = dev.balloonPageAlloc.bind(dev);
    dev.balloonPageAlloc = () => {
      const pfn = alloc();
      allocated.push(pfn);
      return pfn;
    };
    expect(run(m, () => vb.fill(3))).toBe(3);
    const [a0, a1, a2] = allocated;
    const lifo = profile !== 'v4.8';
    // vb->pfns is the buffer the host read.
    expect(Array.from(vb.pfns.subarray(0, vb.numPfns))).toEqual(lifo ? [a2, a1, a0] : [a0, a1, a2]);
    // balloon_page_insert adds at the list head.
    expect(dev.listPages()).toEqual(lifo ? [a0, a1, a2] : [a2, a1, a0]);
    expect(run(m, () => vb.leak(1))).toBe(1);
    const deflated = lifo ? a0 : a2;
    expect(m.mem.pages.refcount[deflated]).toBe(0);
    expect(vb.host.inflatedPfns()).toEqual(
      [a0, a1, a2].filter((pfn) => pfn !== deflated).sort((x, y) => x - y),
    );
    expectClean(m);
  });

  it('leak_balloon frees last-dequeued first from its local page list (v6.x, 2026 design); v4.8 frees from vb->pfns in dequeue order', () => {
    const { m, vb, dev } = withBalloon(profile, 3, { design });
    const dequeued = dev.listPages();
    const freed: number[] = [];
    m.trace.on('mm_page_free', (e) => freed.push(e.pfn));
    expect(run(m, () => vb.leak(3))).toBe(3);
    // The pfns reach the host in dequeue order either way.
    expect(Array.from(vb.pfns.subarray(0, vb.numPfns))).toEqual(dequeued);
    expect(freed).toEqual(profile === 'v4.8' ? dequeued : [...dequeued].reverse());
    expectClean(m);
  });

  it('v4.8 publishes each page as soon as it is allocated, balloon_lock held; later kernels allocate the batch first, unlocked', () => {
    const { m, vb, dev } = withBalloon(profile, 0, { design });
    m.sched.manual = true;
    const fill = m.sched.spawn('fill', () => vb.fill(3));
    m.sched.runUntil(fill, (p) => p.op === 'alloc_page');
    m.sched.runUntil(fill, (p) => p.op === 'alloc_page');
    const v48 = profile === 'v4.8';
    expect(vb.balloonLock.locked).toBe(v48);
    expect(dev.listLength()).toBe(v48 ? 1 : 0);
    expect(m.mem.vmstat.get('balloon_inflate')).toBe(v48 ? 1 : 0);
    expect(m.sched.runToEnd(fill)).toBe(3);
    m.sched.manual = false;
    expectClean(m);
  });
});
