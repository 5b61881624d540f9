import { describe, expect, it } from 'vitest';
import {
  __ClearPageMovable,
  allocAllFree,
  allocPagesDirectCompact,
  CaptureControl,
  COMPACT,
  COMPACT_PRIO,
  createMovableFiller,
  freeCompactControl,
  GFP,
  isolateFreePage,
  keepFreeTarget,
  type Machine,
  MIGRATE,
  MIGRATE_MODE,
  newCompactControl,
  PF_MEMALLOC,
  PROFILE_NAMES,
  type ProfileName,
  putPage,
  releaseFreepages,
  resetCachedPositions,
  traceRecorder,
  tryToCompactPages,
  ZS,
  zoneCompactState,
} from '../../src/index.js';
import { TestDriver } from '../driver.js';
import { expectInvariants, smallMachine } from '../helpers.js';
import { driverPagesInBlock1, pinnedCheckerboard, scannersMetBefore } from './layout.js';

/** 8 MiB, every page a driver page, then every odd page freed: 1024 free order-0 pages. */
function checkerboardOfDriverPages(profile: ProfileName) {
  const m = smallMachine('8M', { profile });
  const drv = new TestDriver(m);
  const pages = drv.alloc(2048);
  for (const p of pages) if (p % 2) m.run(() => drv.freeOwned(p));
  scannersMetBefore(m);
  return { m, drv };
}

function direct(m: Machine, order: number, prio: number): number {
  const t = m.sched.spawn('alloc', () =>
    allocPagesDirectCompact(m, {
      gfp: GFP.HIGHUSER_MOVABLE,
      order,
      allocFlags: 0,
      prio: prio as 0,
    }),
  );
  return m.sched.runToEnd(t);
}

const ev = (m: Machine, n: string) => m.mem.vmstat.get(n);

/** try_to_compact_pages alone (no allocation, no stall counting): its COMPACT_* result. */
function tryCompact(m: Machine, order: number, prio: number): number {
  const req = { gfp: GFP.HIGHUSER_MOVABLE, order, allocFlags: 0, prio: prio as 0 };
  return m.run(() => tryToCompactPages(m, req));
}

describe.each(PROFILE_NAMES)('S36 direct compaction accounting — %s', (profile) => {
  it('case 1: below the order-0 watermark plus compact_gap → SKIPPED, no stall counted', () => {
    const m = smallMachine('8M', { profile, minFreeKbytes: 1024 });
    while (m.allocPages(GFP.KERNEL, 0) >= 0);
    expect(tryCompact(m, 2, COMPACT_PRIO.ASYNC)).toBe(COMPACT.SKIPPED);
    expect(direct(m, 2, COMPACT_PRIO.ASYNC)).toBe(-1);
    expect(ev(m, 'compact_stall')).toBe(0);
    expect(ev(m, 'compact_fail')).toBe(0);
  });

  it('case 2: compaction makes a suitable page → stall+1, success+1, deferral reset', () => {
    const { m } = checkerboardOfDriverPages(profile);
    const zone = m.mem.populatedZones[0];
    zoneCompactState(zone).deferShift = 3;
    zoneCompactState(zone).orderFailed = 3; // order 2 is below it: not deferred
    zoneCompactState(zone).considered = 2;
    const pfn = direct(m, 2, COMPACT_PRIO.SYNC_LIGHT);
    expect(pfn).toBeGreaterThanOrEqual(0);
    expect(ev(m, 'compact_stall')).toBe(1);
    expect(ev(m, 'compact_success')).toBe(1);
    expect(ev(m, 'compact_fail')).toBe(0);
    expect(ev(m, 'pgmigrate_success')).toBeGreaterThan(0);
    expect(zoneCompactState(zone)).toMatchObject({ deferShift: 0, considered: 0 });
    expect(m.mem.warnings).toEqual([]);
    m.freePages(pfn, 2);
    expectInvariants(m);
  });

  it('case 3: nothing suitable → stall+1, fail+1; a sync run that completes defers the zone', () => {
    const m = pinnedCheckerboard(profile);
    const zone = m.mem.populatedZones[0];
    expect(direct(m, 2, COMPACT_PRIO.SYNC_LIGHT)).toBe(-1);
    expect(ev(m, 'compact_stall')).toBe(1);
    expect(ev(m, 'compact_fail')).toBe(1);
    expect(zoneCompactState(zone).deferShift).toBe(1);
    expectInvariants(m);
  });

  it('case 3, ASYNC priority: runs, nothing suitable → stall+1, fail+1, but the zone is not deferred', () => {
    const m = pinnedCheckerboard(profile);
    expect(direct(m, 2, COMPACT_PRIO.ASYNC)).toBe(-1);
    expect([ev(m, 'compact_stall'), ev(m, 'compact_fail')]).toEqual([1, 1]);
    expect(zoneCompactState(m.mem.populatedZones[0]).deferShift).toBe(0);
    expectInvariants(m);
  });

  it('case 4: every zone deferred → DEFERRED; 6.x counts a stall and a failure, v4.8 nothing', () => {
    const m = pinnedCheckerboard(profile);
    const s = zoneCompactState(m.mem.populatedZones[0]);
    s.deferShift = 3;
    s.considered = 0;
    s.orderFailed = 0;
    const before = [ev(m, 'compact_stall'), ev(m, 'compact_fail')];
    expect(tryCompact(m, 2, COMPACT_PRIO.SYNC_LIGHT)).toBe(COMPACT.DEFERRED);
    expect(direct(m, 2, COMPACT_PRIO.SYNC_LIGHT)).toBe(-1);
    const delta = profile === 'v4.8' ? 0 : 1;
    expect([ev(m, 'compact_stall') - before[0], ev(m, 'compact_fail') - before[1]]).toEqual([
      delta,
      delta,
    ]);
    expect(ev(m, 'compact_migrate_scanned')).toBe(0);
  });
});

describe('async direct compaction and the free scanner stride', () => {
  it('ASYNC scans free blocks with a stride of 32 and can miss every free page of a checkerboard', () => {
    const { m } = checkerboardOfDriverPages('v6.3');
    expect(direct(m, 2, COMPACT_PRIO.ASYNC)).toBe(-1);
    expect(ev(m, 'compact_fail')).toBe(1);
    expect(ev(m, 'pgmigrate_success')).toBe(0);
    expectInvariants(m);
  });
});

describe('the allocator slow path', () => {
  it('a high-order allocation that fails on a fragmented machine succeeds through direct compaction', () => {
    const { m } = checkerboardOfDriverPages('v6.3');
    const pfn = m.allocPages(GFP.HIGHUSER_MOVABLE, 3);
    expect(pfn).toBeGreaterThanOrEqual(0);
    expect(ev(m, 'compact_stall')).toBeGreaterThanOrEqual(1);
    expect(ev(m, 'compact_success')).toBe(1);
    m.freePages(pfn, 3);
    expectInvariants(m);
  });

  it.each(PROFILE_NAMES)(
    'mm_page_alloc fires once per allocation through the slow path, NULL when it fails — %s',
    (profile) => {
      const { m } = checkerboardOfDriverPages(profile);
      const rec = traceRecorder(m, { events: ['mm_page_alloc'] });
      const pfn = m.allocPages(GFP.HIGHUSER_MOVABLE, 3);
      expect(pfn).toBeGreaterThanOrEqual(0);
      // The migration targets are order 0; the allocation itself is the one order-3 line.
      const order3 = () => rec.lines.filter((l) => / order=3 /.test(l));
      expect(order3()).toHaveLength(1);
      expect(order3()[0]).not.toMatch(/page=(0{16}|\s+\(null\))/);
      const pinned = pinnedCheckerboard(profile);
      const prec = traceRecorder(pinned, { events: ['mm_page_alloc'] });
      expect(pinned.allocPages(GFP.HIGHUSER_MOVABLE, 3)).toBe(-1);
      const failed = prec.lines.filter((l) => / order=3 /.test(l));
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatch(
        profile === 'v4.8' ? /page= {10}\(null\) pfn=0 / : /page=0{16} pfn=0x0 /,
      );
    },
  );

  it.each(PROFILE_NAMES)(
    'mm_page_alloc comes last, after direct compaction reset the deferral for the page it got — %s',
    (profile) => {
      const { m } = checkerboardOfDriverPages(profile);
      const rec = traceRecorder(m, {
        events: ['mm_page_alloc', 'mm_compaction_defer_reset'],
        filter: 'order == 3',
      });
      expect(m.allocPages(GFP.HIGHUSER_MOVABLE, 3)).toBeGreaterThanOrEqual(0);
      const names = rec.lines.map((l) => /: (\w+):/.exec(l)?.[1]);
      expect(names.at(-1)).toBe('mm_page_alloc');
      expect(names.filter((n) => n === 'mm_page_alloc')).toHaveLength(1);
      // compaction_defer_reset(zone, order, true) in __alloc_pages_direct_compact().
      expect(rec.lines.at(-2)).toMatch(/mm_compaction_defer_reset: .* consider=0 /);
    },
  );
});

/** A zone stat item summed over the zones, as /proc/vmstat prints it. */
function zoneSum(m: Machine, item: number): number {
  return m.mem.populatedZones.reduce((n, z) => n + z.stat[item], 0);
}

describe.each(PROFILE_NAMES)('page capture during direct compaction (T3) — %s', (profile) => {
  it.each([
    ['a movable request in a MOVABLE block', MIGRATE.MOVABLE, GFP.HIGHUSER_MOVABLE],
    ['an unmovable request in an UNMOVABLE block', MIGRATE.UNMOVABLE, GFP.KERNEL],
  ] as const)('%s', (_what, blockType, gfp) => {
    const { m } = driverPagesInBlock1(profile, blockType);
    const rec = traceRecorder(m, { events: ['mm_compaction_end'] });
    const allocs = traceRecorder(m, { events: ['mm_page_alloc'], filter: 'order == 3' });
    // pgalloc_* (pages) and numa_hit / numa_local (allocations): rmqueue() counts them.
    const counts = () => [
      ['pgalloc_dma', 'pgalloc_dma32', 'pgalloc_normal'].reduce((n, k) => n + ev(m, k), 0),
      zoneSum(m, ZS.numa_hit),
      zoneSum(m, ZS.numa_local),
    ];
    const before = counts();
    const t = m.sched.spawn('alloc', () =>
      allocPagesDirectCompact(m, {
        gfp,
        order: 3,
        allocFlags: 0,
        prio: COMPACT_PRIO.SYNC_LIGHT,
      }),
    );
    const pfn = m.sched.runToEnd(t);
    rec.stop();
    const migrated = ev(m, 'pgmigrate_success');
    // 6.0/6.3 never capture a small block in a MOVABLE pageblock; v6.17 does for a movable
    // request; v4.8 has no capture (it stops after the first batch and takes pfn 512 from
    // the free lists).
    const captures = profile !== 'v4.8' && (blockType !== MIGRATE.MOVABLE || profile === 'v6.17');
    if (captures) {
      // The first batch frees pfns 543 down to 512 (the list is built head first): 536-543
      // merge to order 3 first and are captured; the rest of the batch still migrates.
      expect([pfn, migrated]).toEqual([536, 32]);
      expect(rec.lines.at(-1)).toMatch(/migrate_pfn=0x220 .*status=success$/);
    } else if (profile === 'v4.8') expect([pfn, migrated]).toEqual([512, 32]);
    // No capture: the block is finished (100 pages) before the free lists are tried.
    else expect([pfn, migrated]).toEqual([576, 100]);
    expect(m.mem.pages.refcount[pfn]).toBe(1);
    expect(ev(m, 'compact_success')).toBe(1);
    // A captured block never went through rmqueue(): not counted as an allocation.
    const after = counts();
    expect(after.map((n, i) => n - before[i])).toEqual(captures ? [0, 0, 0] : [8, 1, 1]);
    // Captured or not, the allocation is traced once.
    expect(allocs.lines).toHaveLength(1);
    expect(allocs.lines[0]).toContain(
      ` pfn=${profile === 'v4.8' ? pfn : `0x${pfn.toString(16)}`} `,
    );
    expectInvariants(m);
  });
});

describe('v6.17 releasing leftover targets: capture takes what a block the per-CPU lists do not take merges into (T3)', () => {
  /**
   * All of 4 MiB allocated; the targets' block at `at` (order `order`) isolated for a
   * compaction of order `order + 1`, its buddy then freed; the targets released with a
   * capture control open. Returns the block captured, or -1.
   */
  function release(order: number, at: number): number {
    const m = smallMachine('4M', { profile: 'v6.17' });
    while (m.allocPages(GFP.KERNEL, 0) >= 0);
    // Room above the watermark for __isolate_free_page, in the other pageblock.
    for (let p = 512; p < 768; p++) m.putPage(p);
    const size = 1 << order;
    m.mem.setPageblockMigratetype(at, MIGRATE.UNMOVABLE);
    return m.run(function* () {
      const cc = newCompactControl(m, m.mem.populatedZones[0], {
        order: order + 1,
        mode: MIGRATE_MODE.SYNC_LIGHT,
        directCompaction: true,
        migratetype: MIGRATE.UNMOVABLE,
      });
      for (let p = at; p < at + size; p++) m.putPage(p);
      expect(isolateFreePage(m.mem, at, order)).toBe(size);
      keepFreeTarget(m.mem, cc, at, order);
      for (let p = at + size; p < at + 2 * size; p++) m.putPage(p);
      const capture = new CaptureControl(cc, m.sched, m.mem);
      m.mem.captures.push(capture);
      releaseFreepages(m.mem, cc, capture);
      m.mem.captures.length = 0;
      freeCompactControl(m, cc);
      yield* [];
      return capture.page;
    });
  }

  it('an order-4 block (not a per-CPU order) merging to order 5 is captured', () => {
    expect(release(4, 64)).toBe(64);
  });

  it('an order-3 block goes through the per-CPU lists: its merge to order 4 is not captured', () => {
    expect(release(3, 64)).toBe(-1);
  });
});

describe.each(['v6.0', 'v6.3', 'v6.17'] as const)(
  'a capture during a scan that isolated nothing (compact_zone: ISOLATE_NONE goes to check_drain) — %s',
  (profile) => {
    it('v6.0 stops at once; v6.3 on go on to the next batch and stop after that migration', () => {
      const m = smallMachine('8M', { profile });
      const drv = new TestDriver(m);
      // Plain movable pages everywhere (no movable_ops: compaction cannot move them).
      for (let p = m.allocPages(GFP.HIGHUSER_MOVABLE, 0); p >= 0; )
        p = m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
      // Block 1: pfn 519 is the driver's only page; 512-518 are free, so freeing 519 makes
      // the order-3 block 512-519. Block 2: driver pages 1024-1087. Block 3: odd pages
      // free, the migration targets.
      m.putPage(519);
      expect(drv.alloc(1)).toEqual([519]);
      for (let p = 1024; p < 1088; p++) m.putPage(p);
      drv.alloc(64);
      for (let p = 512; p < 519; p++) m.putPage(p);
      m.mem.setPageblockMigratetype(512, MIGRATE.UNMOVABLE);
      for (let p = 1537; p < 2048; p += 2) m.putPage(p);
      // Asked to isolate 519, the driver gives the page up instead (as zsmalloc refuses a
      // page of a zspage it is freeing): the VM's put then frees it, in the compactor's task.
      const isolate = drv.isolate.bind(drv);
      drv.isolate = (page, mode) => {
        if (page !== 519) return isolate(page, mode);
        drv.owned.delete(page);
        if (m.profile.movableMarker !== 'page_type') __ClearPageMovable(m.mem, page);
        putPage(m.mem, page);
        return false;
      };
      scannersMetBefore(m);
      const t = m.sched.spawn('alloc', () =>
        allocPagesDirectCompact(m, {
          gfp: GFP.KERNEL,
          order: 3,
          allocFlags: 0,
          prio: COMPACT_PRIO.SYNC_LIGHT,
        }),
      );
      expect(m.sched.runToEnd(t)).toBe(512);
      // Block 1 isolated nothing. v6.3 on check for a captured page only after a
      // migrate_pages() call, so the batch from block 2 still migrates; v6.0 checks after
      // check_drain, which ISOLATE_NONE reaches: the capture ends compaction at once.
      expect(ev(m, 'pgmigrate_success')).toBe(profile === 'v6.0' ? 0 : 32);
      expect(ev(m, 'compact_success')).toBe(1);
      expectInvariants(m);
    });
  },
);

describe.each(PROFILE_NAMES)(
  'the sync cached migrate position in async compaction (T3) — %s',
  (profile) => {
    /**
     * 16 MiB: pageblocks 0-1 plain pages (nothing to isolate), block 2 movable filler pages,
     * blocks 3-7 every even page free (found by the async free scanner's stride of 32, and
     * fragmented enough for v4.8's fragmentation-index test); cached positions at the zone
     * start.
     */
    function layout() {
      const m = smallMachine('16M', { profile });
      allocAllFree(m);
      for (let p = 1024; p < 1536; p++) m.putPage(p);
      expect(createMovableFiller(m).alloc(512)[0]).toBe(1024);
      for (let p = 1536; p < 4096; p += 2) m.putPage(p);
      const zone = m.mem.populatedZones[0];
      resetCachedPositions(zone);
      return { m, s: zoneCompactState(zone) };
    }

    it('moves only with the async one while the scans isolate nothing (update_cached, 5.1 on)', () => {
      const { m, s } = layout();
      // Direct ASYNC compaction for order 2 from pfn 0: blocks 0 and 1 isolate nothing.
      expect(direct(m, 2, COMPACT_PRIO.ASYNC)).toBe(1024);
      // v4.8: update_pageblock_skip() after block 1 moved the async position to its start;
      // the sync one moves only in sync compaction. 6.x: each ISOLATE_NONE copied the async
      // position (past block 1: update_cached_migrate() stores pageblock_end_pfn(end_pfn))
      // to the sync one, which was equal when the run began.
      expect(Array.from(s.cachedMigratePfn)).toEqual(profile === 'v4.8' ? [512, 0] : [1536, 1536]);
      expectInvariants(m);
    });
  },
);

describe.each(PROFILE_NAMES)('direct compaction: bad requests — %s', (profile) => {
  const full = profile !== 'v4.8';
  const prios = full ? '0..2' : '1..2';
  it.each([
    ['prio 99', { prio: 99 }, `prio must be an integer ${prios}`],
    ['prio -1', { prio: -1 }, `prio must be an integer ${prios}`],
    ['prio "async"', { prio: 'async' }, 'got "async"'],
    ['order -3', { order: -3 }, 'order must be an integer 0..10, got -3'],
    ['order 2.5', { order: 2.5 }, 'order must be an integer 0..10, got 2.5'],
    ['order 11', { order: 11 }, 'order must be an integer 0..10, got 11'],
    ['allocFlags NaN', { allocFlags: Number.NaN }, 'allocFlags must be an integer'],
    ['gfp "x"', { gfp: 'x' }, 'gfp must be a mask of __GFP bits'],
  ])('%s is E_RANGE naming the field; nothing is compacted', (_what, bad, message) => {
    const { m } = checkerboardOfDriverPages(profile);
    const before = m.mem.node.zones.map((z) => z.nrFreePages);
    const req = { gfp: GFP.HIGHUSER_MOVABLE, order: 3, allocFlags: 0, prio: 1, ...bad } as never;
    for (const entry of [tryToCompactPages, allocPagesDirectCompact])
      expect(() => m.run(() => entry(m, req))).toThrow(message);
    expect(ev(m, 'compact_stall') + ev(m, 'pgmigrate_success')).toBe(0);
    expect(m.mem.node.zones.map((z) => z.nrFreePages)).toEqual(before);
    expectInvariants(m);
  });

  it(`SYNC_FULL (0) is ${full ? 'a priority' : 'refused: v4.8 has none'}; a missing request is E_USAGE`, () => {
    const { m } = checkerboardOfDriverPages(profile);
    const run = () => tryCompact(m, 3, COMPACT_PRIO.SYNC_FULL);
    if (full) expect(run()).toBe(COMPACT.SUCCESS);
    else expect(run).toThrow('v4.8 has no SYNC_FULL');
    expect(() => m.run(() => tryToCompactPages(m, null as never))).toThrow(
      expect.objectContaining({ code: 'E_USAGE', field: 'req' }),
    );
  });
});

describe.each(PROFILE_NAMES)('direct compaction runs with PF_MEMALLOC — %s', (profile) => {
  const req = { gfp: GFP.HIGHUSER_MOVABLE, order: 2, allocFlags: 0, prio: COMPACT_PRIO.SYNC_LIGHT };

  it('__alloc_pages_direct_compact sets it around try_to_compact_pages and restores the task after', () => {
    const { m, drv } = checkerboardOfDriverPages(profile);
    const seen = new Set<number>();
    drv.migrateRc = () => {
      seen.add((m.sched.current?.flags ?? -1) & PF_MEMALLOC);
      return 0;
    };
    const t = m.sched.spawn('alloc', () => allocPagesDirectCompact(m, req));
    expect(m.sched.runToEnd(t)).toBeGreaterThanOrEqual(0);
    expect([...seen]).toEqual([PF_MEMALLOC]);
    expect(t.flags & PF_MEMALLOC).toBe(0);
    expectInvariants(m);
  });
});
