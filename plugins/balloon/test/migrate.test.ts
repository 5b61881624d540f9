import {
  Errno,
  isolatedOk,
  isolateMovablePage,
  MIGRATE_MODE,
  MopsError,
  PG,
  PGTY,
  putbackMovablePages,
  trylockPage,
} from '@mops/core';
import { describe, expect, it } from 'vitest';
import { BalloonDevice, managedPages } from '../src/index.js';
import {
  expectClean,
  isolate,
  machine,
  migrate,
  PROFILES,
  putback,
  run,
  targets,
  warningsOf,
  withBalloon,
} from './helpers.js';

const ISO = 1 << PG.isolated;

describe.each(PROFILES)('§6.3 virtballoon_migratepage, %s', (profile) => {
  it('virtio has no inflate refusal: a host refusing new pages does not stop a migration', () => {
    const { m, vb, dev } = withBalloon(profile, 1);
    const [a] = dev.listPages();
    const list = m.mem.pages.lists.newList();
    isolate(m, list, a);
    vb.host.refuse = (pfn) => pfn !== a;
    const t = targets();
    const res = migrate(m, list, MIGRATE_MODE.ASYNC, t);
    expect(res.rc).toBe(0);
    const d = t.handed[0];
    expect(vb.stats.migrateRefused).toBe(0);
    expect(vb.host.stats.refused).toBe(0);
    expect(dev.listPages()).toEqual([d]);
    expect(dev.isolatedPages).toBe(0);
    expect(vb.host.inflatedPfns()).toEqual([d]);
    expect(m.mem.vmstat.get('balloon_migrate')).toBe(1);
    expectClean(m);
  });

  it('a page dequeued but not yet freed cannot be isolated', () => {
    const { m, dev } = withBalloon(profile, 1);
    const a = run(m, () => dev.dequeue());
    expect(a).toBeGreaterThanOrEqual(0);
    const r = m.run(() => isolateMovablePage(m, a, 0));
    expect(isolatedOk(r)).toBe(false);
    expect(m.mem.pages.refcount[a]).toBe(1);
    expect(m.mem.pages.flags[a] & ISO).toBe(0);
    expect(dev.stats.isolations).toBe(0);
  });
});

describe('v6.17: isolated balloon pages cannot get deflated (WARN_ON_ONCE(!b_dev_info))', () => {
  it('migrate returns -EAGAIN and putback does nothing when private is gone', () => {
    const { m, vb, dev } = withBalloon('v6.17', 1);
    const [a] = dev.listPages();
    const list = m.mem.pages.lists.newList();
    isolate(m, list, a);
    m.mem.pages.priv[a] = 0;
    let calls = 0;
    const orig = vb.migratepage.bind(vb);
    vb.dev.migratepage = (d, np, pg, mode) => {
      calls++;
      return orig(d, np, pg, mode);
    };
    expect(migrate(m, list, MIGRATE_MODE.ASYNC).rc).toBe(1);
    expect(calls).toBe(0);
    putback(m, list);
    expect(dev.listLength()).toBe(0);
    const w = warningsOf(m, 'WARN_ON_ONCE');
    expect(w.some((t) => t.includes('balloon_page_migrate'))).toBe(true);
    expect(w.some((t) => t.includes('balloon_page_putback'))).toBe(true);
  });
});

describe('the 2026 design (P5): global lock, core bookkeeping, -ENOENT', () => {
  it('needs the v6.17 profile, and one design per machine', () => {
    expect(() => new BalloonDevice(machine('v6.3'), { design: '2026' })).toThrow(MopsError);
    const m = machine('v6.17');
    const a = new BalloonDevice(m, { design: '2026' });
    const b = new BalloonDevice(m, { design: '2026' });
    expect(a.pagesLock).toBe(b.pagesLock);
    expect(a.pagesLock.className).toBe('balloon_pages_lock');
    expect(() => new BalloonDevice(m)).toThrow(/one/);
  });

  it('enqueue and dequeue do not use the page lock', () => {
    const m = machine('v6.17');
    const dev = new BalloonDevice(m, { design: '2026' });
    const pfn = dev.balloonPageAlloc();
    trylockPage(m.mem, pfn);
    run(m, () => dev.enqueue(pfn));
    expect(dev.listPages()).toEqual([pfn]);
    expect(run(m, () => dev.dequeue())).toBe(pfn);
    expect(m.mem.pages.priv[pfn]).toBe(0);
    expect(m.mem.pages.type[pfn] >>> 24).toBe(PGTY.offline);
  });

  it('migration: the driver only talks to the host; the core inserts, counts and frees', () => {
    const { m, vb, dev } = withBalloon('v6.17', 2, { design: '2026' });
    const base = managedPages(m) + vb.numPages;
    const [a] = dev.listPages();
    const list = m.mem.pages.lists.newList();
    isolate(m, list, a);
    const t = targets();
    expect(migrate(m, list, MIGRATE_MODE.SYNC_LIGHT, t).rc).toBe(0);
    const d = t.handed[0];
    const p = m.mem.pages;
    expect(dev.listPages()).toContain(d);
    expect(p.refcount[d]).toBe(1);
    expect(p.priv[d]).toBe(dev.id);
    expect(p.refcount[a]).toBe(0);
    expect(dev.isolatedPages).toBe(0);
    expect(m.mem.vmstat.get('balloon_migrate')).toBe(1);
    expect(vb.host.isInflated(d) && !vb.host.isInflated(a)).toBe(true);
    expect(managedPages(m) + vb.numPages).toBe(base);
    expect(warningsOf(m, 'protocol_violation')).toEqual([]);
    expectClean(m);
  });

  it('a host that never refuses: a lone migration inflates the new page before it deflates the old one', () => {
    const { m, vb, dev } = withBalloon('v6.17', 1, { design: '2026' });
    const [a] = dev.listPages();
    const list = m.mem.pages.lists.newList();
    isolate(m, list, a);
    const calls: string[] = [];
    const host = vb.host;
    const inflateOne = host.inflateOne.bind(host);
    const deflateOne = host.deflateOne.bind(host);
    host.inflateOne = (pfn, refusable) => {
      calls.push(`inflate ${pfn === a ? 'old' : 'new'}`);
      return inflateOne(pfn, refusable);
    };
    host.deflateOne = (pfn) => {
      calls.push(`deflate ${pfn === a ? 'old' : 'new'}`);
      deflateOne(pfn);
    };
    const t = targets();
    expect(migrate(m, list, MIGRATE_MODE.ASYNC, t).rc).toBe(0);
    expect(calls).toEqual(['inflate new', 'deflate old']);
    expect(dev.listPages()).toEqual(t.handed);
    expect(host.inflatedPfns()).toEqual(t.handed);
    expect(vb.stats.migrateRefused).toBe(0);
    expectClean(m);
  });

  it('-ENOENT with a host that may refuse (vmw_balloon): the old page was deflated, the new one refused; both end up free', () => {
    const { m, vb, dev } = withBalloon('v6.17', 2, { design: '2026' });
    const [a, b] = dev.listPages();
    const list = m.mem.pages.lists.newList();
    isolate(m, list, a);
    vb.host.refuse = (pfn) => pfn !== a && pfn !== b;
    const managed = managedPages(m);
    const nr = m.mem.vmstat.get('nr_balloon_pages');
    const t = targets();
    const res = migrate(m, list, MIGRATE_MODE.ASYNC, t);
    expect(res.rc).toBe(0);
    expect(res.nrSucceeded).toBe(1);
    const d = t.handed[0];
    const p = m.mem.pages;
    expect(p.refcount[a]).toBe(0);
    expect(p.refcount[d]).toBe(0);
    expect(dev.listPages()).toEqual([b]);
    expect(dev.isolatedPages).toBe(0);
    expect(vb.numPages).toBe(1);
    expect(dev.stats.enoent).toBe(1);
    expect(vb.stats.migrateRefused).toBe(1);
    expect(m.mem.vmstat.get('balloon_deflate')).toBe(1);
    expect(m.mem.vmstat.get('balloon_migrate')).toBe(0);
    expect(managedPages(m)).toBe(managed + 1);
    // mm/balloon.c as read does not decrement NR_BALLOON_PAGES on this path.
    expect(m.mem.vmstat.get('nr_balloon_pages')).toBe(nr);
    expect(vb.host.inflatedPfns()).toEqual([b]);
    expect(warningsOf(m, 'bad_page')).toEqual([]);
    expect(warningsOf(m, 'protocol_violation')).toEqual([]);
    expectClean(m);
  });

  it('a permanent driver error leaves the page isolated for putback', () => {
    const { m, vb, dev } = withBalloon('v6.17', 1, { design: '2026' });
    const [a] = dev.listPages();
    const list = m.mem.pages.lists.newList();
    isolate(m, list, a);
    vb.dev.migratepage = function* () {
      yield { op: 'driver' };
      return Errno.EBUSY;
    };
    expect(migrate(m, list, MIGRATE_MODE.ASYNC).rc).toBe(1);
    expect(dev.stats.migrateFailures).toBe(1);
    expect(dev.isolatedPages).toBe(1);
    m.run(() => putbackMovablePages(m, list));
    expect(dev.listPages()).toEqual([a]);
    expectClean(m);
  });
});

describe('MIGRATE_SYNC_NO_COPY (v6.0, v6.3): balloon_page_migrate refuses it', () => {
  it('v6.0: -EINVAL before the driver is asked; the page stays isolated for putback', () => {
    const { m, vb, dev } = withBalloon('v6.0', 1);
    const [a] = dev.listPages();
    const list = m.mem.pages.lists.newList();
    isolate(m, list, a);
    const t = targets();
    expect(migrate(m, list, MIGRATE_MODE.SYNC_NO_COPY, t).rc).toBe(1);
    // Neither the driver (no host request, nothing counted) nor the device saw the call.
    expect(vb.host.inflatedPfns()).toEqual([a]);
    expect(dev.stats.migrations).toBe(0);
    expect(dev.stats.migrateFailures).toBe(0);
    expect(m.mem.pages.lists.toArray(list)).toEqual([a]);
    putback(m, list);
    expect(dev.listPages()).toEqual([a]);
    expect(m.mem.vmstat.get('pgmigrate_fail')).toBe(1);
    expectClean(m);
  });

  it('v6.3: the ASYNC batch that migrate_pages_sync() tries first moves the page', () => {
    const { m, dev } = withBalloon('v6.3', 1);
    const [a] = dev.listPages();
    const list = m.mem.pages.lists.newList();
    isolate(m, list, a);
    const t = targets();
    expect(migrate(m, list, MIGRATE_MODE.SYNC_NO_COPY, t).rc).toBe(0);
    expect(dev.listPages()).toEqual([t.handed[0]]);
    expectClean(m);
  });
});
