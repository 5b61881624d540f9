import {
  __GFP,
  GFP,
  isolateMovablePageOutcome,
  type KernelGen,
  MIGRATE_MODE,
  MmBug,
  PageLocked,
  PG,
  putbackMovablePage,
  putPage,
} from '@mops/core';
import { describe, expect, it } from 'vitest';
import {
  expectClean,
  isolate,
  migrate,
  PROFILES,
  putback,
  run,
  targets,
  warningsOf,
  withBalloon,
} from './helpers.js';

const ISO = 1 << PG.isolated;

describe.each(PROFILES)('catalogue, %s', (profile) => {
  it('S01 isolate a balloon page (spec §12 S01, §6.2 balloon_page_isolate)', () => {
    const { m, vb, dev } = withBalloon(profile, 1);
    const [a] = dev.listPages();
    const p = m.mem.pages;
    expect(p.refcount[a]).toBe(1);
    const seen: boolean[] = [];
    const orig = dev.isolateLocked.bind(dev);
    dev.isolateLocked = (pfn: number) => {
      seen.push(PageLocked(m.mem, pfn));
      orig(pfn);
    };
    const list = p.lists.newList();
    expect(isolate(m, list, a)).toBe(true);
    expect(p.refcount[a]).toBe(2);
    expect(p.flags[a] & ISO).toBe(ISO);
    expect(PageLocked(m.mem, a)).toBe(false);
    expect(dev.listPages()).not.toContain(a);
    expect(p.lists.toArray(list)).toEqual([a]);
    expect(dev.isolatedPages).toBe(1);
    expect(seen).toEqual([true]);
    expect(vb.host.isInflated(a)).toBe(true);
    expectClean(m);
  });

  it('S10 successful balloon migration (spec §12 S10, §6.3)', () => {
    const { m, vb, dev } = withBalloon(profile, 1);
    const [a] = dev.listPages();
    const p = m.mem.pages;
    const list = p.lists.newList();
    isolate(m, list, a);
    const calls: { mode: number; locked: boolean; src: number; dst: number }[] = [];
    const orig = vb.migratepage.bind(vb);
    vb.dev.migratepage = (d, newpage, page, mode) => {
      calls.push({
        mode,
        src: page,
        dst: newpage,
        locked: PageLocked(m.mem, page) && PageLocked(m.mem, newpage),
      });
      return orig(d, newpage, page, mode);
    };
    const before = {
      mig: m.mem.vmstat.get('balloon_migrate'),
      ok: m.mem.vmstat.get('pgmigrate_success'),
    };
    const t = targets();
    const res = migrate(m, list, MIGRATE_MODE.SYNC_LIGHT, t);
    expect(res.rc).toBe(0);
    expect(calls).toHaveLength(1);
    const d = t.handed[0];
    expect(calls[0]).toMatchObject({ src: a, dst: d, locked: true });
    expect(calls[0].mode).toBe(
      // From 6.3 migrate_pages_batch calls the driver in MIGRATE_ASYNC first.
      profile === 'v6.3' || profile === 'v6.17' ? MIGRATE_MODE.ASYNC : MIGRATE_MODE.SYNC_LIGHT,
    );
    expect(dev.listPages()).toEqual([d]);
    expect(p.refcount[d]).toBe(1);
    expect(p.priv[d]).toBe(dev.id);
    expect(p.refcount[a]).toBe(0);
    expect(p.flags[a] & ISO).toBe(0);
    expect(dev.isolatedPages).toBe(0);
    expect(m.mem.vmstat.get('balloon_migrate')).toBe(before.mig + 1);
    expect(m.mem.vmstat.get('pgmigrate_success')).toBe(before.ok + 1);
    expect(vb.host.isInflated(d)).toBe(true);
    expect(vb.host.isInflated(a)).toBe(false);
    expect(vb.numPages).toBe(1);
    expect(warningsOf(m, 'protocol_violation')).toEqual([]);
    expect(warningsOf(m, 'bad_page')).toEqual([]);
    expectClean(m);
  });

  it('S22 balloon deflate while pages are isolated (spec §12 S22, §6.4)', () => {
    const { m, dev } = withBalloon(profile, 2);
    const p = m.mem.pages;
    const [x, y] = dev.listPages();
    const list = p.lists.newList();
    isolate(m, list, x);
    isolate(m, list, y);
    expect(dev.listLength()).toBe(0);
    expect(dev.isolatedPages).toBe(2);
    expect(run(m, () => dev.dequeue())).toBe(-1);
    expect(dev.stats.dequeueEmpty).toBe(1);
    expect(m.mem.halted).toBeUndefined();
    // Put one page back: the next dequeue finds it.
    p.lists.del(y);
    run(m, () => putbackMovablePage(m, y));
    const deflate = m.mem.vmstat.get('balloon_deflate');
    expect(run(m, () => dev.dequeue())).toBe(y);
    expect(p.priv[y]).toBe(0);
    expect(m.mem.vmstat.get('balloon_deflate')).toBe(deflate + 1);
  });

  it('S22, the page put back between the dequeue’s two locked phases: nothing dequeued, no BUG (spec §0.2)', () => {
    const { m, dev } = withBalloon(profile, 1);
    const p = m.mem.pages;
    const [x] = dev.listPages();
    const list = p.lists.newList();
    isolate(m, list, x);
    m.sched.manual = true;
    const t = m.sched.spawn('leak', () => dev.dequeue());
    // balloon_page_list_dequeue() finds the list empty under pages_lock and lets go of it;
    // the lost-pages check takes pages_lock again.
    let locks = 0;
    while (t.state === 'runnable' && locks < 2) {
      const pt = m.sched.step(t) as { op: string; lock?: string };
      if (pt.op === 'spin_lock' && pt.lock === 'pages_lock') locks++;
    }
    expect(locks).toBe(2);
    // In between, the VM puts the isolated page back on the balloon's list.
    p.lists.del(x);
    m.sched.runToEnd(m.sched.spawn('putback', () => putbackMovablePage(m, x)));
    // The check sees a non-empty list: no BUG, and this dequeue returns nothing.
    expect(m.sched.runToEnd(t)).toBe(-1);
    expect(m.mem.halted).toBeUndefined();
    expect([dev.listLength(), dev.isolatedPages]).toEqual([1, 0]);
  });

  it('S23 balloon lost pages: dequeue with an empty list and nothing isolated is a BUG', () => {
    const { m, vb, dev } = withBalloon(profile, 1);
    const [a] = dev.listPages();
    // Lose the page: off the list, never isolated, while the driver still counts it.
    m.mem.pages.lists.del(a);
    expect(vb.numPages).toBe(1);
    expect(() => run(m, () => vb.leak(1))).toThrow(MmBug);
    expect(m.mem.halted?.reason).toMatch(/balloon pages are lost/);
    expect(() => run(m, () => vb.fill(1))).toThrow(/halted/);
  });
});

describe.each(['v6.3', 'v6.17'] as const)('persistent -EAGAIN, %s', (profile) => {
  it('S12 balloon_lock held for the whole ASYNC call: 10 driver calls, then putback', () => {
    const { m, vb, dev } = withBalloon(profile, 1);
    const p = m.mem.pages;
    const [a] = dev.listPages();
    const list = p.lists.newList();
    isolate(m, list, a);
    let calls = 0;
    const orig = vb.migratepage.bind(vb);
    vb.dev.migratepage = (d, np, pg, mode) => {
      calls++;
      return orig(d, np, pg, mode);
    };
    // An inflating thread holds balloon_lock throughout.
    expect(vb.balloonLock.trylock()).toBe(true);
    const fail = m.mem.vmstat.get('pgmigrate_fail');
    const res = migrate(m, list, MIGRATE_MODE.ASYNC);
    expect(calls).toBe(10);
    expect(vb.stats.migrateBusy).toBe(10);
    expect(res.rc).toBe(1);
    expect(p.lists.toArray(list)).toEqual([a]);
    expect(p.flags[a] & ISO).toBe(ISO);
    expect(PageLocked(m.mem, a)).toBe(false);
    vb.balloonLock.unlock();
    const putbacks = dev.stats.putbacks;
    putback(m, list);
    expect(dev.stats.putbacks).toBe(putbacks + 1);
    expect(dev.listPages()).toEqual([a]);
    expect(p.flags[a] & ISO).toBe(0);
    expect(p.refcount[a]).toBe(1);
    expect(m.mem.vmstat.get('pgmigrate_fail')).toBe(fail + 1);
    expectClean(m);
  });
});

describe.each(['v4.8', 'v6.0'] as const)('persistent -EAGAIN, %s', (profile) => {
  // "As S12 in any mode": v4.8 and v6.0 run every mode as 10 passes (§0.2 sync modes).
  it.each([
    ['ASYNC', MIGRATE_MODE.ASYNC],
    ['SYNC_LIGHT', MIGRATE_MODE.SYNC_LIGHT],
    ['SYNC', MIGRATE_MODE.SYNC],
  ] as const)(
    'S14 balloon_lock held, %s: 10 passes, a fresh target each pass, fail counted per profile',
    (_name, mode) => {
      const { m, vb, dev } = withBalloon(profile, 1);
      const [a] = dev.listPages();
      const list = m.mem.pages.lists.newList();
      isolate(m, list, a);
      const modes: number[] = [];
      const orig = vb.migratepage.bind(vb);
      vb.dev.migratepage = (d, np, pg, md) => {
        modes.push(md);
        return orig(d, np, pg, md);
      };
      expect(vb.balloonLock.trylock()).toBe(true);
      const fail = m.mem.vmstat.get('pgmigrate_fail');
      const t = targets();
      const res = migrate(m, list, mode, t);
      vb.balloonLock.unlock();
      expect(res.rc).toBe(1);
      expect(vb.stats.migrateBusy).toBe(10);
      // No ASYNC sub-batch before v6.3: the driver sees the requested mode on every pass.
      expect(modes).toEqual(Array(10).fill(mode));
      expect(m.mem.pages.lists.toArray(list)).toEqual([a]);
      expect(t.handed).toHaveLength(10);
      expect(t.returned).toEqual(t.handed);
      expect(m.mem.vmstat.get('pgmigrate_fail')).toBe(fail + (profile === 'v4.8' ? 1 : 0));
      const putbacks = dev.stats.putbacks;
      putback(m, list);
      // The caller's putback: balloon putback_page once, A back on the list, iso 0, ref 1.
      expect(dev.stats.putbacks).toBe(putbacks + 1);
      expect(dev.listPages()).toEqual([a]);
      expect(m.mem.pages.flags[a] & (1 << PG.isolated)).toBe(0);
      expect(m.mem.pages.refcount[a]).toBe(1);
      expectClean(m);
    },
  );
});

describe.each(['v6.3', 'v6.17'] as const)('S04 / 9a with a real balloon page, %s', (profile) => {
  it('S04 folio_get_nontail_page: the tail T1 fails at the reference step although H became a published balloon page', () => {
    const { m, vb, dev } = withBalloon(profile);
    // Fill memory, then free one order-2 block so the folio lands there.
    while (m.allocPages(GFP.KERNEL, 0) >= 0);
    for (let i = 0; i < 4; i++) m.putPage(0x100 + i);
    const H = m.allocPages(GFP.HIGHUSER_MOVABLE | __GFP.COMP, 2);
    expect(H).toBe(0x100);
    const T1 = H + 1;
    m.sched.manual = true;
    const scannerOps: string[] = [];
    const scanner = m.sched.spawn('scanner', () => isolateMovablePageOutcome(m, T1, 0));
    m.sched.onStep = (t, pt) => {
      if (t === scanner) scannerOps.push(pt.op);
    };
    const owner = m.sched.spawn('owner', function* (): KernelGen<number> {
      yield { op: 'folio_put', pfn: H };
      putPage(m.mem, H); // the folio is freed…
      return yield* vb.fill(1); // …and H comes back as a published balloon page
    });
    m.sched.runUntil(scanner, (pt) => pt.op === 'folio_get_nontail_page');
    expect(m.sched.runToEnd(owner)).toBe(1);
    expect(dev.listPages()).toEqual([H]);
    const out = m.sched.runToEnd(scanner);
    m.sched.manual = false;
    expect(out).toEqual({ result: false, isolated: -1 });
    expect(scannerOps).toEqual(['folio_get_nontail_page']);
    expect(dev.stats.isolations).toBe(0);
    expect(dev.isolatedPages).toBe(0);
    expect(dev.listPages()).toEqual([H]);
    expect(m.mem.pages.refcount[H]).toBe(1);
    expect(m.mem.pages.flags[H] & ISO).toBe(0);
    expect(PageLocked(m.mem, H)).toBe(false);
    expect(m.mem.warnings).toEqual([]);
    expectClean(m);
  });
});
