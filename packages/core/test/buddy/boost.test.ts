import { describe, expect, it } from 'vitest';
import {
  __GFP,
  allocAllFree,
  compactionState,
  GFP,
  kcompactdRun,
  type Machine,
  MopsError,
  type ProfileName,
  pageblock_nr_pages,
  setWatermarkBoostFactor,
  traceRecorder,
  WMARK,
  zoneinfo,
} from '../../src/index.js';
import { smallMachine, topZone } from '../helpers.js';

/**
 * A Normal zone (by default 64 MiB with min_free_kbytes 1024: min 256, low 320, high 384
 * pages) whose free memory is only order-0 holes in MOVABLE pageblocks, so an unmovable
 * allocation must fall back to part of a movable block.
 */
function holes(profile: ProfileName, memory = '64M', minFreeKbytes = 1024): Machine {
  const m = smallMachine(memory, { profile, minFreeKbytes });
  for (const p of allocAllFree(m)) if (p % 2) m.putPage(p);
  return m;
}

describe.each(['v6.0', 'v6.3', 'v6.17'] as const)('watermark boost, %s', (profile) => {
  it('a fallback into part of a movable block boosts by a pageblock, up to 150 % of high', () => {
    const m = holes(profile);
    const z = topZone(m);
    expect(z.watermark[WMARK.HIGH]).toBe(384);
    expect(z.watermarkBoost).toBe(0);
    expect(m.allocPages(GFP.KERNEL, 0)).toBeGreaterThanOrEqual(0);
    expect(z.watermarkBoost).toBe(pageblock_nr_pages);
    expect(z.wmarkPages(WMARK.LOW)).toBe(320 + pageblock_nr_pages);
    expect(zoneinfo(m)).toContain(`boost    ${pageblock_nr_pages}`);
    // The block became unmovable; the next fallback takes another block, capped at
    // mult_frac(384, 15000, 10000) = 576.
    let n = 0;
    while (z.watermarkBoost === pageblock_nr_pages && n++ < 4096) m.allocPages(GFP.KERNEL, 0);
    expect(z.watermarkBoost).toBe(576);
  });

  it('the rmqueue() that boosted wakes kswapd, which takes the boost back and wakes kcompactd for pageblock_order', () => {
    const m = holes(profile);
    const z = topZone(m);
    m.allocPages(GFP.KERNEL, 0);
    // ZONE_BOOSTED_WATERMARK was set and, at the end of the same rmqueue(), turned into a
    // kswapd wakeup; kswapd has not run yet, so the boost holds.
    expect(z.boosted).toBe(false);
    expect(m.mem.kswapdWakeZoneidx).toBe(z.idx);
    expect(z.watermarkBoost).toBe(pageblock_nr_pages);
    const woke: number[] = [];
    m.trace.on('mm_compaction_kcompactd_wake', (e) => woke.push(e.order));
    m.run(() => kcompactdRun(m, 10));
    expect(z.watermarkBoost).toBe(0);
    expect(m.mem.kswapdWakeZoneidx).toBe(-1);
    expect(woke).toEqual([9]);
    expect(compactionState(m).kcompactdMaxOrder).toBe(0);
  });

  it('an allocation held back by a boosted watermark wakes kswapd, which runs at once', () => {
    const m = holes(profile);
    const z = topZone(m);
    // Allocations that cannot wake kswapd stop at the boosted low watermark.
    const noKswapd = GFP.KERNEL & ~__GFP.KSWAPD_RECLAIM;
    while (m.allocPages(noKswapd, 0) >= 0);
    const boost = z.watermarkBoost;
    expect(boost).toBe(576);
    expect(z.nrFreePages).toBe(z.watermark[WMARK.MIN] + boost);
    // One that may wake kswapd gets past it: the slow path's kswapd took the boost back and
    // asked for kcompactd, for pageblock_order up to the zone.
    expect(m.allocPages(GFP.KERNEL, 0)).toBeGreaterThanOrEqual(0);
    expect(z.watermarkBoost).toBeLessThan(boost);
    expect(m.mem.kcompactdWakeups).toEqual([9, z.idx]);
  });

  it('kswapd woken by a boosted zone, not yet run, takes the order an allocation records meanwhile', () => {
    const m = holes(profile);
    const z = topZone(m);
    m.allocPages(GFP.KERNEL, 0);
    expect(m.mem).toMatchObject({ kswapdWoken: true, kswapdOrder: 0, kswapdWakeZoneidx: z.idx });
    // No free order-3 block: the slow path's wakeup finds kswapd awake and only records its
    // order and zone (gfp_zone(): Movable); the pass then runs for both.
    m.mem.slowpath.length = 0;
    expect(m.allocPages(GFP.HIGHUSER_MOVABLE, 3)).toBe(-1);
    expect(m.mem).toMatchObject({ kswapdWoken: false, kswapdOrder: 0, kswapdWakeZoneidx: -1 });
    expect(z.watermarkBoost).toBe(0);
    // balance_pgdat()'s wakeup for the boost, then kswapd_try_to_sleep()'s for the order.
    expect(m.mem.kcompactdWakeups).toEqual([9, 3, 3, 3]);
    const rec = traceRecorder(m, {
      events: ['mm_compaction_wakeup_kcompactd', 'mm_compaction_kcompactd_wake'],
    });
    m.run(() => kcompactdRun(m, 1));
    rec.stop();
    // The first call woke kcompactd; the second found it awake. It works for the larger.
    expect(rec.lines.map((l) => l.replace(/^.*?: mm_/, 'mm_').trimEnd())).toEqual([
      'mm_compaction_wakeup_kcompactd: nid=0 order=9 classzone_idx=Movable',
      'mm_compaction_kcompactd_wake: nid=0 order=9 classzone_idx=Normal',
    ]);
    expect(m.mem.vmstat.get('compact_daemon_wake')).toBe(1);
  });

  it('no boost for a fallback that takes whole pageblocks, nor with vm.watermark_boost_factor 0', () => {
    const fresh = smallMachine('64M', { profile, minFreeKbytes: 1024 });
    fresh.allocPages(GFP.KERNEL, 0);
    expect(topZone(fresh).watermarkBoost).toBe(0);
    const m = holes(profile);
    setWatermarkBoostFactor(m.mem, 0);
    m.allocPages(GFP.KERNEL, 0);
    expect(topZone(m).watermarkBoost).toBe(0);
  });

  it('no boost in a zone of fewer than four pageblocks', () => {
    const m = holes(profile, '6M', 128);
    expect(m.allocPages(GFP.KERNEL, 0)).toBeGreaterThanOrEqual(0);
    expect(topZone(m).watermarkBoost).toBe(0);
  });

  it('vm.watermark_boost_factor takes an integer 0..2^31-1', () => {
    const m = smallMachine('4M', { profile });
    for (const bad of [-1, 1.5, 2 ** 31])
      expect(() => setWatermarkBoostFactor(m.mem, bad)).toThrow(/watermark_boost_factor/);
    setWatermarkBoostFactor(m.mem, 5000);
    expect(m.mem.watermarkBoostFactor).toBe(5000);
  });
});

describe('watermark boost by profile', () => {
  it('v4.8 has no boosting and no vm.watermark_boost_factor', () => {
    const m = holes('v4.8');
    m.allocPages(GFP.KERNEL, 0);
    expect(topZone(m).watermarkBoost).toBe(0);
    let err: unknown;
    try {
      setWatermarkBoostFactor(m.mem, 100);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MopsError);
    expect((err as MopsError).code).toBe('E_USAGE');
  });

  it('up to 6.4 any allocation from a boosted zone wakes kswapd; from 6.5 only an ALLOC_KSWAPD one', () => {
    const noKswapd = GFP.KERNEL & ~__GFP.KSWAPD_RECLAIM;
    for (const [profile, wakes] of [
      ['v6.3', true],
      ['v6.17', false],
    ] as const) {
      const m = smallMachine('64M', { profile });
      const z = topZone(m);
      // Marked by another CPU's fallback.
      z.boosted = true;
      m.allocPages(noKswapd, 0);
      expect(z.boosted).toBe(!wakes);
      expect(m.mem.kswapdWakeZoneidx >= 0).toBe(wakes);
      // No boost left and the node balanced: kswapd stays asleep; the wakeup_kcompactd() for
      // order 0 that wakeup_kswapd() makes then asks for nothing.
      expect(m.mem.kswapdWoken).toBe(false);
      expect(m.mem.kcompactdWakeups).toEqual([]);
    }
  });
});
