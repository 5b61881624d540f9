import { describe, expect, it } from 'vitest';
import {
  createMovableFiller,
  freePagesInBlocks,
  GFP,
  installDirectCompaction,
  kcompactdRun,
  type Machine,
  MopsError,
  setDefragMode,
  traceRecorder,
  WMARK,
  wakeupKcompactd,
} from '../../src/index.js';
import { smallMachine, topZone } from '../helpers.js';
import { scannersMetBefore } from './layout.js';

/**
 * 64 MiB of movable filler pages of which half are freed again, in runs of `run` pages:
 * plenty of free memory, none of it in whole free pageblocks.
 */
function scattered(defrag: boolean, run = 1): Machine {
  const m = smallMachine('64M', { profile: 'v6.17', minFreeKbytes: 8192 });
  if (defrag) setDefragMode(m.mem, 1);
  const filler = createMovableFiller(m);
  const pages = filler.alloc(Number.MAX_SAFE_INTEGER, { reserves: true });
  for (const p of pages) if (p % (2 * run) >= run) filler.free(p);
  scannersMetBefore(m);
  return m;
}

describe('vm.defrag_mode (v6.17)', () => {
  it('exists from 6.15 only and takes 0 or 1', () => {
    for (const profile of ['v4.8', 'v6.0', 'v6.3'] as const) {
      const m = smallMachine('4M', { profile });
      expect(() => setDefragMode(m.mem, 1)).toThrow(MopsError);
      expect(() => setDefragMode(m.mem, 1)).toThrow(/defrag_mode does not exist/);
    }
    const m = smallMachine('4M', { profile: 'v6.17' });
    expect(m.mem.defragMode).toBe(false);
    expect(() => setDefragMode(m.mem, 2)).toThrow(/0 or 1/);
    setDefragMode(m.mem, 1);
    expect(m.mem.defragMode).toBe(true);
    setDefragMode(m.mem, 0);
    expect(m.mem.defragMode).toBe(false);
  });

  it('an allocation falls back into another type only after direct compaction failed', () => {
    const stalls = (defrag: boolean) => {
      // Free order-2 blocks in movable pageblocks.
      const m = scattered(defrag, 4);
      installDirectCompaction(m);
      // Unmovable order 2: no whole free block to claim, so any page means a fallback.
      expect(m.allocPages(GFP.KERNEL, 2)).toBeGreaterThanOrEqual(0);
      return m.mem.vmstat.get('compact_stall');
    };
    // Without defrag_mode the fast path falls back at once; with it, ALLOC_NOFRAGMENT holds
    // through the slow path's direct compaction, and only then is the fallback allowed.
    expect(stalls(false)).toBe(0);
    expect(stalls(true)).toBeGreaterThan(0);
  });

  it('kcompactd compacts until the high watermark is met in whole free pageblocks', () => {
    const blocks = (defrag: boolean) => {
      const m = scattered(defrag);
      const z = topZone(m);
      expect(freePagesInBlocks(z)).toBe(0);
      wakeupKcompactd(m, 9, z.idx);
      m.run(() => kcompactdRun(m, 10));
      return { free: freePagesInBlocks(z), high: z.wmarkPages(WMARK.HIGH) };
    };
    const plain = blocks(false);
    const defrag = blocks(true);
    // Without defrag_mode one free order-9 block ends the run (SUCCESS by the free-list
    // test); with it, kcompactd goes on until the high watermark is met in whole blocks.
    expect(plain.free).toBeLessThan(plain.high);
    expect(defrag.free).toBeGreaterThan(defrag.high);
  });

  it('wakeup_kcompactd judges the node at the watermark kcompactd works to (high under defrag_mode)', () => {
    const woken = (defrag: boolean) => {
      const m = smallMachine('16M', { profile: 'v6.17' });
      if (defrag) setDefragMode(m.mem, 1);
      for (let p = m.allocPages(GFP.HIGHUSER_MOVABLE, 0); p >= 0; )
        p = m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
      // One whole free pageblock, and every other page of blocks 0-5.
      for (let p = 3584; p < 4096; p++) m.putPage(p);
      for (let p = 1; p < 3072; p += 2) m.putPage(p);
      const z = topZone(m);
      // min 0, low 4, high 8: the free order-9 block meets min, but not high + 511.
      expect([z.wmarkPages(WMARK.MIN), z.wmarkPages(WMARK.HIGH)]).toEqual([0, 8]);
      const rec = traceRecorder(m, { events: ['mm_compaction_wakeup_kcompactd'] });
      wakeupKcompactd(m, 9, z.idx);
      rec.stop();
      return rec.lines.length;
    };
    // Plain: an order-9 page can be allocated at min already, nothing to wake for.
    expect(woken(false)).toBe(0);
    expect(woken(true)).toBe(1);
  });
});
