/**
 * kswapd wakes kcompactd for the order of an allocation that went to the slow path
 * (wake_all_kswapds() → wakeup_kswapd() → kswapd's pass → kswapd_try_to_sleep() →
 * wakeup_kcompactd(alloc_order)), through wakeup_kcompactd()'s own checks; wakeup_kswapd()
 * leaves a balanced node alone, and (but in v4.8) wakes kcompactd itself for an allocation
 * that cannot reclaim.
 */
import { describe, expect, it } from 'vitest';
import {
  __GFP,
  ALLOC,
  allocAllFree,
  allocPages,
  COMPACT,
  compactionState,
  createMachine,
  GFP,
  kcompactdRun,
  type Machine,
  PROFILE_NAMES,
  type ProfileName,
  pageblock_nr_pages,
  pageblock_order,
  pgdatBalanced,
  putPage,
  runKswapd,
  setDefragMode,
  setupWatermarks,
  setWatermarkBoostFactor,
  traceRecorder,
  WMARK,
  wakeupKswapd,
  zoneCompactState,
} from '../../src/index.js';
import { TestDriver } from '../driver.js';
import { expectInvariants, smallMachine } from '../helpers.js';
import { scannersMetBefore } from './layout.js';

/**
 * 16 MiB, one Normal zone (index 2), no watermarks: every page a driver page, then those
 * `free` picks (by default the odd ones) freed, so no free block above order 0. The slow
 * path's direct compaction is taken out, so that an allocation the free lists cannot serve
 * fails there and leaves the machine as it was. kcompactd has no proactive checks
 * (proactiveness 0; v4.8 has none).
 */
function fragmented(profile: ProfileName, free = (p: number) => p % 2 === 1): Machine {
  const m = smallMachine('16M', { profile });
  const drv = new TestDriver(m);
  for (const p of drv.alloc(m.nrPages)) if (free(p)) m.run(() => drv.freeOwned(p));
  scannersMetBefore(m);
  m.mem.slowpath.length = 0;
  if (profile !== 'v4.8') compactionState(m).sysctl.compactionProactiveness = 0;
  return m;
}

const KCOMPACTD_EVENTS = ['mm_compaction_wakeup_kcompactd', 'mm_compaction_kcompactd_wake'];
/** The event names and fields of trace lines. */
const bodies = (lines: readonly string[]) =>
  lines.map((l) => l.replace(/^.*?: (mm_\w+): /, '$1: ').trimEnd());

describe.each(PROFILE_NAMES)('kswapd wakes kcompactd for a failed allocation — %s', (profile) => {
  // wake_all_kswapds() hands kswapd the preferred zone's index in v4.8 (ac_classzone_idx():
  // Normal), gfp_zone()'s from 5.8 on (Movable for GFP_HIGHUSER_MOVABLE); kcompactd works
  // up to the lower of that and its node's top zone.
  const zoneName = profile === 'v4.8' ? 'Normal' : 'Movable';

  it('an order-3 allocation that fails its fast path: kcompactd compacts for order 3 once the stand-in ran', () => {
    const m = fragmented(profile);
    const rec = traceRecorder(m, { events: KCOMPACTD_EVENTS });
    expect(m.allocPages(GFP.HIGHUSER_MOVABLE, 3)).toBe(-1);
    // The stand-in ran in the slow path: kswapd is asleep again, its request taken.
    expect(m.mem).toMatchObject({ kswapdWoken: false, kswapdOrder: 0, kswapdWakeZoneidx: -1 });
    expect(m.mem.kcompactdWakeups).toEqual([3, profile === 'v4.8' ? 2 : 3]);
    const results = m.run(() => kcompactdRun(m, 1));
    rec.stop();
    expect(results).toEqual([COMPACT.SUCCESS]);
    expect(bodies(rec.lines)).toEqual([
      `mm_compaction_wakeup_kcompactd: nid=0 order=3 classzone_idx=${zoneName}`,
      'mm_compaction_kcompactd_wake: nid=0 order=3 classzone_idx=Normal',
    ]);
    expect(m.mem.kcompactdWakeups).toEqual([]);
    expect(m.mem.vmstat.get('compact_daemon_wake')).toBe(1);
    if (profile !== 'v4.8')
      expect(m.mem.vmstat.get('compact_daemon_migrate_scanned')).toBeGreaterThan(0);
    // kcompactd made an order-3 block: the allocation now succeeds on its fast path.
    expect(m.mem.populatedZones[0].nrFree.slice(3).some((n) => n > 0)).toBe(true);
    expect(m.allocPages(GFP.HIGHUSER_MOVABLE, 3)).toBeGreaterThanOrEqual(0);
    expectInvariants(m);
  });

  it('kswapd’s wakeup of kcompactd traces under kswapd0, kcompactd’s wake under its own task', () => {
    const m = fragmented(profile);
    const rec = traceRecorder(m, { events: KCOMPACTD_EVENTS });
    expect(m.allocPages(GFP.HIGHUSER_MOVABLE, 3)).toBe(-1);
    const t = m.sched.spawn('kcompactd0', () => kcompactdRun(m, 1));
    m.sched.runToEnd(t);
    rec.stop();
    const ctx = rec.lines.map((l) => /^\s*(\S+-\d+)\s+\[(\d{3})\]/.exec(l)?.slice(1).join(' '));
    const kswapd = ctx.filter((_, i) => rec.lines[i].includes('mm_compaction_wakeup_kcompactd:'));
    const wake = ctx.filter((_, i) => rec.lines[i].includes('mm_compaction_kcompactd_wake:'));
    // kswapd0, on a CPU kcompactd0 does not hold.
    expect(kswapd).toEqual([`kswapd0-${t.id + 1} 001`]);
    expect(wake[0]).toBe(`kcompactd0-${t.id} 000`);
    expect(m.sched.kthread).toBeUndefined();
  });

  it('a balanced node: the wakeup an allocation that cannot reclaim asks for shows under that allocation’s task, not kswapd0 (v4.8 asks for none)', () => {
    const m = createMachine({ memory: '64M', profile });
    compactionState(m).sysctl.compactionProactiveness = 0;
    const [dma, dma32] = m.mem.node.zones;
    // DMA32 fragmented (every other page), DMA left free: balanced for order 3 up to DMA32.
    const got: number[] = [];
    const nokswapd = GFP.HIGHUSER_MOVABLE & ~__GFP.KSWAPD_RECLAIM;
    for (;;) {
      const p = allocPages(m.mem, nokswapd, 0, { allocFlags: ALLOC.NO_WATERMARKS });
      if (p < dma32.zoneStartPfn) {
        if (p >= 0) m.putPage(p);
        break;
      }
      got.push(p);
    }
    for (const p of got) if (p % 2) m.putPage(p);
    expect(pgdatBalanced(m.mem, 3, 1)).toBe(true);
    expect(dma.nrFreePages).toBeGreaterThan(0);
    const rec = traceRecorder(m, { events: ['mm_compaction_wakeup_kcompactd'] });
    const user = m.sched.spawn('nowait-user', function* () {
      yield { op: 'x' };
      wakeupKswapd(m.mem, __GFP.KSWAPD_RECLAIM, 3, 1);
    });
    m.sched.runToEnd(user);
    expect(m.mem.kswapdWoken).toBe(false);
    // Made at once, in the task: before kcompactd ever runs.
    expect(rec.lines).toHaveLength(profile === 'v4.8' ? 0 : 1);
    m.sched.runToEnd(m.sched.spawn('kcompactd0', () => kcompactdRun(m, 1)));
    rec.stop();
    if (profile === 'v4.8') {
      expect(rec.lines).toEqual([]);
      return;
    }
    expect(rec.lines).toHaveLength(1);
    expect(rec.lines[0]).toMatch(
      new RegExp(
        `^\\s*nowait-user-${user.id}\\s+\\[000\\] .*mm_compaction_wakeup_kcompactd: nid=0 order=3 `,
      ),
    );
  });

  it('an allocation that may not wake kswapd wakes nothing', () => {
    const m = fragmented(profile);
    expect(m.allocPages(GFP.HIGHUSER_MOVABLE & ~__GFP.KSWAPD_RECLAIM, 3)).toBe(-1);
    expect(m.mem).toMatchObject({ kswapdOrder: 0, kswapdWakeZoneidx: -1 });
    expect(m.mem.kcompactdWakeups).toEqual([]);
    m.run(() => kcompactdRun(m, 1));
    expect(m.mem.vmstat.get('compact_daemon_wake')).toBe(0);
  });

  it('no zone suitable for the order: wakeup_kcompactd() records it but does not wake kcompactd', () => {
    // 512 pages free: compaction for order 9 needs compact_gap(9) = 1024 (COMPACT_SKIPPED).
    const m = fragmented(profile, (p) => p % 4 === 1);
    const rec = traceRecorder(m, { events: KCOMPACTD_EVENTS });
    expect(m.allocPages(GFP.HIGHUSER_MOVABLE, 9)).toBe(-1);
    expect(m.mem.kcompactdWakeups).toEqual([9, profile === 'v4.8' ? 2 : 3]);
    expect(m.run(() => kcompactdRun(m, 10_000))).toEqual([]);
    rec.stop();
    expect(rec.lines).toEqual([]);
    expect(m.mem.vmstat.get('compact_daemon_wake')).toBe(0);
    expect(compactionState(m).kcompactdMaxOrder).toBe(9);
  });

  it('a node balanced for the order: wakeup_kswapd() leaves kswapd asleep, but records the order for its next pass', () => {
    const m = smallMachine('16M', { profile });
    if (profile !== 'v4.8') compactionState(m).sysctl.compactionProactiveness = 0;
    wakeupKswapd(m.mem, GFP.HIGHUSER_MOVABLE, 3, 2);
    expect(m.mem).toMatchObject({ kswapdWoken: false, kswapdOrder: 3, kswapdWakeZoneidx: 2 });
    runKswapd(m.mem);
    // Not woken: no pass ran, the request waits for one.
    expect(m.mem).toMatchObject({ kswapdOrder: 3, kswapdWakeZoneidx: 2 });
    expect(m.mem.kcompactdWakeups).toEqual([]);
    m.run(() => kcompactdRun(m, 10_000));
    expect(m.mem.vmstat.get('compact_daemon_wake')).toBe(0);
    expect(compactionState(m).kcompactdMaxOrder).toBe(0);
  });

  it('a node balanced for the order, an allocation that cannot reclaim: kcompactd asked directly (not v4.8)', () => {
    const m = smallMachine('16M', { profile });
    wakeupKswapd(m.mem, GFP.HIGHUSER_MOVABLE & ~__GFP.DIRECT_RECLAIM, 3, 2);
    expect(m.mem.kswapdWoken).toBe(false);
    const direct = profile !== 'v4.8';
    // wakeup_kcompactd() ran at once, in the allocating context: nothing waits for kswapd.
    expect(m.mem.kcompactdWakeups).toEqual([]);
    expect(compactionState(m).kcompactdMaxOrder).toBe(direct ? 3 : 0);
    // Nothing to compact (an order-3 block is free): wakeup_kcompactd() records the order
    // without waking kcompactd, and the 500 ms timeout (6.x) finds the request.
    const rec = traceRecorder(m, { events: KCOMPACTD_EVENTS });
    expect(m.run(() => kcompactdRun(m, 600))).toEqual([]);
    rec.stop();
    expect(bodies(rec.lines)).toEqual(
      direct ? ['mm_compaction_kcompactd_wake: nid=0 order=3 classzone_idx=Normal'] : [],
    );
    expect(m.mem.vmstat.get('compact_daemon_wake')).toBe(direct ? 1 : 0);
  });

  it('an order recorded on a balanced node is taken by the next pass that runs', () => {
    const m = smallMachine('16M', { profile });
    // Balanced for order 2: kswapd stays asleep, pgdat->kswapd_order keeps the 2.
    wakeupKswapd(m.mem, GFP.HIGHUSER_MOVABLE, 2, 2);
    expect(m.mem).toMatchObject({ kswapdWoken: false, kswapdOrder: 2 });
    // Fragment the node with allocations that may not wake kswapd.
    const noKswapd = GFP.HIGHUSER_MOVABLE & ~__GFP.KSWAPD_RECLAIM;
    const pfns: number[] = [];
    for (let p = m.allocPages(noKswapd, 0); p >= 0; p = m.allocPages(noKswapd, 0)) pfns.push(p);
    for (const p of pfns) if (p % 2) m.putPage(p);
    expect(m.mem.kswapdOrder).toBe(2);
    // An order-1 allocation wakes kswapd; its pass is for the larger recorded order.
    expect(m.allocPages(GFP.HIGHUSER_MOVABLE, 1)).toBe(-1);
    expect(m.mem.kcompactdWakeups).toEqual([2, profile === 'v4.8' ? 2 : 3]);
    expect(m.mem.kswapdOrder).toBe(0);
  });
});

describe('vm.defrag_mode (v6.17): kswapd is woken for at least pageblock_order', () => {
  it.each([0, 1])('an order-0 allocation that goes to the slow path, defrag_mode %i', (mode) => {
    const m = fragmented('v6.17');
    setDefragMode(m.mem, mode);
    // No boost from the fallback below: only the slow path's wakeup may ask for kcompactd.
    setWatermarkBoostFactor(m.mem, 0);
    const rec = traceRecorder(m, { events: KCOMPACTD_EVENTS });
    // Unmovable: under ALLOC_NOFRAGMENT it may not take part of a movable block, so with
    // defrag_mode the fast path fails and the slow path falls back; without, the fast path
    // falls back at once.
    expect(m.allocPages(GFP.KERNEL, 0)).toBeGreaterThanOrEqual(0);
    expect(m.mem.kcompactdWakeups).toEqual(mode ? [pageblock_order, 2] : []);
    m.run(() => kcompactdRun(m, 1));
    rec.stop();
    expect(bodies(rec.lines)).toEqual(
      mode
        ? [
            'mm_compaction_wakeup_kcompactd: nid=0 order=9 classzone_idx=Normal',
            'mm_compaction_kcompactd_wake: nid=0 order=9 classzone_idx=Normal',
          ]
        : [],
    );
    expect(m.mem.vmstat.get('compact_daemon_wake')).toBe(mode);
    expectInvariants(m);
  });
});

describe('vm.defrag_mode (v6.17): pgdat_balanced() counts free pages in whole pageblocks', () => {
  it.each([0, 1])('one free pageblock among scattered free pages, defrag_mode %i', (mode) => {
    // The odd pages free, and the whole last pageblock: 512 pages in a block, about 1,800
    // scattered. A high watermark of some 100 pages: met by the free pages, not by the free
    // pages in blocks once an order-9 block is taken from them.
    const last = smallMachine('16M').nrPages - pageblock_nr_pages;
    const m = fragmented('v6.17', (p) => p % 2 === 1 || p >= last);
    setupWatermarks(m.mem, 256);
    setDefragMode(m.mem, mode);
    const zone = m.mem.node.zones[2];
    expect(zone.nrFree[pageblock_order]).toBe(1);
    expect(zone.nrFreePages - (pageblock_nr_pages - 1)).toBeGreaterThan(
      zone.wmarkPages(WMARK.HIGH),
    );
    expect(pgdatBalanced(m.mem, pageblock_order, 2)).toBe(mode === 0);
    // Order 0 counts every free page either way.
    expect(pgdatBalanced(m.mem, 0, 2)).toBe(true);
    // So wakeup_kswapd() leaves kswapd asleep without defrag_mode, wakes it with.
    wakeupKswapd(m.mem, GFP.HIGHUSER_MOVABLE, pageblock_order, 2);
    expect(m.mem.kswapdWoken).toBe(mode === 1);
    expectInvariants(m);
  });
});

describe('kswapd going to sleep resets the skip hints a full direct compaction asked for (reset_isolation_suitable())', () => {
  const THP = GFP.HIGHUSER_MOVABLE | __GFP.COMP | __GFP.NOWARN | __GFP.RETRY_MAYFAIL;
  const BLOCKS = [1, 512, 1024, 1536, 2048, 2560, 3072, 3584];

  /**
   * 16 MiB, one DMA zone (pfn 1..4095): every page pinned, then the even ones freed, so an
   * order-9 allocation fails after direct compaction whose scanners met; then kswapd's pass
   * (run at once when woken) goes to sleep on kcompactd's clock.
   */
  function run(profile: ProfileName) {
    const m = createMachine({ memory: '16M', profile, seed: 1 });
    for (const p of allocAllFree(m, 'pin')) if (p % 2 === 0) putPage(m.mem, p);
    const zone = m.mem.node.zones[0];
    const s = zoneCompactState(zone);
    const skips = () => BLOCKS.map((p) => +m.mem.pageblockSkip(p)).join('');
    expect(allocPages(m.mem, THP, 9)).toBe(-1);
    const failed = { flush: s.blockskipFlush, skips: skips() };
    m.sched.runToEnd(m.sched.spawn('kcompactd0', () => kcompactdRun(m, 0)));
    expectInvariants(m);
    return {
      failed,
      slept: {
        flush: s.blockskipFlush,
        skips: skips(),
        migrate: [...s.cachedMigratePfn],
        free: s.cachedFreePfn,
      },
    };
  }

  it('v4.8 clears every block and restarts both scanners at the zone ends', () => {
    const r = run('v4.8');
    expect(r.failed).toEqual({ flush: true, skips: '11111110' });
    expect(r.slept).toEqual({ flush: false, skips: '00000000', migrate: [1, 1], free: 3584 });
  });

  // Block 0 is where v6.17's fast_find_migrateblock() fell back to, marking it skipped.
  it.each([
    ['v6.0', '01111110'],
    ['v6.3', '01111110'],
    ['v6.17', '11111110'],
  ] as const)(
    '%s clears the blocks whose sample shows a free page, and with no LRU page to start the migrate scanner from leaves the scanners no distance',
    (profile, failedSkips) => {
      const r = run(profile);
      expect(r.failed).toEqual({ flush: true, skips: failedSkips });
      // Walking from both ends to the middle: the free side's blocks (3584..2048) are
      // sampled, every 8th page a free even pfn, and cleared; the migrate side's keep their
      // hints, as it finds no LRU page, and the scanners are left where the walk met.
      expect(r.slept).toEqual({
        flush: false,
        skips: `${failedSkips.slice(0, 4)}0000`,
        migrate: [2049, 2049],
        free: 2047,
      });
    },
  );
});
