import { describe, expect, it } from 'vitest';
import {
  allocAllFree,
  Clock,
  COMPACT,
  checkerboard,
  compactionDeferred,
  compactionState,
  compactMemory,
  compactNode,
  createMachine,
  deferCompaction,
  fragmentationScoreNode,
  fragmentationScoreZone,
  GFP,
  HPAGE_FRAG_CHECK_INTERVAL_MSEC,
  kcompactdRun,
  type Machine,
  MIGRATE,
  PROFILE_NAMES,
  type ProfileName,
  traceRecorder,
  wakeupKcompactd,
  zoneCompactState,
} from '../../src/index.js';
import { TestDriver } from '../driver.js';
import { expectInvariants, smallMachine } from '../helpers.js';
import { isolate, rig } from '../migrate/harness.js';
import { scannersMetBefore } from './layout.js';

/** Every page a driver page, then the pages `free` picks (by default the odd ones) freed. */
function driverCheckerboard(
  profile: ProfileName,
  memory = '16M',
  free = (p: number) => p % 2 === 1,
) {
  const m = smallMachine(memory, { profile });
  const drv = new TestDriver(m);
  for (const p of drv.alloc(m.nrPages)) if (free(p)) m.run(() => drv.freeOwned(p));
  scannersMetBefore(m);
  return { m, drv };
}

describe.each(PROFILE_NAMES)(
  'S33 (and S07, compaction path) the migrate scanner peek skips pages isolated by someone else — %s',
  (profile) => {
    it('only M2 is isolated and migrated; M1 is never referenced, locked or offered to isolate_page', () => {
      // 4 pageblocks; one pinned page at the start of the last block so the free scanner does
      // not reject it as one free order-9 block.
      const r = rig(profile, '8M');
      const all: number[] = [];
      for (
        let p = r.m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
        p >= 0;
        p = r.m.allocPages(GFP.HIGHUSER_MOVABLE, 0)
      )
        all.push(p);
      r.m.putPage(0);
      r.m.putPage(1);
      const [m1, m2] = r.drv.alloc(2);
      for (const p of all) if (p > 1 && p !== 1536) r.m.putPage(p);
      isolate(r, m1);
      const locks: number[] = [];
      // Every point compaction reaches on M1: the reference (get_page_unless_zero /
      // folio_get_nontail_page), the movability peek, the trylock, the isolation itself.
      const onM1: string[] = [];
      r.m.sched.manual = true;
      r.m.sched.onStep = (_t, p) => {
        if (p.op === r.m.profile.pointNames.trylock && p.pfn !== undefined) locks.push(p.pfn);
        if (p.pfn === m1) onM1.push(p.op);
      };
      r.m.run(() => compactMemory(r.m));
      // The first isolate call on M1 is the test's own (isolate(r, m1) above).
      expect(r.drv.callsOf('isolate').map((c) => c.pfn)).toEqual([m1, m2]);
      expect(onM1).toEqual([]);
      expect(locks).toContain(m2);
      expect(locks).not.toContain(m1);
      expect(r.m.mem.pages.refcount[m1]).toBe(2);
      expect(r.drv.callsOf('migrate').map((c) => c.pfn)).toEqual([m2]);
    });
  },
);

describe('S39 proactive compaction thresholds (6.x)', () => {
  it.each(['v6.0', 'v6.3', 'v6.17'] as const)(
    'node score above high → kcompactd compacts until the zone score is at most low — %s',
    (profile) => {
      const { m } = driverCheckerboard(profile);
      expect(fragmentationScoreNode(m.mem)).toBeGreaterThan(90);
      const results = m.run(() => kcompactdRun(m, 600));
      expect(results).toContain(COMPACT.SUCCESS);
      expect(fragmentationScoreZone(m.mem.populatedZones[0], m.profile)).toBeLessThanOrEqual(80);
      expect(m.mem.vmstat.get('pgmigrate_success')).toBeGreaterThan(0);
      // T12/T14: proactive runs count in compact_daemon_*_scanned from v6.3 on.
      const daemon = m.mem.vmstat.get('compact_daemon_migrate_scanned');
      if (profile === 'v6.0') expect(daemon).toBe(0);
      else expect(daemon).toBeGreaterThan(0);
      expectInvariants(m);
    },
  );

  it.each(['v6.0', 'v6.3', 'v6.17'] as const)(
    'node score above high but kswapd running: no proactive run starts, and a proactive zone run stops at once (PARTIAL_SKIPPED) — %s',
    (profile) => {
      const { m } = driverCheckerboard(profile);
      expect(fragmentationScoreNode(m.mem)).toBeGreaterThan(90);
      compactionState(m).kswapdRunning = true;
      expect(m.run(() => kcompactdRun(m, 600))).toEqual([]);
      // compact_node(pgdat, proactive): __compact_finished tests kswapd before the score.
      expect(m.run(() => compactNode(m, true))).toEqual([COMPACT.PARTIAL_SKIPPED]);
      expect(m.mem.vmstat.get('pgmigrate_success')).toBe(0);
      expectInvariants(m);
    },
  );

  it.each(['v6.0', 'v6.3', 'v6.17'] as const)(
    'kswapd starting during a proactive run stops it at the next check (PARTIAL_SKIPPED) — %s',
    (profile) => {
      const { m } = driverCheckerboard(profile, '64M');
      const st = compactionState(m);
      // kswapd wakes while the first batch migrates.
      m.trace.on('mm_migrate_pages', () => {
        st.kswapdRunning = true;
      });
      expect(m.run(() => compactNode(m, true))).toEqual([COMPACT.PARTIAL_SKIPPED]);
      // One batch, then __compact_finished() saw kswapd.
      expect(m.mem.vmstat.get('pgmigrate_success')).toBeGreaterThan(0);
      expect(m.mem.vmstat.get('pgmigrate_success')).toBeLessThanOrEqual(512);
      expectInvariants(m);
    },
  );

  it.each(['v6.0', 'v6.3', 'v6.17'] as const)(
    'proactiveness 0 never compacts; a score at or below high does nothing — %s',
    (profile) => {
      const { m } = driverCheckerboard(profile);
      compactionState(m).sysctl.compactionProactiveness = 0;
      expect(m.run(() => kcompactdRun(m, 2000))).toEqual([]);
      const fresh = smallMachine('16M', { profile });
      expect(fragmentationScoreNode(fresh.mem)).toBe(0);
      expect(fresh.run(() => kcompactdRun(fresh, 2000))).toEqual([]);
    },
  );

  it.each(['v6.0', 'v6.3', 'v6.17'] as const)(
    'node score 85 at proactiveness 20 (low 80, high 90) does nothing — %s',
    (profile) => {
      // 32 MiB: blocks 0-12 a checkerboard (256 free pages each), 13-14 full, 15 free:
      // zone score 100·3328/3840 = 86, node score 8192·86/8193 = 85.
      const { m } = driverCheckerboard(profile, '32M', (p) =>
        p >> 9 < 13 ? p % 2 === 1 : p >> 9 === 15,
      );
      expect(compactionState(m).sysctl.compactionProactiveness).toBe(20);
      expect(fragmentationScoreNode(m.mem)).toBe(85);
      expect(m.run(() => kcompactdRun(m, 2000))).toEqual([]);
      expect(m.mem.vmstat.get('pgmigrate_success')).toBe(0);
    },
  );

  /** Blocks below `blocks` free but for their first page, the last block free, the rest full. */
  const scored = (profile: ProfileName, memory: string, blocks: number, last: number) =>
    driverCheckerboard(profile, memory, (p) => (p >> 9 < blocks ? p % 512 !== 0 : p >> 9 === last));

  it.each(['v6.0', 'v6.3', 'v6.17'] as const)(
    'high is 90: node score 90 does nothing, 91 compacts — %s',
    (profile) => {
      // 32 MiB: zone score 100·5621/6133 = 91 (node 90), 100·6132/6644 = 92 (node 91).
      const at90 = scored(profile, '32M', 11, 15).m;
      expect(fragmentationScoreNode(at90.mem)).toBe(90);
      expect(at90.run(() => kcompactdRun(at90, 2000))).toEqual([]);
      expect(at90.mem.vmstat.get('pgmigrate_success')).toBe(0);
      const at91 = scored(profile, '32M', 12, 15).m;
      expect(fragmentationScoreNode(at91.mem)).toBe(91);
      expect(at91.run(() => kcompactdRun(at91, 600))).toContain(COMPACT.SUCCESS);
      expectInvariants(at91);
    },
  );

  it.each(['v6.0', 'v6.3', 'v6.17'] as const)(
    'node score 95: the run stops at the first check that finds the zone score at most low (80) — %s',
    (profile) => {
      // 64 MiB: zone score 100·15841/16353 = 96, node score 16384·96/16385 = 95.
      const { m } = scored(profile, '64M', 31, 31);
      expect(fragmentationScoreNode(m.mem)).toBe(95);
      const zone = m.mem.populatedZones[0];
      // __compact_finished() tests the zone's score after each migrate_pages() batch.
      const after: number[] = [];
      m.trace.on('mm_migrate_pages', () => {
        after.push(fragmentationScoreZone(zone, m.profile));
      });
      expect(m.run(() => kcompactdRun(m, 600))).toEqual([COMPACT.SUCCESS]);
      expect(after.length).toBeGreaterThan(1);
      expect(after.slice(0, -1).every((s) => s > 80)).toBe(true);
      expect(after.at(-1)).toBeLessThanOrEqual(80);
      expectInvariants(m);
    },
  );

  it('a run that does not lower the score defers the next check by 64 periods', () => {
    // Unmovable pages everywhere: compaction cannot lower the score.
    const m = smallMachine('16M', { profile: 'v6.3' });
    const all: number[] = [];
    for (let p = m.allocPages(0xcc0, 0); p >= 0; p = m.allocPages(0xcc0, 0)) all.push(p);
    for (const p of all) if (p % 2) m.putPage(p);
    const first = m.run(() => kcompactdRun(m, 500));
    expect(first).toEqual([COMPACT.COMPLETE]);
    // The next check is 32 s later: nothing runs within the next 31 s.
    expect(m.run(() => kcompactdRun(m, 31_000))).toEqual([]);
    expect(m.run(() => kcompactdRun(m, 1_500))).toEqual([COMPACT.COMPLETE]);
  });

  it.each(['v6.0', 'v6.3', 'v6.17'] as const)(
    'a kcompactd work item drops that deferral: the next check is one period after it — %s',
    (profile) => {
      const m = smallMachine('16M', { profile });
      const all: number[] = [];
      for (let p = m.allocPages(0xcc0, 0); p >= 0; p = m.allocPages(0xcc0, 0)) all.push(p);
      for (const p of all) if (p % 2) m.putPage(p);
      expect(m.run(() => kcompactdRun(m, 500))).toEqual([COMPACT.COMPLETE]);
      const st = compactionState(m);
      const period = Clock.msecsToJiffies(HPAGE_FRAG_CHECK_INTERVAL_MSEC);
      expect(st.nextProactiveCheck - m.clock.jiffies).toBe(64 * period);
      wakeupKcompactd(m, 2, 2);
      const woken = m.clock.jiffies;
      expect(m.run(() => kcompactdRun(m, 1))).toEqual([COMPACT.COMPLETE]);
      expect(m.mem.vmstat.get('compact_daemon_wake')).toBe(1);
      // kcompactd(): after kcompactd_do_work() the timeout is back to 500 ms.
      expect(st.nextProactiveCheck).toBe(woken + period);
      expect(m.run(() => kcompactdRun(m, 600))).toEqual([COMPACT.COMPLETE]);
    },
  );

  it('v4.8 has no proactive compaction', () => {
    const { m } = driverCheckerboard('v4.8');
    expect(m.run(() => kcompactdRun(m, 2000))).toEqual([]);
  });
});

describe('kcompactd woken by kswapd', () => {
  it.each(PROFILE_NAMES)(
    'compacts for the requested order and counts compact_daemon_wake — %s',
    (profile) => {
      const { m } = driverCheckerboard(profile);
      compactionState(m).sysctl.compactionProactiveness = 0;
      wakeupKcompactd(m, 3, 2);
      const results = m.run(() => kcompactdRun(m, 1));
      expect(results.length).toBe(1);
      expect(results[0]).toBe(COMPACT.SUCCESS);
      expect(m.mem.vmstat.get('compact_daemon_wake')).toBe(1);
      if (profile !== 'v4.8')
        expect(m.mem.vmstat.get('compact_daemon_migrate_scanned')).toBeGreaterThan(0);
      expectInvariants(m);
    },
  );
});

describe('wakeup_kcompactd (T12)', () => {
  it('order 0 asks for nothing: no wakeup event, no work, no compact_daemon_wake', () => {
    const { m } = driverCheckerboard('v6.3');
    compactionState(m).sysctl.compactionProactiveness = 0;
    const rec = traceRecorder(m, { events: ['mm_compaction_wakeup_kcompactd'] });
    wakeupKcompactd(m, 0, 2);
    expect(m.run(() => kcompactdRun(m, 1))).toEqual([]);
    rec.stop();
    expect(rec.lines).toEqual([]);
    expect(m.mem.vmstat.get('compact_daemon_wake')).toBe(0);
  });

  it('wakes a sleeping kcompactd only: a second request before it ran records its order, no event', () => {
    const { m } = driverCheckerboard('v6.3');
    compactionState(m).sysctl.compactionProactiveness = 0;
    const rec = traceRecorder(m, { events: ['mm_compaction_wakeup_kcompactd'] });
    wakeupKcompactd(m, 2, 2);
    wakeupKcompactd(m, 3, 2);
    expect(compactionState(m).kcompactdMaxOrder).toBe(3);
    rec.stop();
    expect(rec.lines).toHaveLength(1);
    m.run(() => kcompactdRun(m, 1));
    // Asleep again: the next request may wake it.
    expect(compactionState(m).kcompactdWoken).toBe(false);
  });

  it('keeps the largest order and the lowest zone limit: a later wakeup for DMA32 leaves Normal alone', () => {
    const { m } = driverCheckerboard('v6.3');
    compactionState(m).sysctl.compactionProactiveness = 0;
    wakeupKcompactd(m, 3, 2);
    wakeupKcompactd(m, 2, 1);
    expect(compactionState(m)).toMatchObject({ kcompactdMaxOrder: 3, kcompactdHighestZoneidx: 1 });
    // The only zone is Normal (index 2), above the limit.
    expect(m.run(() => kcompactdRun(m, 1))).toEqual([]);
    expect(compactionState(m)).toMatchObject({ kcompactdMaxOrder: 0, kcompactdHighestZoneidx: 2 });
  });
});

describe.each(['v4.8', 'v6.0'] as const)('kcompactd success rule (T12) — %s', (profile) => {
  it('v4.8 resets deferral when the low watermark is met for the order, even after COMPLETE', () => {
    // Block 0: driver pages on odd pfns and at 511; block 1 free but its last page; blocks
    // 2-3 UNMOVABLE (no targets there), free but their last pages.
    const m = smallMachine('8M', { profile });
    const drv = new TestDriver(m);
    const pinned = [1023, 1535, 2047];
    for (const p of drv.alloc(m.nrPages)) {
      if (pinned.includes(p))
        drv.owned.delete(p); // the driver refuses to give these up
      else if (p >= 512 || (p % 2 === 0 && p < 511)) m.run(() => drv.freeOwned(p));
    }
    m.mem.setPageblockMigratetype(1024, MIGRATE.UNMOVABLE);
    m.mem.setPageblockMigratetype(1536, MIGRATE.UNMOVABLE);
    scannersMetBefore(m);
    compactionState(m).sysctl.compactionProactiveness = 0;
    wakeupKcompactd(m, 9, 2);
    const r = m.run(() => kcompactdRun(m, 10));
    const z = m.mem.populatedZones[0];
    expect(z.nrFree[9]).toBe(1);
    const s = zoneCompactState(z);
    if (profile === 'v4.8') {
      expect(r).toEqual([COMPACT.COMPLETE]);
      expect(s).toMatchObject({ deferShift: 0, orderFailed: 10 });
    } else {
      expect(r).toEqual([COMPACT.SUCCESS]);
      expect(s).toMatchObject({ deferShift: 0, orderFailed: 10 });
    }
  });
});

describe('deferral and kcompactd tracepoints (T15)', () => {
  it('mm_compaction_kcompactd_wake/sleep and the defer events in the kernel formats', () => {
    const { m } = driverCheckerboard('v6.3');
    compactionState(m).sysctl.compactionProactiveness = 0;
    const rec = traceRecorder(m, {
      events: [
        'mm_compaction_kcompactd_wake',
        'mm_compaction_kcompactd_sleep',
        'mm_compaction_deferred',
        'mm_compaction_defer_compaction',
        'mm_compaction_defer_reset',
      ],
    });
    wakeupKcompactd(m, 3, 2);
    expect(m.run(() => kcompactdRun(m, 1))).toEqual([COMPACT.SUCCESS]);
    const z = m.mem.populatedZones[0];
    // A failure at order 3 defers it; the next attempt is skipped.
    deferCompaction(z, 3, m.trace);
    expect(compactionDeferred(z, 3, m.trace)).toBe(true);
    rec.stop();
    const body = (l: string) => l.replace(/^.*?: (mm_compaction_\w+): /, '$1: ');
    expect(rec.lines.map(body)).toEqual([
      'mm_compaction_kcompactd_wake: nid=0 order=3 classzone_idx=Normal  ',
      'mm_compaction_defer_reset: node=0 zone=Normal   order=3 order_failed=4 consider=1 limit=1',
      'mm_compaction_kcompactd_sleep: nid=0',
      'mm_compaction_defer_compaction: node=0 zone=Normal   order=3 order_failed=3 consider=0 limit=2',
      'mm_compaction_deferred: node=0 zone=Normal   order=3 order_failed=3 consider=1 limit=2',
    ]);
  });
});

/**
 * Writes vm.compaction_proactiveness; in v4.8, which has no such sysctl, checks that the
 * write is refused and changes nothing.
 */
function writeProactiveness(m: Machine, v: number): void {
  const sysctl = compactionState(m).sysctl;
  if (m.profile.name !== 'v4.8') {
    sysctl.compactionProactiveness = v;
    return;
  }
  expect(() => {
    sysctl.compactionProactiveness = v;
  }).toThrow(/does not exist in v4.8/);
  expect(sysctl.compactionProactiveness).toBe(0);
}

describe.each(PROFILE_NAMES)('writing vm.compaction_proactiveness (T12) — %s', (profile) => {
  it('a non-zero write makes kcompactd check at once, not at the next 500 ms period', () => {
    const { m } = driverCheckerboard(profile);
    const rec = traceRecorder(m, { events: ['mm_compaction_wakeup_kcompactd'] });
    expect(m.run(() => kcompactdRun(m, 100))).toEqual([]);
    writeProactiveness(m, 30);
    const results = m.run(() => kcompactdRun(m, 100));
    rec.stop();
    if (profile === 'v4.8') {
      expect(results).toEqual([]);
      expect(rec.lines).toEqual([]);
      return;
    }
    expect(results.length).toBeGreaterThan(0);
    expect(m.mem.vmstat.get('pgmigrate_success')).toBeGreaterThan(0);
    // v6.3 and later also trace the wakeup, with order -1.
    expect(rec.lines.map((l) => l.replace(/^.*?: mm_/, 'mm_'))).toEqual(
      profile === 'v6.0'
        ? []
        : ['mm_compaction_wakeup_kcompactd: nid=0 order=-1 classzone_idx=Normal  '],
    );
  });
});

describe.each(PROFILE_NAMES)(
  'a request wakeup_kcompactd() declined to wake for — %s',
  (profile) => {
    /**
     * 64 MiB (DMA and DMA32), nothing free: an order-9 request finds no suitable zone.
     * Proactiveness 0 is written (a write of 0 wakes nobody); 20 is the default (v4.8,
     * which has no such sysctl, reads 0).
     */
    function declined(proactiveness: 0 | 20) {
      const m = createMachine({ memory: '64M', profile });
      allocAllFree(m);
      const st = compactionState(m);
      if (proactiveness === 0) st.sysctl.compactionProactiveness = 0;
      expect(st.sysctl.compactionProactiveness).toBe(profile === 'v4.8' ? 0 : proactiveness);
      const rec = traceRecorder(m, {
        events: ['mm_compaction_wakeup_kcompactd', 'mm_compaction_kcompactd_wake'],
      });
      wakeupKcompactd(m, 9, 1);
      // kcompactd_max_order is recorded before kcompactd_node_suitable() declines.
      expect(st).toMatchObject({ kcompactdMaxOrder: 9, kcompactdHighestZoneidx: 1 });
      const wakes = () => rec.lines.map((l) => l.replace(/^.*?: mm_/, 'mm_').trimEnd());
      return { m, st, wakes };
    }

    it('proactiveness 0: kcompactd sleeps without a timeout and never runs it', () => {
      const { m, st, wakes } = declined(0);
      expect(m.run(() => kcompactdRun(m, 10_000))).toEqual([]);
      expect(m.mem.vmstat.get('compact_daemon_wake')).toBe(0);
      expect(wakes()).toEqual([]);
      expect(st.kcompactdMaxOrder).toBe(9);
    });

    it('proactiveness 20: the 500 ms timeout finds it and kcompactd_do_work() runs in place of the proactive check (6.x); v4.8 has no timeout', () => {
      const { m, st, wakes } = declined(20);
      m.run(() => kcompactdRun(m, 400));
      expect(m.mem.vmstat.get('compact_daemon_wake')).toBe(0);
      // Both zones are still unsuitable: the work item skips them.
      expect(m.run(() => kcompactdRun(m, 200))).toEqual([]);
      if (profile === 'v4.8') {
        expect(m.mem.vmstat.get('compact_daemon_wake')).toBe(0);
        expect(wakes()).toEqual([]);
        expect(st.kcompactdMaxOrder).toBe(9);
        return;
      }
      expect(m.mem.vmstat.get('compact_daemon_wake')).toBe(1);
      // The limit is DMA: allocAllFree's movable allocations stole DMA's pageblock 0 (left
      // UNMOVABLE at boot, the zone starts at pfn 1), which boosted the zone, and the kswapd
      // pass that took the boost back woke kcompactd for pageblock_order up to DMA.
      expect(wakes()).toEqual(['mm_compaction_kcompactd_wake: nid=0 order=9 classzone_idx=DMA']);
      expect(st.kcompactdMaxOrder).toBe(0);
    });

    it('a proactiveness write wakes kcompactd, which finds the request when it goes back to sleep (6.x)', () => {
      const { m, wakes } = declined(0);
      m.run(() => kcompactdRun(m, 100));
      writeProactiveness(m, 30);
      m.run(() => kcompactdRun(m, 1));
      expect(m.mem.vmstat.get('compact_daemon_wake')).toBe(profile === 'v4.8' ? 0 : 1);
      expect(wakes().filter((l) => l.startsWith('mm_compaction_kcompactd_wake'))).toEqual(
        profile === 'v4.8' ? [] : ['mm_compaction_kcompactd_wake: nid=0 order=9 classzone_idx=DMA'],
      );
    });
  },
);

describe.each(PROFILE_NAMES)('mm_compaction_kcompactd_sleep — %s', (profile) => {
  const sleeps = (lines: readonly string[]) =>
    lines.map((l) => l.replace(/^.*?\s(\d+\.\d+): mm_compaction_(\w+):.*$/, '$1 $2'));
  const timed = profile !== 'v4.8';

  it('fires each time kcompactd goes back to its wait: after each timeout with proactiveness above 0 (6.x), never while it sleeps on', () => {
    // Nothing to compact: no proactive run, no work.
    const m = createMachine({ memory: '16M', profile });
    const rec = traceRecorder(m, { events: ['mm_compaction_kcompactd_sleep'] });
    m.run(() => kcompactdRun(m, 2000));
    m.run(() => kcompactdRun(m, 2000));
    const ticks = ['0.500000', '1.000000', '1.500000', '2.000000', '2.500000', '3.000000'];
    expect(sleeps(rec.lines)).toEqual(
      timed ? [...ticks, '3.500000', '4.000000'].map((t) => `${t} kcompactd_sleep`) : [],
    );
  });

  it('proactiveness 0 (and v4.8): one event after a work item, then none while it waits for the next wakeup', () => {
    const { m } = driverCheckerboard(profile);
    compactionState(m).sysctl.compactionProactiveness = 0;
    const rec = traceRecorder(m, {
      events: ['mm_compaction_kcompactd_sleep', 'mm_compaction_kcompactd_wake'],
    });
    m.run(() => kcompactdRun(m, 1000));
    wakeupKcompactd(m, 3, 2);
    m.run(() => kcompactdRun(m, 1000));
    m.run(() => kcompactdRun(m, 1000));
    expect(sleeps(rec.lines)).toEqual(['1.000000 kcompactd_wake', '1.000000 kcompactd_sleep']);
  });

  it('a request made while a proactive pass runs (kcompactd awake: no wakeup) is served when kcompactd goes back to its wait (6.x)', () => {
    const { m } = driverCheckerboard(profile);
    const rec = traceRecorder(m, {
      events: ['mm_compaction_kcompactd_sleep', 'mm_compaction_kcompactd_wake'],
    });
    let asked = 0;
    m.trace.on('mm_compaction_begin', () => {
      if (asked++ === 0) wakeupKcompactd(m, 3, 2);
    });
    m.run(() => kcompactdRun(m, 600));
    expect(sleeps(rec.lines)).toEqual(
      timed
        ? ['0.500000 kcompactd_sleep', '0.500000 kcompactd_wake', '0.500000 kcompactd_sleep']
        : [],
    );
  });

  it('after a proactive pass a proactiveness write asked for, kcompactd goes back to its wait (the event) and finds the pending request (6.x)', () => {
    const m = createMachine({ memory: '64M', profile });
    allocAllFree(m);
    const st = compactionState(m);
    st.sysctl.compactionProactiveness = 0;
    m.run(() => kcompactdRun(m, 100));
    // Nothing is suitable: the request is recorded, kcompactd stays asleep.
    wakeupKcompactd(m, 9, 1);
    const rec = traceRecorder(m, {
      events: ['mm_compaction_kcompactd_sleep', 'mm_compaction_kcompactd_wake'],
    });
    writeProactiveness(m, 30);
    m.run(() => kcompactdRun(m, 1));
    expect(sleeps(rec.lines)).toEqual(
      timed
        ? ['0.100000 kcompactd_sleep', '0.100000 kcompactd_wake', '0.100000 kcompactd_sleep']
        : [],
    );
  });

  it('woken for a request and by a proactiveness write at once: the proactive pass, back to its wait (the event), then the work item (6.x)', () => {
    const { m } = driverCheckerboard(profile);
    compactionState(m).sysctl.compactionProactiveness = 0;
    m.run(() => kcompactdRun(m, 100));
    const rec = traceRecorder(m, {
      events: ['mm_compaction_kcompactd_sleep', 'mm_compaction_kcompactd_wake'],
    });
    wakeupKcompactd(m, 3, 2);
    writeProactiveness(m, 30);
    m.run(() => kcompactdRun(m, 1));
    expect(sleeps(rec.lines)).toEqual(
      timed
        ? ['0.100000 kcompactd_sleep', '0.100000 kcompactd_wake', '0.100000 kcompactd_sleep']
        : ['0.100000 kcompactd_wake', '0.100000 kcompactd_sleep'],
    );
  });
});

describe.each(PROFILE_NAMES)(
  'kcompactd_do_work() compacts every zone with one compact_control — %s',
  (profile) => {
    it('whole_zone set in DMA stays set for DMA32: DMA32 ends COMPLETE, and 6.x starts it at the zone start instead of its cached position', () => {
      // DMA [0, 4096), DMA32 [4096, 8192), both a checkerboard of unmovable and free pages.
      const m = createMachine({
        memory: '32M',
        profile,
        minFreeKbytes: 0,
        zones: [
          { idx: 0, startPfn: 0, spanned: 4096, present: 4096 },
          { idx: 1, startPfn: 4096, spanned: 4096, present: 4096 },
        ],
      });
      checkerboard(m);
      // DMA32's migrate scanner stopped a quarter into the zone last time.
      zoneCompactState(m.mem.populatedZones[1]).cachedMigratePfn = [0x1400, 0x1400];
      compactionState(m).sysctl.compactionProactiveness = 0;
      const rec = traceRecorder(m, { events: ['mm_compaction_begin'] });
      wakeupKcompactd(m, 9, 1);
      // DMA: a fresh zone at pfn 0, whose cached free pfn 0 meets the migrate scanner at
      // once; whole_zone is set (6.x: 0 <= compact_init_migrate_pfn; v4.8: the zone start).
      // compact_zone() never clears it, so DMA32 is a whole-zone run too.
      expect(m.run(() => kcompactdRun(m, 1))).toEqual([COMPACT.COMPLETE, COMPACT.COMPLETE]);
      rec.stop();
      const dma32 = profile === 'v4.8' ? '0x1400' : '0x1000';
      expect(rec.lines.map((l) => l.replace(/^.*zone_start=/, 'zone_start='))).toEqual([
        'zone_start=0x0 migrate_pfn=0x0 free_pfn=0x0 zone_end=0x1000, mode=sync',
        `zone_start=0x1000 migrate_pfn=${dma32} free_pfn=0x1e00 zone_end=0x2000, mode=sync`,
      ]);
    });
  },
);

describe('kcompactdRun and the clock: bad input', () => {
  it.each([Number.NaN, Number.POSITIVE_INFINITY, Number.MAX_VALUE, 1e300, -5000, '100'])(
    'kcompactdRun(m, %s) is E_RANGE naming ms, and the clock stays where it was',
    (ms) => {
      const { m } = driverCheckerboard('v6.3');
      m.run(() => kcompactdRun(m, 1000));
      const jiffies = m.clock.jiffies;
      expect(() => m.run(() => kcompactdRun(m, ms as number))).toThrow(
        expect.objectContaining({ code: 'E_RANGE', field: 'ms' }),
      );
      expect(m.clock.jiffies).toBe(jiffies);
      expectInvariants(m);
    },
  );

  it('the clock only advances, by whole jiffies', () => {
    const c = new Clock();
    c.tick(3);
    for (const bad of [-1, 0.5, Number.NaN, Number.POSITIVE_INFINITY])
      expect(() => c.tick(bad)).toThrow(expect.objectContaining({ code: 'E_RANGE' }));
    expect(c.jiffies).toBe(3);
  });
});
