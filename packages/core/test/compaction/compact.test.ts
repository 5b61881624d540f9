import { describe, expect, it } from 'vitest';
import { zoneCompactState } from '../../src/compaction/state.js';
import {
  __GFP,
  ALLOC,
  allocAllFree,
  COMPACT,
  COMPACT_PRIO,
  checkerboard,
  compactionState,
  compactionSuitable,
  compactMemory,
  compactZones,
  createMachine,
  createMovableFiller,
  Errno,
  freeCompactControl,
  GFP,
  gfpMaskV4_8,
  isolateFreePage,
  isolateMigratepagesBlock,
  type Machine,
  MIGRATE,
  MIGRATE_MODE,
  MopsError,
  newCompactControl,
  PROFILE_NAMES,
  type ProfileName,
  pageblockSkipPersistent,
  pageIsBuddy,
  traceRecorder,
  tryToCompactPages,
  WMARK,
} from '../../src/index.js';
import { TestDriver } from '../driver.js';
import { expectInvariants, smallMachine } from '../helpers.js';
import { driverPagesFirst, driverPagesInBlock1 } from './layout.js';

/**
 * The S32 machine: one Normal zone of 4 MOVABLE pageblocks; block 0 holds 10 published
 * driver pages and is otherwise free; blocks 1-2 are full of unmovable pages; block 3 has
 * one unmovable page at its first pfn and 511 free pages.
 */
function s32Machine(profile: ProfileName) {
  return driverPagesFirst(profile, 10, { freeRestOfBlock0: true });
}

function run(m: Machine) {
  return m.run(() => compactMemory(m));
}

describe.each(PROFILE_NAMES)(
  'S32 compaction moves movable pages from low to high pfns — %s',
  (profile) => {
    it('migrates all 10 pages into block 3, frees block 0 as one order-9 block, with the exact counters', () => {
      const { m, drv } = s32Machine(profile);
      const ev0 = m.mem.vmstat.snapshotEvents();
      const targets: number[] = [];
      m.trace.on('mm_migrate_pages', () => {});
      const migrateCalls = drv.calls;
      expect(run(m)).toEqual([COMPACT.COMPLETE]);
      for (const c of migrateCalls.filter((c) => c.cb === 'migrate')) targets.push(c.dst as number);
      const d = (n: string) => m.mem.vmstat.get(n) - ev0[n];
      expect(d('pgmigrate_success')).toBe(10);
      expect(d('compact_isolated')).toBe(25);
      expect(d('compact_free_scanned')).toBe(profile === 'v4.8' ? 5 : 16);
      expect(d('compact_migrate_scanned')).toBeGreaterThan(0);
      expect(d('compact_stall')).toBe(0);
      // Destinations: handed out from the head of the split list (v4.8-v6.3), or split from the
      // per-order lists lowest pfn first (v6.17).
      const expected =
        profile === 'v6.17'
          ? [1537, 1538, 1539, 1540, 1541, 1542, 1543, 1544, 1545, 1546]
          : [1551, 1550, 1549, 1548, 1547, 1546, 1545, 1544, 1543, 1542];
      expect(targets).toEqual(expected);
      for (const t of targets) expect(drv.owned.has(t)).toBe(true);
      expect(drv.owned.size).toBe(10);
      expect(pageIsBuddy(m.mem, 0, 9)).toBe(true);
      // Blocks 1 and 2 were fully scanned with nothing isolated: skip bits in 6.x only.
      expect(m.mem.pageblockSkip(512)).toBe(profile !== 'v4.8');
      expect(m.mem.pageblockSkip(1024)).toBe(profile !== 'v4.8');
      expect(m.mem.warnings).toEqual([]);
      expectInvariants(m);
    });
  },
);

/** migrate_pfn and free_pfn of an mm_compaction_end line. */
function endPfns(line: string): { migrate: number; free: number } {
  const m = /mm_compaction_end: .*migrate_pfn=(0x[0-9a-f]+) free_pfn=(0x[0-9a-f]+) /.exec(line);
  if (!m) throw new Error(`not an mm_compaction_end line: ${line}`);
  return { migrate: Number(m[1]), free: Number(m[2]) };
}

describe('S34 scanners meet', () => {
  /** Runs `body`, expects one compact_zone ending with `status`, scanners met, positions reset. */
  function expectScannersMet(m: Machine, body: () => void, status: string) {
    const rec = traceRecorder(m, { events: ['mm_compaction_begin', 'mm_compaction_end'] });
    body();
    rec.stop();
    expect(rec.lines).toHaveLength(2);
    expect(rec.lines[1]).toMatch(
      new RegExp(
        `mm_compaction_end: zone_start=0x0 .* zone_end=0x800, mode=sync status=${status}$`,
      ),
    );
    const { migrate, free } = endPfns(rec.lines[1]);
    expect(free >> 9).toBeLessThanOrEqual(migrate >> 9);
    const z = m.mem.populatedZones[0];
    expect(z.zoneStartPfn).toBe(0);
    // The next run starts from scratch: migrate at the zone start, free at the last block.
    expect(zoneCompactState(z)).toMatchObject({ cachedMigratePfn: [0, 0], cachedFreePfn: 0x600 });
  }

  it.each(PROFILE_NAMES)(
    'whole zone (compact_memory): cached positions reset to the zone start and the last pageblock; COMPLETE — %s',
    (profile) => {
      const { m } = s32Machine(profile);
      expectScannersMet(m, () => run(m), 'complete');
    },
  );

  it.each(PROFILE_NAMES)(
    'whole zone, the free scanner starting right above a migrate block of 10 movable pages: -ENOMEM, all put back, COMPLETE with nothing migrated — %s',
    (profile) => {
      // 4 MiB: two pageblocks. Block 0: 10 driver pages at pfns 0-9, the rest unmovable;
      // block 1 free but for its first pfn, which keeps its order-9 buddy from forming.
      const m = smallMachine('4M', { profile });
      const drv = new TestDriver(m);
      while (m.allocPages(GFP.HIGHUSER_MOVABLE, 0) >= 0);
      for (let p = 0; p < 10; p++) m.putPage(p);
      expect(drv.alloc(10).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      for (let p = 513; p < 1024; p++) m.putPage(p);
      const rec = traceRecorder(m, { events: ['mm_compaction_end'] });
      const before = m.mem.vmstat.get('pgmigrate_success');
      expect(m.run(() => compactMemory(m))).toEqual([COMPACT.COMPLETE]);
      rec.stop();
      // The free scanner may not take targets from the block the migrate scanner is in:
      // compaction_alloc finds none, migrate_pages returns -ENOMEM, the pages go back.
      expect(m.mem.vmstat.get('pgmigrate_success') - before).toBe(0);
      expect(drv.callsOf('isolate')).toHaveLength(10);
      expect(drv.callsOf('migrate')).toHaveLength(0);
      expect(drv.callsOf('putback')).toHaveLength(10);
      const { migrate, free } = endPfns(rec.lines[0]);
      expect(free >> 9).toBeLessThanOrEqual(migrate >> 9);
      expect(zoneCompactState(m.mem.populatedZones[0])).toMatchObject({
        cachedMigratePfn: [0, 0],
        cachedFreePfn: 0x200,
      });
      expectInvariants(m);
    },
  );

  it.each(PROFILE_NAMES)(
    'not whole_zone: free scanner at the block right above the migrate scanner; PARTIAL_SKIPPED — %s',
    (profile) => {
      // Blocks 2-3: unmovable and free pages alternating, no free block of order 1 or more.
      const { m } = driverPagesInBlock1(profile);
      // Cached positions: migrate at block 2, free at block 3 (no whole_zone: 0x400 > 0).
      Object.assign(zoneCompactState(m.mem.populatedZones[0]), {
        cachedMigratePfn: [0x400, 0x400],
        cachedFreePfn: 0x600,
      });
      let results: number[] = [];
      const body = () => {
        results = m.run(() => compactZones(m, 2, 'sync_light'));
      };
      expectScannersMet(m, body, 'partial_skipped');
      expect(results).toEqual([COMPACT.PARTIAL_SKIPPED]);
    },
  );
});

describe.each(PROFILE_NAMES)('the compaction fields of a fresh zone start at 0 — %s', (profile) => {
  it('a fresh zone above pfn 0 gets no whole_zone in 6.x (compact_init_migrate_pfn is 0): PARTIAL_SKIPPED; v4.8 COMPLETE', () => {
    // x86_64: DMA from pfn 1, DMA32 from 4096. The cached positions (0) lie outside both
    // zones, so each run starts at the zone start and the last pageblock.
    const m = createMachine({ memory: '64M', profile });
    checkerboard(m);
    const rec = traceRecorder(m, { events: ['mm_compaction_begin'] });
    const results = m.run(() => compactZones(m, 9, 'sync_light'));
    rec.stop();
    expect(rec.lines.map((l) => l.replace(/^.*zone_start=/, 'zone_start='))).toEqual([
      'zone_start=0x1 migrate_pfn=0x1 free_pfn=0xe00 zone_end=0x1000, mode=sync',
      'zone_start=0x1000 migrate_pfn=0x1000 free_pfn=0x3e00 zone_end=0x4000, mode=sync',
    ]);
    const r = profile === 'v4.8' ? COMPACT.COMPLETE : COMPACT.PARTIAL_SKIPPED;
    expect(results).toEqual([r, r]);
  });

  it('a fresh zone at pfn 0: the cached free pfn 0 lies in the zone, so the first cached-position run meets at once, scans nothing and resets the positions', () => {
    const m = smallMachine('8M', { profile });
    const all: number[] = [];
    for (let p = m.allocPages(GFP.KERNEL, 0); p >= 0; p = m.allocPages(GFP.KERNEL, 0)) all.push(p);
    for (const p of all) if (p % 2) m.putPage(p);
    const z = m.mem.populatedZones[0];
    expect(zoneCompactState(z)).toMatchObject({
      cachedMigratePfn: [0, 0],
      cachedFreePfn: 0,
      initMigratePfn: 0,
    });
    const rec = traceRecorder(m, { events: ['mm_compaction_begin', 'mm_compaction_end'] });
    const ev0 = m.mem.vmstat.snapshotEvents();
    const d = (n: string) => m.mem.vmstat.get(n) - ev0[n];
    const req = { gfp: GFP.HIGHUSER_MOVABLE, order: 2, allocFlags: 0, prio: COMPACT_PRIO.ASYNC };
    expect(m.run(() => tryToCompactPages(m, req))).toBe(COMPACT.COMPLETE);
    expect([d('compact_migrate_scanned'), d('compact_free_scanned')]).toEqual([0, 0]);
    expect(zoneCompactState(z)).toMatchObject({ cachedMigratePfn: [0, 0], cachedFreePfn: 0x600 });
    // The next run scans the zone from the reset positions.
    expect(m.run(() => tryToCompactPages(m, req))).toBe(COMPACT.COMPLETE);
    rec.stop();
    expect(rec.lines.map((l) => l.replace(/^.*zone_start=/, 'zone_start='))).toEqual([
      'zone_start=0x0 migrate_pfn=0x0 free_pfn=0x0 zone_end=0x800, mode=async',
      'zone_start=0x0 migrate_pfn=0x0 free_pfn=0x0 zone_end=0x800, mode=async status=complete',
      'zone_start=0x0 migrate_pfn=0x0 free_pfn=0x600 zone_end=0x800, mode=async',
      'zone_start=0x0 migrate_pfn=0x600 free_pfn=0x600 zone_end=0x800, mode=async status=complete',
    ]);
  });
});

describe.each(PROFILE_NAMES)('S16 compaction finds no target — %s', (profile) => {
  it('migrate_pages fails with -ENOMEM before any driver call; the pages go back; the scanners met, so the run is COMPLETE', () => {
    // The S32 machine without its free pages: 10 driver pages at pfns 0-9, every other page
    // allocated and unmovable, so the free scanner meets the migrate scanner empty-handed.
    const { m, drv } = driverPagesFirst(profile, 10, { freeTop: false });
    const pages = [...drv.owned];
    expect(m.mem.populatedZones[0].nrFreePages).toBe(0);
    const ev0 = m.mem.vmstat.snapshotEvents();
    const rec = traceRecorder(m, { events: ['mm_migrate_pages', 'mm_compaction_end'] });
    expect(run(m)).toEqual([COMPACT.COMPLETE]);
    rec.stop();
    const d = (n: string) => m.mem.vmstat.get(n) - ev0[n];
    expect(drv.calls.filter((c) => c.cb === 'migrate')).toEqual([]);
    expect(drv.calls.filter((c) => c.cb === 'isolate').length).toBeGreaterThan(0);
    // Every page isolated came back through putback_movable_pages, unmoved, in list order:
    // the migrate scanner adds each page at the head of cc->migratepages.
    expect(drv.calls.filter((c) => c.cb === 'putback').map((c) => c.pfn)).toEqual(
      drv.calls
        .filter((c) => c.cb === 'isolate')
        .map((c) => c.pfn)
        .reverse(),
    );
    expect([...drv.owned].sort((a, b) => a - b)).toEqual(pages.slice().sort((a, b) => a - b));
    expect(drv.isolated).toBe(0);
    expect(d('pgmigrate_success')).toBe(0);
    expect(d('compact_free_scanned')).toBeGreaterThan(0);
    expect(d('compact_isolated')).toBe(drv.calls.filter((c) => c.cb === 'isolate').length);
    expect(rec.lines.some((l) => /mm_migrate_pages: nr_succeeded=0 /.test(l))).toBe(true);
    expect(rec.lines.at(-1)).toMatch(/mm_compaction_end: .* status=complete$/);
    expect(m.mem.warnings).toEqual([]);
    expectInvariants(m);
  });
});

describe.each(PROFILE_NAMES)('S16 with the scanners apart — %s', (profile) => {
  it('the free scanner stops at a free page below the min watermark: -ENOMEM with the scanners apart is COMPACT_CONTENDED, no signal needed', () => {
    // Every page a filler page but 64 free ones in block 3, below the min watermark (256):
    // __isolate_free_page() refuses the first, the free scanner gives up in that block.
    const m = smallMachine('8M', { profile, minFreeKbytes: 1024 });
    const f = createMovableFiller(m);
    const pages = f.alloc(Number.MAX_SAFE_INTEGER, { reserves: true });
    for (const p of pages) if (p >= 1536 && p % 8 === 1) f.free(p);
    expect(m.mem.nrFreePages()).toBe(64);
    expect(m.mem.populatedZones[0].watermark[WMARK.MIN]).toBe(256);
    const rec = traceRecorder(m, { events: ['mm_compaction_end'] });
    expect(run(m)).toEqual([COMPACT.CONTENDED]);
    rec.stop();
    const end = /migrate_pfn=(0x[0-9a-f]+) free_pfn=(0x[0-9a-f]+) .* status=contended$/.exec(
      rec.lines.at(-1) ?? '',
    );
    expect(end).not.toBeNull();
    // Scanners apart: the free scanner stopped in block 3, the migrate scanner in block 0.
    const [migratePfn, freePfn] = [Number(end?.[1]), Number(end?.[2])];
    expect(freePfn >> 9).toBe(3);
    expect(migratePfn >> 9).toBeLessThan(freePfn >> 9);
    expect(m.mem.vmstat.get('pgmigrate_success')).toBe(0);
    expect(f.isolated.size).toBe(0);
    expect(m.mem.warnings).toEqual([]);
    expectInvariants(m);
  });
});

describe.each(PROFILE_NAMES)('__isolate_free_page of half a pageblock (T7) — %s', (profile) => {
  it('turns the block MOVABLE; v6.17 moves its other free pages to the MOVABLE lists too (move_freepages_block)', () => {
    const m = smallMachine('4M', { profile });
    const all: number[] = [];
    for (let p = m.allocPages(GFP.KERNEL, 0); p >= 0; p = m.allocPages(GFP.KERNEL, 0)) all.push(p);
    m.mem.setPageblockMigratetype(0, MIGRATE.UNMOVABLE);
    // Block 0: an order-8 free block at 0 and an order-7 one at 256, both UNMOVABLE.
    for (let p = 0; p < 384; p++) m.freePages(p, 0);
    const listType = (pfn: number) => m.mem.pages.type[pfn] & 0xff;
    expect([m.mem.pages.priv[0], m.mem.pages.priv[256]]).toEqual([8, 7]);
    expect(listType(256)).toBe(MIGRATE.UNMOVABLE);
    expect(isolateFreePage(m.mem, 0, 8)).toBe(256);
    expect(m.mem.pageblockMigratetype(0)).toBe(MIGRATE.MOVABLE);
    expect(listType(256)).toBe(profile === 'v6.17' ? MIGRATE.MOVABLE : MIGRATE.UNMOVABLE);
  });
});

describe.each(PROFILE_NAMES)(
  '__isolate_free_page in a pageblock starting before its zone — %s',
  (profile) => {
    it("v6.17's move_freepages_block() refuses the block (its type stays); before, the type changes", () => {
      // 64 MiB: DMA starts at pfn 1, inside pageblock 0.
      const m = createMachine({ memory: '64M', profile });
      expect(m.mem.populatedZones[0].zoneStartPfn).toBe(1);
      const all = allocAllFree(m);
      m.mem.setPageblockMigratetype(1, MIGRATE.UNMOVABLE);
      // Room above the watermark, then an order-8 free block at 256.
      for (const p of all) if (p >= 512 && p < 4096) m.putPage(p);
      for (let p = 256; p < 512; p++) m.putPage(p);
      expect(m.mem.pages.priv[256]).toBe(8);
      expect(isolateFreePage(m.mem, 256, 8)).toBe(256);
      expect(m.mem.pageblockMigratetype(1)).toBe(
        profile === 'v6.17' ? MIGRATE.UNMOVABLE : MIGRATE.MOVABLE,
      );
    });
  },
);

describe.each(PROFILE_NAMES)('compound pages in the migrate scanner (§0.2, T6) — %s', (profile) => {
  it('v6.17 skips a compound page only from the target order (or pageblock order) up; before, every one', () => {
    const m = smallMachine('4M', { profile });
    const scanned = (order: number, target: number): number => {
      const pfn = m.allocPages(GFP.KERNEL | __GFP.COMP, order);
      const chunk = 1 << Math.max(order, target);
      const end = (pfn + chunk) & ~(chunk - 1);
      // Direct async compaction: a failure ends the target-order block (skip_on_failure).
      const cc = newCompactControl(m, m.mem.populatedZones[0], {
        order: target,
        mode: MIGRATE_MODE.ASYNC,
        directCompaction: true,
        migratetype: MIGRATE.MOVABLE,
      });
      m.run(() => isolateMigratepagesBlock(m, cc, pfn, end, 0));
      freeCompactControl(m, cc);
      return cc.totalMigrateScanned;
    };
    // An order-2 page for an order-3 target: v6.17 examines its head, which fails, and the
    // failure ends the order-3 block: one pfn scanned. Up to v6.3 it is skipped, and the
    // skip counts as scanned only in v6.17.
    expect(scanned(2, 3)).toBe(1);
    // An order-3 page for the same target is skipped whole (v6.17 counts all of it).
    expect(scanned(3, 3)).toBe(profile === 'v6.17' ? 8 : 1);
    expectInvariants(m);
  });
});

describe.each(PROFILE_NAMES)('pageblock_skip_persistent (T5) — %s', (profile) => {
  it('both blocks of an order-10 compound page are no migration source in 6.x; v4.8 scans them', () => {
    const m = smallMachine('16M', { profile });
    // v4.8 boot freed the top block last, to the list head, so allocations start at the top:
    // park the blocks above 0 (movable, no type change) so the compound page lands at 0.
    const parked: number[] = [];
    if (profile === 'v4.8')
      for (let i = 0; i < 3; i++) parked.push(m.allocPages(GFP.HIGHUSER_MOVABLE, 10));
    expect(parked).toEqual(profile === 'v4.8' ? [3072, 2048, 1024] : []);
    expect(m.allocPages(GFP.KERNEL | __GFP.COMP, 10)).toBe(0);
    for (const p of parked) m.freePages(p, 10);
    // The compound page's head, a tail opening the second block, and a tail closing it
    // (v4.8 has no such test: never persistent).
    for (const pfn of [0, 512, 1023])
      expect(pageblockSkipPersistent(m.mem, pfn)).toBe(profile !== 'v4.8');
    expect(pageblockSkipPersistent(m.mem, 1024)).toBe(false);
    const ev: string[] = [];
    m.trace.on('mm_compaction_isolate_migratepages', (e) =>
      ev.push(`${e.start_pfn}-${e.end_pfn}:${e.nr_scanned}`),
    );
    run(m);
    // v4.8 jumps over the head's 1024 pages (clamped to the block end), then walks the
    // tails of the second block one by one; 6.x starts at the first block past the page.
    if (profile === 'v4.8') expect(ev.slice(0, 2)).toEqual(['0-512:1', '512-1024:512']);
    else expect(ev[0]).toMatch(/^1024-1536:/);
    expectInvariants(m);
  });
});

describe.each(PROFILE_NAMES)(
  'free scanner and a compound page crossing the block end (T7) — %s',
  (profile) => {
    it('v6.17 walks through it; earlier releases jump by its order', () => {
      const m = smallMachine('16M', { profile });
      const filler = createMovableFiller(m);
      for (let p = m.allocPages(GFP.HIGHUSER_MOVABLE, 0); p >= 0; )
        p = m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
      // An order-10 compound page over blocks 6-7, 64 movable pages at the bottom to migrate,
      // and free odd pfns in block 4 as targets.
      for (let p = 3072; p < 4096; p++) m.putPage(p);
      expect(m.allocPages(GFP.HIGHUSER_MOVABLE | __GFP.COMP, 10)).toBe(3072);
      for (let p = 0; p < 64; p++) m.putPage(p);
      filler.alloc(64);
      for (let p = 2049; p < 2560; p += 2) m.putPage(p);
      const ev: string[] = [];
      m.trace.on('mm_compaction_isolate_freepages', (e) =>
        ev.push(`${e.start_pfn}-${e.end_pfn}:${e.nr_scanned}`),
      );
      run(m);
      // Block 7 holds only tails: 512 scanned, nothing isolated, so block 6 is scanned with a
      // stride of 2. Its head starts a page reaching 512 pfns past the block end: v6.17 counts
      // 1 for it and walks the tails (256 pfns visited); before 6.7 the scan jumps past it.
      expect(ev.slice(0, 2)).toEqual([
        '3584-4096:512',
        profile === 'v6.17' ? '3072-3584:256' : '3072-3584:1',
      ]);
      expectInvariants(m);
    });
  },
);

describe('compaction bad input', () => {
  it('sysctls out of range are MopsErrors naming the value and the range', () => {
    const m = smallMachine('4M');
    const s = compactionState(m).sysctl;
    expect(() => {
      s.compactionProactiveness = 101;
    }).toThrow(/compaction_proactiveness must be an integer 0..100, got 101/);
    expect(() => {
      s.extfragThreshold = -1;
    }).toThrow(/extfrag_threshold must be an integer 0..1000/);
    expect(() => {
      s.compactUnevictableAllowed = 2;
    }).toThrow(MopsError);
    expect(s.compactionProactiveness).toBe(20);
  });

  it('v4.8 has no vm.compaction_proactiveness: it reads 0, and only 0 may be written', () => {
    const m = smallMachine('4M', { profile: 'v4.8' });
    const s = compactionState(m).sysctl;
    expect(s.compactionProactiveness).toBe(0);
    s.compactionProactiveness = 0;
    const err = (() => {
      try {
        s.compactionProactiveness = 20;
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(MopsError);
    expect(err).toMatchObject({ code: 'E_USAGE' });
    expect(String((err as Error).message)).toMatch(
      /vm.compaction_proactiveness does not exist in v4.8 \(proactive compaction came in 5.9\), got 20/,
    );
    expect(s.compactionProactiveness).toBe(0);
    expectInvariants(m);
  });

  it('v6.17 compact_memory accepts only 1; older profiles take any value', () => {
    const a = smallMachine('4M', { profile: 'v6.17' });
    expect(() => a.run(() => compactMemory(a, 2))).toThrow(/accepts only 1/);
    const b = smallMachine('4M', { profile: 'v6.3' });
    expect(b.run(() => compactMemory(b, 2))).toEqual([COMPACT.COMPLETE]);
  });
});

describe.each(PROFILE_NAMES)('mm_compaction_suitable (T9) — %s', (profile) => {
  const since617 = profile === 'v6.17';

  it('compact_memory: one ret=continue event per zone before v6.17, none in v6.17', () => {
    const { m } = s32Machine(profile);
    const rec = traceRecorder(m, { events: ['mm_compaction_suitable'] });
    run(m);
    rec.stop();
    if (since617) expect(rec.lines).toEqual([]);
    else
      expect(rec.lines).toEqual([
        expect.stringMatching(
          /mm_compaction_suitable: node=0 zone=Normal\s+order=-1 ret=continue$/,
        ),
      ]);
  });

  it('an allocation that would already succeed: SUCCESS, traced only before v6.17', () => {
    const { m } = s32Machine(profile);
    const rec = traceRecorder(m, { events: ['mm_compaction_suitable'] });
    // Block 0 is mostly free: an order-3 movable request is satisfiable at once.
    const r = m.run(() => compactZones(m, 3, 'sync_light'));
    rec.stop();
    expect(r).toEqual([COMPACT.SUCCESS]);
    if (since617) expect(rec.lines).toEqual([]);
    else expect(rec.lines).toEqual([expect.stringMatching(/order=3 ret=(success|partial)$/)]);
  });
});

describe('the order-0 gate of compaction_suitable (T9)', () => {
  it('v6.17 starts from the request watermark; 6.x from min, or low for costly orders', () => {
    // min 2048, low 2560, high 3072 pages; 2,100 free, in large blocks.
    const gate = (profile: ProfileName, flags: number) => {
      const m = smallMachine('64M', { profile, minFreeKbytes: 8192 });
      const z = m.mem.populatedZones[0];
      while (z.nrFreePages > 2100) m.allocPages(GFP.KERNEL, 0);
      return compactionSuitable(m, z, 2, flags, z.idx, compactionState(m).sysctl);
    };
    // Order 2, the high watermark asked (kcompactd under defrag_mode): 2,100 pages pass
    // min + 8 but not high + 8.
    expect(gate('v6.3', ALLOC.WMARK_HIGH)).toBe(COMPACT.CONTINUE);
    expect(gate('v6.17', ALLOC.WMARK_HIGH)).toBe(COMPACT.SKIPPED);
  });
});

describe('the async costly-order gate of compaction_suit_allocation_order (T9, v6.17)', () => {
  it('tests the request watermark + compact_gap without ALLOC_CMA, untraced; then compaction_suitable', () => {
    // min 256, low 320 pages; order 9: compact_gap 1024.
    const check = (free: number) => {
      const m = smallMachine('64M', { profile: 'v6.17', minFreeKbytes: 1024 });
      const z = m.mem.populatedZones[0];
      expect([z.wmarkPages(WMARK.MIN), z.wmarkPages(WMARK.LOW)]).toEqual([256, 320]);
      for (let p = m.allocPages(GFP.HIGHUSER_MOVABLE, 0); p >= 0; )
        p = m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
      for (let p = 1; z.nrFreePages < free; p += 2) m.putPage(p);
      expect(z.nrFreePages).toBe(free);
      const rec = traceRecorder(m, { events: ['mm_compaction_suitable'] });
      const sysctl = compactionState(m).sysctl;
      const r = compactionSuitable(m, z, 9, ALLOC.WMARK_MIN, z.idx, sysctl, true);
      rec.stop();
      return { r, lines: rec.lines };
    };
    // Below min + gap (1280): skipped by the async rule, no event.
    expect(check(1270)).toEqual({ r: COMPACT.SKIPPED, lines: [] });
    // Above min + gap but below low + gap (1344): the async rule passes; compaction_suitable
    // (min + gap + low - min) skips the zone and says so.
    expect(check(1312)).toEqual({
      r: COMPACT.SKIPPED,
      lines: [expect.stringMatching(/mm_compaction_suitable: .*order=9 ret=skipped$/)],
    });
  });
});

const batches = (lines: string[]) =>
  lines
    .map((l) => /nr_taken=(\d+)/.exec(l)?.[1])
    .filter((n) => n !== undefined && n !== '0')
    .map(Number);

describe.each(PROFILE_NAMES)('migrate scanner batches (T3, T6) — %s', (profile) => {
  it('a block migrated from is finished in one batch from 6.0 on; v4.8 stops at exactly 32', () => {
    const { m } = driverPagesInBlock1(profile);
    const rec = traceRecorder(m, { events: ['mm_compaction_isolate_migratepages'] });
    run(m);
    rec.stop();
    expect(batches(rec.lines)).toEqual(profile === 'v4.8' ? [32, 32, 32, 4] : [32, 68]);
    expectInvariants(m);
  });

  it('the first iteration in pageblock 0 finishes that block (last_migrated_pfn starts at 0): one batch and the skip bit from 6.0 on', () => {
    // 40 driver pages at pfns 0-39, the rest of blocks 0-2 unmovable, block 3 free but its
    // first pfn. compact_zone(): pageblock_start_pfn(0) == pageblock_start_pfn(0), so the
    // first iteration already sets rescan / finish_pageblock.
    const { m } = driverPagesFirst(profile, 40);
    const rec = traceRecorder(m, { events: ['mm_compaction_isolate_migratepages'] });
    run(m);
    rec.stop();
    const block0 = rec.lines
      .filter((l) => l.includes('range=(0x0 ') || l.includes('range=(0x20 '))
      .map((l) => l.replace(/^.*range=/, 'range='));
    if (profile === 'v4.8') {
      expect(block0).toEqual([
        'range=(0x0 ~ 0x20) nr_scanned=32 nr_taken=32',
        'range=(0x20 ~ 0x200) nr_scanned=480 nr_taken=8',
      ]);
      expect(m.mem.pageblockSkip(0)).toBe(false);
    } else {
      expect(block0).toEqual(['range=(0x0 ~ 0x200) nr_scanned=512 nr_taken=40']);
      expect(m.mem.pageblockSkip(0)).toBe(true);
    }
    expectInvariants(m);
  });

  it('the async free scanner visits every pfn in v4.8; 6.x strides by up to 32 and misses odd-pfn targets', () => {
    const { m } = driverPagesInBlock1(profile);
    const ev0 = m.mem.vmstat.get('pgmigrate_success');
    m.run(() => compactZones(m, -1, 'async'));
    const moved = m.mem.vmstat.get('pgmigrate_success') - ev0;
    if (profile === 'v4.8') expect(moved).toBeGreaterThan(0);
    else expect(moved).toBe(0);
    expectInvariants(m);
  });
});

describe.each(PROFILE_NAMES)('the free scanner after a block that gave nothing — %s', (profile) => {
  it('v4.8 scans the next block pfn by pfn; 6.x doubles the stride (2 here) and misses odd-pfn targets', () => {
    // 10 driver pages at pfns 0-9; block 3 allocated; block 2 free at its odd pfns only.
    const m = smallMachine('8M', { profile });
    const drv = new TestDriver(m);
    for (let p = m.allocPages(GFP.HIGHUSER_MOVABLE, 0); p >= 0; )
      p = m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
    for (let p = 0; p < 10; p++) m.putPage(p);
    expect(drv.alloc(10).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (let p = 1025; p < 1536; p += 2) m.putPage(p);
    const ev0 = m.mem.vmstat.snapshotEvents();
    const rec = traceRecorder(m, { events: ['mm_compaction_isolate_freepages'] });
    m.run(() => compactMemory(m));
    rec.stop();
    const d = (k: string) => m.mem.vmstat.get(k) - ev0[k];
    const scans = rec.lines.slice(0, 2).map((l) => l.replace(/^.*range=/, 'range='));
    expect(scans[0]).toBe('range=(0x600 ~ 0x800) nr_scanned=512 nr_taken=0');
    if (profile === 'v4.8') {
      expect(scans[1]).toBe('range=(0x400 ~ 0x414) nr_scanned=20 nr_taken=10');
      expect(d('pgmigrate_success')).toBe(10);
    } else {
      expect(scans[1]).toBe('range=(0x400 ~ 0x600) nr_scanned=256 nr_taken=0');
      expect(d('pgmigrate_success')).toBe(0);
    }
    expectInvariants(m);
  });
});

describe.each(PROFILE_NAMES)('v4.8 trace layouts (T15) — %s', (profile) => {
  it("mm_compaction_try_to_compact_pages prints v4.8's raw gfp_mask and priority numbers, flag names and 6.x numbers later", () => {
    const { m } = driverPagesFirst(profile, 10);
    const rec = traceRecorder(m, { events: ['mm_compaction_try_to_compact_pages'] });
    for (const prio of [COMPACT_PRIO.ASYNC, COMPACT_PRIO.SYNC_LIGHT])
      m.run(() => tryToCompactPages(m, { gfp: GFP.KERNEL, order: 2, allocFlags: 0, prio }));
    rec.stop();
    // v4.8: ___GFP_DIRECT_RECLAIM 0x400000 | ___GFP_KSWAPD_RECLAIM 0x2000000 | IO | FS, and
    // enum compact_priority { SYNC_LIGHT = 0, ASYNC = 1 }.
    expect(rec.lines.map((l) => l.replace(/^.*order=/, 'order='))).toEqual(
      profile === 'v4.8'
        ? ['order=2 gfp_mask=0x24000c0 priority=1', 'order=2 gfp_mask=0x24000c0 priority=0']
        : ['order=2 gfp_mask=GFP_KERNEL priority=2', 'order=2 gfp_mask=GFP_KERNEL priority=1'],
    );
  });

  it('gfpMaskV4_8 gives GFP_HIGHUSER_MOVABLE its v4.8 value', () => {
    expect(gfpMaskV4_8(GFP.HIGHUSER_MOVABLE).toString(16)).toBe('24200ca');
  });
});

describe('v4.8 mm_compaction_migratepages (T15)', () => {
  const profile = 'v4.8';
  it('after -ENOMEM counts the pages left on the list as failed', () => {
    // 4 driver pages; two targets at the top (2045, 2047) and three free pages in block 0
    // that keep the zone above __isolate_free_page's watermark. The driver fails pfn 3 for
    // good (put back inside migrate_pages), pfns 2 and 1 migrate, pfn 0 finds no target.
    const { m, drv } = driverPagesFirst(profile, 4, { freeTop: false });
    for (const p of [100, 102, 104, 2045, 2047]) m.putPage(p);
    drv.migrateRc = (src) => (src === 3 ? Errno.EBUSY : 0);
    const rec = traceRecorder(m, { events: ['mm_compaction_migratepages'] });
    run(m);
    rec.stop();
    expect(m.mem.vmstat.get('pgmigrate_success')).toBe(2);
    // nr_failed = the 1 page still listed; nr_migrated = 4 - 1 (the page put back counts
    // as migrated). 6.x would print nr_migrated=2 nr_failed=2.
    expect(rec.lines[0]).toMatch(/nr_migrated=3 nr_failed=1$/);
    expectInvariants(m);
  });
});
