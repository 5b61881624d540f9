import { describe, expect, it } from 'vitest';
import {
  COMPACT,
  compactMemory,
  compactZones,
  Deadlock,
  Errno,
  isolateMovablePage,
  PROFILE_NAMES,
  type ProfileName,
  putbackMovablePages,
} from '../../src/index.js';
import { expectInvariants } from '../helpers.js';
import { driverPagesFirst } from './layout.js';

/** 10 driver pages at pfns 0-9, blocks 1-2 unmovable, block 3 free. */
function machine(profile: ProfileName) {
  return driverPagesFirst(profile, 10);
}

const isolatedFile = (m: ReturnType<typeof machine>['m']) => m.mem.vmstat.get('nr_isolated_file');

describe.each(PROFILE_NAMES)('nr_isolated_file and compaction — %s', (profile) => {
  const counted = profile === 'v4.8';

  it('S42, movable half (mops has no LRU folios): v4.8 counts the isolated movable pages while they wait for migration; 6.x never does', () => {
    const { m } = machine(profile);
    const a = m.sched.spawn('compact', () => compactMemory(m));
    m.sched.manual = true;
    // The first point of migrate_pages for the first page (v4.8/v6.0 unmap_and_move, 6.3+
    // migrate_folio_unmap).
    const anon = () => m.mem.vmstat.get('nr_isolated_anon');
    const success0 = m.mem.vmstat.get('pgmigrate_success');
    m.sched.runUntil(a, (p) => p.op === 'page_count' || p.op === 'folio_ref_count');
    expect(isolatedFile(m)).toBe(counted ? 10 : 0);
    expect(anon()).toBe(0);
    expect(m.sched.runToEnd(a)).toEqual([COMPACT.COMPLETE]);
    m.sched.manual = false;
    expect(isolatedFile(m)).toBe(0);
    expect(anon()).toBe(0);
    // Every movable page on the list migrated: pgmigrate_success +1 each.
    expect(m.mem.vmstat.get('pgmigrate_success') - success0).toBe(10);
    expectInvariants(m);
  });

  it('failed migrations and putback give the count back', () => {
    const { m, drv } = machine(profile);
    drv.migrateRc = Errno.EBUSY;
    m.run(() => compactMemory(m));
    expect(drv.calls.filter((c) => c.cb === 'putback')).toHaveLength(10);
    expect(isolatedFile(m)).toBe(0);
    expectInvariants(m);
  });

  it("S15 through compaction: a failed page's target goes back on cc->freepages (compaction_free), so the next compaction_alloc hands it out again", () => {
    const { m, drv } = machine(profile);
    drv.migrateRc = Errno.EBUSY;
    m.run(() => compactMemory(m));
    const dsts = drv.calls.filter((c) => c.cb === 'migrate').map((c) => c.dst as number);
    const batched = profile === 'v6.3' || profile === 'v6.17';
    // v4.8/v6.0: one call per page, each target returned at the head of the list and taken
    // again. v6.3+: the ASYNC batch pairs each page with its own target first; the pages
    // then retried alone in SYNC each get the target released last.
    expect(dsts).toHaveLength(batched ? 20 : 10);
    const alone = batched ? dsts.slice(10) : dsts;
    expect(new Set(alone).size).toBe(1);
    if (batched) {
      expect(new Set(dsts.slice(0, 10)).size).toBe(10);
      expect(alone[0]).toBe(dsts[9]);
    }
    expect(m.mem.vmstat.get('pgmigrate_fail')).toBe(10);
    expectInvariants(m);
  });

  it('a second compactor meets the pages the first one holds isolated: v4.8 throttles', () => {
    const { m } = machine(profile);
    const a = m.sched.spawn('first', () => compactMemory(m));
    const b = m.sched.spawn('async', () => compactZones(m, -1, 'async'));
    const c = m.sched.spawn('sync', () => compactMemory(m));
    m.sched.runUntil(a, (p) => p.op === 'page_count' || p.op === 'folio_ref_count');
    // Async compaction gives up at once in v4.8 (isolate_migratepages_block returns 0).
    const asyncResult = m.sched.runToEnd(b);
    expect(asyncResult).toEqual([counted ? COMPACT.CONTENDED : COMPACT.COMPLETE]);
    // Sync compaction waits in congestion_wait until the first compactor is done.
    const p = m.sched.step(c);
    if (counted) {
      expect(p.op).toBe('congestion_wait');
      expect(m.sched.step(c).op).toBe('congestion_wait');
    } else expect(p.op).not.toBe('congestion_wait');
    expect(m.sched.runToEnd(a)).toEqual([COMPACT.COMPLETE]);
    expect(m.sched.runToEnd(c)).toEqual([COMPACT.COMPLETE]);
    expect(isolatedFile(m)).toBe(0);
    expectInvariants(m);
  });
});

describe('v4.8 isolation outside compaction', () => {
  it('is not counted, and migrate_pages / putback_movable_pages subtract nothing for it', () => {
    const { m } = machine('v4.8');
    const lists = m.mem.pages.lists;
    const list = lists.newList();
    for (const pfn of [0, 1, 2, 3]) {
      expect(m.run(() => isolateMovablePage(m, pfn, 0))).toBe(true);
      lists.addTail(list, pfn);
    }
    expect(isolatedFile(m)).toBe(0);
    m.run(() => putbackMovablePages(m, list));
    expect(isolatedFile(m)).toBe(0);
    // Compaction still counts its own, and gives them back.
    m.run(() => compactMemory(m));
    expect(isolatedFile(m)).toBe(0);
    expect(m.mem.countedIsolated.size).toBe(0);
    expectInvariants(m);
  });
});

describe('v4.8 throttle with nobody to return the pages', () => {
  it('a sync compactor alone facing a count it cannot lower is a hang, reported as a Deadlock', () => {
    const { m } = machine('v4.8');
    // A count left by an unbalanced caller (isolate_movable_page does not count; only
    // compaction does).
    m.mem.vmstat.modNode('nr_isolated_file', 3);
    expect(() => m.run(() => compactMemory(m))).toThrow(Deadlock);
    expect(() => m.run(() => compactMemory(m))).toThrow(/too_many_isolated/);
  });
});
