/**
 * Fragmentation metrics and the debugfs extfrag views (spec §8.7; compaction-by-profile T11,
 * T12). Expected values are worked out by hand from the free areas, with the kernel's
 * integer arithmetic.
 */
import { describe, expect, it } from 'vitest';
import {
  extfragForOrder,
  fillContigPageInfo,
  fragmentationIndex,
  fragmentationScoreNode,
  fragmentationScoreZone,
  proactiveThresholds,
  profileHasProactiveCompaction,
  unusableIndex,
} from '../../src/compaction/metrics.js';
import {
  extfragIndexView,
  formatThousandths,
  unusableIndexView,
} from '../../src/compaction/views.js';
import {
  createMachine,
  GFP,
  type Machine,
  MopsError,
  PROFILES,
  type ProfileName,
  procView,
  procViewNames,
  putPage,
} from '../../src/index.js';
import { checkerboard } from '../../src/workload/checkerboard.js';
import { allocAllFree } from '../../src/workload/movable_filler.js';
import { expectInvariants, nrFree, smallMachine, topZone } from '../helpers.js';

function mopsError(fn: () => unknown): MopsError {
  try {
    fn();
  } catch (e) {
    if (e instanceof MopsError) return e;
    throw e;
  }
  throw new Error('expected a MopsError');
}

/**
 * 8M normal-only machine (2048 pages) with exactly these free blocks: order 0 at pfns 1 and
 * 100, order 1 at 4, order 2 at 8, order 3 at 16 — nr_free [2, 1, 1, 1], 16 free pages in 5
 * blocks.
 */
function shaped(profile: ProfileName = 'v6.3'): Machine {
  const m = smallMachine('8M', { profile });
  allocAllFree(m);
  for (const pfn of [1, 4, 5, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23, 100])
    putPage(m.mem, pfn);
  expect(nrFree(topZone(m))).toEqual([2, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
  expectInvariants(m);
  return m;
}

/** 4M normal-only machine whose only free block is one of order 9 (512 pages). */
function oneOrder9(profile: ProfileName = 'v6.3'): Machine {
  const m = smallMachine('4M', { profile });
  expect(m.allocPages(GFP.KERNEL, 9)).toBeGreaterThanOrEqual(0);
  expect(nrFree(topZone(m))).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
  return m;
}

describe('fill_contig_page_info (§8.7, T11)', () => {
  it('counts free pages, free blocks and the blocks of the target order', () => {
    const z = topZone(shaped());
    expect(fillContigPageInfo(z, 0)).toEqual({
      freePages: 16,
      freeBlocksTotal: 5,
      freeBlocksSuitable: 16,
    });
    // order 1: 1 (order-1) + 2 (order-2) + 4 (order-3) blocks of two pages.
    expect(fillContigPageInfo(z, 1).freeBlocksSuitable).toBe(7);
    expect(fillContigPageInfo(z, 2).freeBlocksSuitable).toBe(3);
    expect(fillContigPageInfo(z, 3).freeBlocksSuitable).toBe(1);
    expect(fillContigPageInfo(z, 4).freeBlocksSuitable).toBe(0);
  });

  it('a fresh 4M zone is one order-10 block', () => {
    const z = topZone(smallMachine('4M'));
    expect(fillContigPageInfo(z, 3)).toEqual({
      freePages: 1024,
      freeBlocksTotal: 1,
      freeBlocksSuitable: 128,
    });
  });

  it('rejects an order outside 0..10 with E_RANGE naming it and the range', () => {
    const z = topZone(smallMachine('4M'));
    for (const bad of [-1, 11, 1.5, Number.NaN]) {
      const e = mopsError(() => fillContigPageInfo(z, bad));
      expect(e.code).toBe('E_RANGE');
      expect(e.message).toContain(String(bad));
      expect(e.message).toContain('0..10');
    }
    expect(mopsError(() => fragmentationIndex(z, 11)).code).toBe('E_RANGE');
    expect(mopsError(() => unusableIndex(z, -1)).code).toBe('E_RANGE');
    expect(mopsError(() => extfragForOrder(z, 11, PROFILES['v6.3'])).code).toBe('E_RANGE');
  });
});

describe('fragmentation_index (§8.7, T11)', () => {
  it('-1000 whenever a block of the order is free (fresh machine, every order)', () => {
    const z = topZone(smallMachine('4M'));
    for (let o = 0; o <= 10; o++) expect(fragmentationIndex(z, o)).toBe(-1000);
  });

  it('0 when the zone has no free block at all', () => {
    const m = smallMachine('4M');
    expect(m.allocPages(GFP.KERNEL, 10)).toBeGreaterThanOrEqual(0);
    const z = topZone(m);
    for (let o = 0; o <= 10; o++) expect(fragmentationIndex(z, o)).toBe(0);
  });

  it('1000 - (1000 + free*1000/2^order) / blocks, truncating each division', () => {
    const z = topZone(shaped());
    for (let o = 0; o <= 3; o++) expect(fragmentationIndex(z, o)).toBe(-1000);
    // order 4: 1000 - (1000 + 16000/16)/5 = 1000 - 400
    expect(fragmentationIndex(z, 4)).toBe(600);
    // order 5: 16000/32 = 500; 1500/5 = 300
    expect(fragmentationIndex(z, 5)).toBe(700);
    // order 8: 16000/256 = 62 (62.5); 1062/5 = 212
    expect(fragmentationIndex(z, 8)).toBe(788);
    // order 10: 16000/1024 = 15; 1015/5 = 203
    expect(fragmentationIndex(z, 10)).toBe(797);
  });

  it('goes negative, as the kernel’s unsigned subtraction cast to int does: one order-9 block at order 10 is -500', () => {
    const z = topZone(oneOrder9());
    expect(fragmentationIndex(z, 9)).toBe(-1000);
    // 1000 - (1000 + 512000/1024)/1 = 1000 - 1500
    expect(fragmentationIndex(z, 10)).toBe(-500);
  });
});

describe('unusable_free_index and extfrag_for_order (§8.7, T11)', () => {
  it('unusable index: share of free memory in blocks below the order, in thousandths', () => {
    const z = topZone(shaped());
    expect(unusableIndex(z, 0)).toBe(0);
    expect(unusableIndex(z, 1)).toBe(125); // (16 - 14)*1000/16
    expect(unusableIndex(z, 2)).toBe(250); // (16 - 12)*1000/16
    expect(unusableIndex(z, 3)).toBe(500); // (16 - 8)*1000/16
    for (let o = 4; o <= 10; o++) expect(unusableIndex(z, o)).toBe(1000);
  });

  it('unusable index is 1000 with no free page; extfrag_for_order is 0 then', () => {
    const m = smallMachine('4M');
    m.allocPages(GFP.KERNEL, 10);
    const z = topZone(m);
    expect(unusableIndex(z, 0)).toBe(1000);
    expect(extfragForOrder(z, 9, m.profile)).toBe(0);
    expect(fragmentationScoreZone(z, m.profile)).toBe(0);
  });

  it('extfrag_for_order: the same share in percent, truncated', () => {
    const m = shaped();
    const z = topZone(m);
    expect(extfragForOrder(z, 0, m.profile)).toBe(0);
    expect(extfragForOrder(z, 1, m.profile)).toBe(12); // 12.5
    expect(extfragForOrder(z, 2, m.profile)).toBe(25);
    expect(extfragForOrder(z, 3, m.profile)).toBe(50);
    expect(extfragForOrder(z, 4, m.profile)).toBe(100);
    expect(extfragForOrder(topZone(oneOrder9()), 10)).toBe(100);
  });

  it('v4.8 has no extfrag_for_order, zone or node score: E_USAGE; the indexes still work', () => {
    const m = shaped('v4.8');
    const z = topZone(m);
    expect(profileHasProactiveCompaction(m.profile)).toBe(false);
    for (const fn of [
      () => extfragForOrder(z, 9, m.profile),
      () => fragmentationScoreZone(z, m.profile),
      () => fragmentationScoreNode(m.mem),
    ]) {
      const e = mopsError(fn);
      expect(e.code).toBe('E_USAGE');
      expect(e.message).toContain('v4.8');
    }
    expect(fragmentationIndex(z, 4)).toBe(600);
    expect(unusableIndex(z, 3)).toBe(500);
  });
});

describe('fragmentation score (§8.7, T11)', () => {
  it('zone score = extfrag_for_order(9); node score = Σ present*score/(node_present+1)', () => {
    const m = shaped();
    expect(fragmentationScoreZone(topZone(m), m.profile)).toBe(100);
    // 2048*100/2049 = 99.95 -> 99: one below the zone score
    expect(fragmentationScoreNode(m.mem)).toBe(99);
    expect(fragmentationScoreNode(smallMachine('4M').mem)).toBe(0);
  });

  it('every 6.x profile has the score', () => {
    for (const p of ['v6.0', 'v6.3', 'v6.17'] as const)
      expect(profileHasProactiveCompaction(PROFILES[p])).toBe(true);
  });
});

describe('proactive thresholds (T12)', () => {
  it('p = 20 gives 80/90 in every 6.x profile', () => {
    for (const p of ['v6.0', 'v6.3', 'v6.17'] as const)
      expect(proactiveThresholds(PROFILES[p], 20)).toEqual({ low: 80, high: 90 });
  });

  it('p = 100: v6.0/v6.3 floor low at 5 (5/15); v6.17 goes to 0/0', () => {
    expect(proactiveThresholds(PROFILES['v6.0'], 100)).toEqual({ low: 5, high: 15 });
    expect(proactiveThresholds(PROFILES['v6.3'], 100)).toEqual({ low: 5, high: 15 });
    expect(proactiveThresholds(PROFILES['v6.17'], 100)).toEqual({ low: 0, high: 0 });
  });

  it('v6.17 narrows the gap to low/2 near the top; p = 0 gives 100/100', () => {
    expect(proactiveThresholds(PROFILES['v6.17'], 95)).toEqual({ low: 5, high: 7 });
    expect(proactiveThresholds(PROFILES['v6.3'], 95)).toEqual({ low: 5, high: 15 });
    expect(proactiveThresholds(PROFILES['v6.17'], 0)).toEqual({ low: 100, high: 100 });
    expect(proactiveThresholds(PROFILES['v6.3'], 0)).toEqual({ low: 100, high: 100 });
  });

  it('v4.8 has no proactive compaction (E_USAGE); proactiveness outside 0..100 is E_RANGE', () => {
    expect(mopsError(() => proactiveThresholds(PROFILES['v4.8'], 20)).code).toBe('E_USAGE');
    for (const bad of [-1, 101, 2.5]) {
      const e = mopsError(() => proactiveThresholds(PROFILES['v6.3'], bad));
      expect(e.code).toBe('E_RANGE');
      expect(e.message).toContain(String(bad));
    }
  });
});

describe('debugfs extfrag views (T11)', () => {
  it('prints thousandths as the kernel’s %d.%03d of index/1000 and index%1000', () => {
    expect(formatThousandths(-1000, 2)).toBe('-1.000 ');
    expect(formatThousandths(998, 2)).toBe(' 0.998 ');
    expect(formatThousandths(998, 0)).toBe('0.998 ');
    expect(formatThousandths(1000, 0)).toBe('1.000 ');
    expect(formatThousandths(-500, 2)).toBe(' 0.-500 ');
    expect(formatThousandths(-5, 0)).toBe('0.-05 ');
  });

  it('small machine, 6.x and v4.8 layouts', () => {
    const line = 'Node 0, zone   Normal ';
    expect(extfragIndexView(shaped('v6.3'))).toBe(
      `${line}-1.000 -1.000 -1.000 -1.000  0.600  0.700  0.750  0.775  0.788  0.794  0.797 \n`,
    );
    expect(extfragIndexView(shaped('v4.8'))).toBe(
      `${line}-1.000 -1.000 -1.000 -1.000 0.600 0.700 0.750 0.775 0.788 0.794 0.797 \n`,
    );
    for (const p of ['v4.8', 'v6.17'] as const)
      expect(unusableIndexView(shaped(p))).toBe(
        `${line}0.000 0.125 0.250 0.500 1.000 1.000 1.000 1.000 1.000 1.000 1.000 \n`,
      );
    const neg = `${line}${'-1.000 '.repeat(10)}`;
    expect(extfragIndexView(oneOrder9('v6.3'))).toBe(`${neg} 0.-500 \n`);
    expect(extfragIndexView(oneOrder9('v4.8'))).toBe(`${neg}0.-500 \n`);
  });

  it('every machine has extfrag_index and unusable_index, built in', () => {
    const m = shaped();
    expect(procView(m, 'extfrag_index')).toBe(extfragIndexView(m));
    expect(procView(m, 'unusable_index')).toBe(unusableIndexView(m));
    // Nothing is registered per machine: a reused machine has no state for them.
    expect(m.mem.ext.size).toBe(0);
    expect(procViewNames(m).filter((n) => n.endsWith('_index'))).toEqual([
      'extfrag_index',
      'unusable_index',
    ]);
  });

  it('8G x86_64: fresh, then after checkerboard (exact text)', () => {
    const m = createMachine({ memory: '8G', zones: 'x86_64', profile: 'v6.3' });
    const ones = '-1.000 '.repeat(11);
    expect(procView(m, 'extfrag_index')).toBe(
      `Node 0, zone      DMA ${ones}\n` +
        `Node 0, zone    DMA32 ${ones}\n` +
        `Node 0, zone   Normal ${ones}\n`,
    );
    // DMA holds one block of each order 0..9 and three of order 10 (4095 pages): the
    // pages below order o are 2^o - 1, so the index is (2^o - 1)*1000/4095.
    const zeros = '0.000 '.repeat(11);
    expect(procView(m, 'unusable_index')).toBe(
      'Node 0, zone      DMA 0.000 0.000 0.000 0.001 0.003 0.007 0.015 0.031 0.062 0.124 0.249 \n' +
        `Node 0, zone    DMA32 ${zeros}\n` +
        `Node 0, zone   Normal ${zeros}\n`,
    );
    expect(fragmentationScoreNode(m.mem)).toBe(0);

    const kept = checkerboard(m);
    // Even pfns stay allocated: DMA 2..4094, all of DMA32 and Normal's even pfns.
    expect(kept.length).toBe(2047 + 522240 + 524288);
    // N free order-0 pages; at order o: 1000 - (1000 + N*1000/2^o)/N. DMA N = 2048,
    // DMA32 N = 522240, Normal N = 524288.
    expect(procView(m, 'extfrag_index')).toBe(
      'Node 0, zone      DMA -1.000  0.500  0.750  0.875  0.938  0.969  0.984  0.992  0.996  0.998  0.999 \n' +
        'Node 0, zone    DMA32 -1.000  0.500  0.750  0.875  0.938  0.969  0.985  0.993  0.997  0.999  1.000 \n' +
        'Node 0, zone   Normal -1.000  0.500  0.750  0.875  0.938  0.969  0.985  0.993  0.997  0.999  1.000 \n',
    );
    const cb = `0.000 ${'1.000 '.repeat(10)}`;
    expect(procView(m, 'unusable_index')).toBe(
      `Node 0, zone      DMA ${cb}\nNode 0, zone    DMA32 ${cb}\nNode 0, zone   Normal ${cb}\n`,
    );
    // Each zone scores 100; weighted by present/(2097151 + 1): 0 + 49 + 50.
    expect(fragmentationScoreNode(m.mem)).toBe(99);
  }, 60_000);
});
