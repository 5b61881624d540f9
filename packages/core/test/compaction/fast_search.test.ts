import { describe, expect, it } from 'vitest';
import {
  FAST_START_USED,
  fastFindMigrateblock,
  fastIsolateFreepages,
  freeCompactControl,
  freelistScanLimit,
  isolateMigratepages,
  type Machine,
  MIGRATE,
  MIGRATE_MODE,
  MIGRATE_TYPES,
  newCompactControl,
  PROFILE_NAMES,
  type ProfileName,
  putbackMovablePages,
  resetIsolationSuitable,
  zoneCompactState,
} from '../../src/index.js';
import { TestDriver } from '../driver.js';
import { expectInvariants, smallMachine, topZone } from '../helpers.js';

/**
 * A 16 MiB machine (8 pageblocks of 512 pages) full of movable driver pages, with the
 * given pages handed back to the buddy allocator.
 */
function fullMachine(profile: ProfileName, freed: number[]) {
  const m = smallMachine('16M', { profile });
  const drv = new TestDriver(m);
  drv.alloc(m.nrPages);
  for (const p of freed) m.run(() => drv.freeOwned(p));
  return { m, drv, zone: topZone(m) };
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

function controlFor(m: Machine, order: number, init: { direct?: boolean } = {}) {
  const zone = topZone(m);
  return newCompactControl(m, zone, {
    order,
    mode: MIGRATE_MODE.SYNC_LIGHT,
    migratetype: MIGRATE.MOVABLE,
    directCompaction: init.direct ?? false,
    migratePfn: zone.zoneStartPfn,
    freePfn: zone.zoneEndPfn - 512,
  });
}

function movableList(m: Machine, order: number): number[] {
  return m.mem.pages.lists.toArray(topZone(m).freeList[order * MIGRATE_TYPES + MIGRATE.MOVABLE]);
}

describe('compact_control', () => {
  it('has the same fields in the same order whatever the order of its init', () => {
    const m = smallMachine('4M');
    const zone = topZone(m);
    const a = newCompactControl(m, zone, { order: 3, mode: 0, directCompaction: true, gfpMask: 1 });
    const b = newCompactControl(m, zone, { gfpMask: 1, directCompaction: true, mode: 0, order: 3 });
    expect(Object.keys(a)).toEqual(Object.keys(b));
    expect(b).toMatchObject({ order: 3, mode: 0, directCompaction: true, gfpMask: 1 });
  });
});

describe('free-list rotation (move_freelist_head / move_freelist_tail)', () => {
  /** A list holding pages 10..14 in order. */
  function fiveList() {
    const lists = smallMachine('2M').mem.pages.lists;
    const h = lists.newList();
    for (const p of [10, 11, 12, 13, 14]) lists.addTail(h, p);
    return { lists, h };
  }

  it('rotateToFront puts the page first and the ones before it last, in order', () => {
    const { lists, h } = fiveList();
    lists.rotateToFront(h, 12);
    expect(lists.toArray(h)).toEqual([12, 13, 14, 10, 11]);
    lists.rotateToFront(h, 12);
    expect(lists.toArray(h)).toEqual([12, 13, 14, 10, 11]);
    expect(lists.prevOf(12)).toBe(-1);
    expect(lists.prevOf(10)).toBe(14);
  });

  it('rotateToBack puts the page last and the ones after it first', () => {
    const { lists, h } = fiveList();
    lists.rotateToBack(h, 11);
    expect(lists.toArray(h)).toEqual([12, 13, 14, 10, 11]);
    expect(lists.last(h)).toBe(11);
    lists.rotateToBack(h, 11);
    expect(lists.toArray(h)).toEqual([12, 13, 14, 10, 11]);
  });
});

describe('freelist_scan_limit', () => {
  it('is COMPACT_CLUSTER_MAX + 1, halved by every consecutive failed search', () => {
    const m = smallMachine('2M');
    const cc = controlFor(m, 9);
    const seen: number[] = [];
    for (let f = 0; f < 8; f++) {
      cc.fastSearchFail = f;
      seen.push(freelistScanLimit(cc));
    }
    expect(seen).toEqual([33, 17, 9, 5, 3, 2, 1, 1]);
  });
});

describe.each(PROFILE_NAMES)('fast_find_migrateblock — %s', (profile) => {
  const fast = profile !== 'v4.8';
  // An order-4 free block in pageblock 1 (below high_pfn) and one in pageblock 6 (above).
  const freed = [...range(512, 16), ...range(3072, 16)];

  it(
    fast
      ? 'for a costly order, starts the migrate scanner at a low block that has free pages'
      : 'v4.8 has no free-list search: the scanner starts where it stopped',
    () => {
      const { m } = fullMachine(profile, freed);
      const cc = controlFor(m, 9);
      const pfn = fastFindMigrateblock(m.mem, cc);
      if (!fast) {
        expect(pfn).toBe(0);
        expect(cc.totalMigrateScanned).toBe(0);
        return;
      }
      expect(pfn).toBe(512);
      expect(cc.fastSearchFail).toBe(0);
      expect(cc.fastStartPfn).toBe(512);
      expect(cc.totalMigrateScanned).toBeGreaterThan(0);
      // The picked entry goes to the tail, so the next search sees the others first.
      expect(movableList(m, 4).at(-1)).toBe(512);
      // v6.0/v6.3 mark the picked block skip; v6.17 does not.
      expect(m.mem.pageblockSkip(512)).toBe(profile !== 'v6.17');
      expectInvariants(m);
    },
  );

  it('leaves small orders, ignored skip hints and mid-block restarts to the linear scan', () => {
    const { m } = fullMachine(profile, freed);
    const small = controlFor(m, 3);
    expect(fastFindMigrateblock(m.mem, small)).toBe(0);
    expect(small.fastSearchFail).toBe(0);
    const ignoring = newCompactControl(m, topZone(m), {
      order: 9,
      mode: MIGRATE_MODE.SYNC_LIGHT,
      ignoreSkipHint: true,
      freePfn: 3584,
    });
    expect(fastFindMigrateblock(m.mem, ignoring)).toBe(0);
    const midBlock = controlFor(m, 9);
    midBlock.migratePfn = 100;
    expect(fastFindMigrateblock(m.mem, midBlock)).toBe(100);
    freeCompactControl(m, small);
    freeCompactControl(m, ignoring);
    freeCompactControl(m, midBlock);
  });

  it('a block that must be finished is kept from v6.3 on (v6.0 searches anyway)', () => {
    const { m } = fullMachine(profile, freed);
    const cc = controlFor(m, 9);
    cc.finishPageblock = true;
    expect(fastFindMigrateblock(m.mem, cc)).toBe(profile === 'v6.0' ? 512 : 0);
  });

  if (fast)
    it('a failed search shrinks the next one and restarts the linear scan at the block it found before', () => {
      const { m } = fullMachine(profile, freed);
      const cc = controlFor(m, 9);
      expect(fastFindMigrateblock(m.mem, cc)).toBe(512);
      // The block is now skipped (set by the search, or by the scan that followed it).
      m.mem.setPageblockSkip(512, true);
      cc.migratePfn = 1024;
      const before = freelistScanLimit(cc);
      expect(fastFindMigrateblock(m.mem, cc)).toBe(512);
      expect(cc.fastSearchFail).toBe(1);
      expect(freelistScanLimit(cc)).toBeLessThan(before);
      expect(cc.migratePfn).toBe(512);
      expect(cc.fastStartPfn).toBe(FAST_START_USED);
      // Once used, the remembered block is not taken again.
      cc.migratePfn = 1536;
      expect(fastFindMigrateblock(m.mem, cc)).toBe(1536);
      expect(cc.fastSearchFail).toBe(2);
    });

  if (fast)
    it(
      profile === 'v6.17'
        ? 'isolate_migratepages scans the picked block without testing its skip hint again'
        : 'the picked block is marked skip, so isolate_migratepages_block gives it up at once',
      () => {
        const { m } = fullMachine(profile, freed);
        const cc = controlFor(m, 9);
        const res = m.run(() => isolateMigratepages(m, cc, true));
        const isolated = m.mem.pages.lists.toArray(cc.migratepages);
        if (profile === 'v6.17') {
          expect(res).toBe(2);
          expect(isolated.length).toBe(32);
          expect(Math.min(...isolated)).toBe(528);
        } else {
          // The v6.0-v6.3 behaviour the 6.5 re-application of "fix set skip in
          // fast_find_migrateblock" ended: the search's own skip mark makes the block scan
          // stop at its first pfn, so the fast search isolates nothing; the cached migrate
          // positions still move past the block.
          expect(res).toBe(1);
          expect(isolated).toEqual([]);
          expect(cc.migratePfn).toBe(1024);
          // (update_cached_migrate(cc, end_pfn) stores pageblock_end_pfn(end_pfn).)
          expect(zoneCompactState(topZone(m)).cachedMigratePfn).toEqual([1536, 1536]);
        }
        m.run(() => putbackMovablePages(m, cc.migratepages));
        expectInvariants(m);
      },
    );
});

describe.each(PROFILE_NAMES)('fast_isolate_freepages — %s', (profile) => {
  const fast = profile !== 'v4.8';
  const perOrder = profile === 'v6.17';

  it(
    fast
      ? 'takes a free page from the top quarter of the scan space, last list entries first'
      : 'v4.8 has no free-list search',
    () => {
      const { m } = fullMachine(profile, [100, 3000, 3500]);
      const cc = controlFor(m, 9);
      cc.nrMigratepages = 32;
      const isolatedBefore = m.mem.vmstat.get('compact_isolated');
      fastIsolateFreepages(m.mem, cc);
      if (!fast) {
        expect(cc.nrFreepages).toBe(0);
        return;
      }
      // The reverse walk meets 100 (too low), then 3000 (≥ low_pfn 2560): taken.
      expect(cc.nrFreepages).toBe(1);
      expect(m.mem.pages.lists.toArray(cc.freepages[0])).toEqual([3000]);
      expect(cc.searchOrder).toBe(0);
      expect(cc.fastSearchFail).toBe(0);
      expect(m.mem.vmstat.get('compact_isolated') - isolatedBefore).toBe(1);
      // The page's pageblock had nothing else: marked skip (v6.0/v6.3 because targets are
      // still short, v6.17 because the scan reached its end).
      expect(m.mem.pageblockSkip(2560)).toBe(true);
      // The list was rotated at the page taken: what was before it went to the end.
      expect(movableList(m, 0)).toEqual([100, 3500]);
    },
  );

  it('full compaction (order -1) and order 0 do not search', () => {
    const { m } = fullMachine(profile, [3000]);
    for (const order of [-1, 0]) {
      const cc = controlFor(m, order);
      cc.nrMigratepages = 32;
      fastIsolateFreepages(m.mem, cc);
      expect(cc.nrFreepages).toBe(0);
      expect(cc.fastSearchFail).toBe(0);
      freeCompactControl(m, cc);
    }
  });

  if (fast)
    it('settles for a page in the top half, and takes the rest of its pageblock around it', () => {
      // 2000 lies between min_pfn (1536) and low_pfn (2560); 2002 and 2004 are in its block.
      const { m } = fullMachine(profile, [100, 2000, 2002, 2004]);
      const cc = controlFor(m, 9);
      cc.nrMigratepages = 32;
      fastIsolateFreepages(m.mem, cc);
      const got = m.mem.pages.lists.toArray(cc.freepages[0]).sort((a, b) => a - b);
      expect(got).toEqual([2000, 2002, 2004]);
      expect(cc.nrFreepages).toBe(3);
      expect(movableList(m, 0)).toEqual([100]);
      expectInvariants(m);
    });

  if (fast)
    it('at the start of a scan with nothing above min_pfn: direct compaction moves the free scanner to min_pfn', () => {
      const { m } = fullMachine(profile, [1000]);
      const kcompactd = controlFor(m, 9);
      kcompactd.nrMigratepages = 32;
      fastIsolateFreepages(m.mem, kcompactd);
      expect(kcompactd.nrFreepages).toBe(0);
      expect(kcompactd.fastSearchFail).toBe(1);
      // highest (512) is below min_pfn (1536): not used, the free scanner stays.
      expect(kcompactd.freePfn).toBe(3584);
      freeCompactControl(m, kcompactd);
      const direct = controlFor(m, 9, { direct: true });
      direct.nrMigratepages = 32;
      fastIsolateFreepages(m.mem, direct);
      expect(direct.freePfn).toBe(1536);
    });

  if (fast)
    it('at the start of a scan near a zone starting at pfn 0, nothing seen: min_pfn 0 takes pfn 0 (highest stays 0)', () => {
      const { m } = fullMachine(profile, []);
      const cc = controlFor(m, 9);
      cc.nrMigratepages = 32;
      // The scanners 512 pfns apart at the bottom: min_pfn is block 0.
      cc.freePfn = 512;
      fastIsolateFreepages(m.mem, cc);
      expect(cc.fastSearchFail).toBe(1);
      expect(cc.freePfn).toBe(0);
      freeCompactControl(m, cc);
    });

  it('compact_init_free_pfn: 0 until skip hints are reset, then the highest block whose sample shows a free page (6.x)', () => {
    const { m, zone } = fullMachine(profile, [100, 3000]);
    const s = zoneCompactState(zone);
    expect(s.initFreePfn).toBe(0);
    resetIsolationSuitable(m.mem, zone);
    // The free side walks 4095, 3583, 3071 … sampling every 8th page of each block: 3000
    // (block 2560-3071) is a sample. v4.8 has no compact_init_free_pfn.
    expect(s.initFreePfn).toBe(profile === 'v4.8' ? 0 : 3071);
  });

  it('6.x resets only skip hints a sample justifies; a block of driver pages keeps its hint (v4.8 clears all)', () => {
    const { m, zone } = fullMachine(profile, [3000]);
    for (let pfn = 0; pfn < zone.zoneEndPfn; pfn += 512) m.mem.setPageblockSkip(pfn, true);
    resetIsolationSuitable(m.mem, zone);
    const skipped = [];
    for (let pfn = 0; pfn < zone.zoneEndPfn; pfn += 512)
      if (m.mem.pageblockSkip(pfn)) skipped.push(pfn);
    // No LRU pages in mops; only block 2560 shows a free page in its sample.
    expect(skipped).toEqual(profile === 'v4.8' ? [] : [0, 512, 1024, 1536, 2048, 3072, 3584]);
  });

  if (fast)
    it('mm_compaction_fast_isolate_freepages fires in v6.17 only', () => {
      // Three free pages: __isolate_free_page keeps the zone above its min watermark.
      const { m } = fullMachine(profile, [100, 3000, 3500]);
      const seen: unknown[] = [];
      m.mem.trace.enabled.mm_compaction_fast_isolate_freepages = true;
      m.mem.trace.on('mm_compaction_fast_isolate_freepages', (e) => seen.push(e));
      const cc = controlFor(m, 9);
      cc.nrMigratepages = 32;
      fastIsolateFreepages(m.mem, cc);
      expect(seen).toEqual(
        perOrder ? [{ start_pfn: 1536, end_pfn: 3584, nr_scanned: 2, nr_taken: 1 }] : [],
      );
    });
});
