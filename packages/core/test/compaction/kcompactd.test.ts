import { describe, expect, it } from 'vitest';
import {
  COMPACT,
  compactionState,
  compactMemory,
  fragmentationScoreNode,
  fragmentationScoreZone,
  GFP,
  kcompactdRun,
  PROFILE_NAMES,
  type ProfileName,
  wakeupKcompactd,
} from '../../src/index.js';
import { TestDriver } from '../driver.js';
import { expectInvariants, smallMachine } from '../helpers.js';
import { isolate, rig } from '../migrate/harness.js';

function driverCheckerboard(profile: ProfileName, memory = '16M') {
  const m = smallMachine(memory, { profile });
  const drv = new TestDriver(m);
  for (const p of drv.alloc(m.nrPages)) if (p % 2) m.run(() => drv.freeOwned(p));
  return { m, drv };
}

describe.each(PROFILE_NAMES)(
  'S33 the migrate scanner peek skips pages isolated by someone else — %s',
  (profile) => {
    it('only M2 is isolated and migrated; M1 keeps its references and is never locked', () => {
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
      r.m.sched.manual = true;
      r.m.sched.onStep = (_t, p) => {
        if (p.op === 'trylock_page' && p.pfn !== undefined) locks.push(p.pfn);
      };
      r.m.run(() => compactMemory(r.m));
      expect(r.drv.callsOf('isolate').map((c) => c.pfn)).toEqual([m1, m2]);
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

  it('proactiveness 0 never compacts; a score at or below high does nothing', () => {
    const { m } = driverCheckerboard('v6.3');
    compactionState(m).sysctl.compactionProactiveness = 0;
    expect(m.run(() => kcompactdRun(m, 2000))).toEqual([]);
    const fresh = smallMachine('16M', { profile: 'v6.3' });
    expect(fragmentationScoreNode(fresh.mem)).toBe(0);
    expect(fresh.run(() => kcompactdRun(fresh, 2000))).toEqual([]);
  });

  it('a score above low but not above high does nothing (proactiveness 5: low 95, high 100)', () => {
    const { m } = driverCheckerboard('v6.3');
    compactionState(m).sysctl.compactionProactiveness = 5;
    const score = fragmentationScoreNode(m.mem);
    expect(score).toBeGreaterThan(95);
    expect(score).toBeLessThanOrEqual(100);
    expect(m.run(() => kcompactdRun(m, 2000))).toEqual([]);
    expect(m.mem.vmstat.get('pgmigrate_success')).toBe(0);
  });

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
      compactionState(m).sysctl.compactionProactiveness = profile === 'v4.8' ? 20 : 0;
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
