import { describe, expect, it } from 'vitest';
import { moveFreepagesBlock } from '../../src/buddy/rmqueue.js';
import {
  __GFP,
  ALLOC,
  allocAllFree,
  allocPages,
  GFP,
  getProfile,
  gfpToAllocFlags,
  type Machine,
  MIGRATE,
  type ProfileName,
} from '../../src/index.js';
import { expectInvariants, smallMachine, topZone } from '../helpers.js';

/** A machine of `memory` with every page allocated, then `free` given back. */
function fullBut(profile: ProfileName, free: number[], memory = '8M', minFreeKbytes = 0): Machine {
  const m = smallMachine(memory, { profile, minFreeKbytes });
  allocAllFree(m);
  for (const p of free) m.putPage(p);
  return m;
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe('move_freepages(): where the moved blocks land on the new list', () => {
  // Page 600 sits alone on the unmovable order-0 list; moving block 0 (free pages 10 and 20,
  // in that order) to the unmovable lists puts them after it (6.x move_to_free_list():
  // list_move_tail) or before it, the last moved first (v4.8 move_freepages(): list_move).
  it.each([
    ['v4.8', [20, 10, 600]],
    ['v6.0', [600, 10, 20]],
    ['v6.3', [600, 10, 20]],
    ['v6.17', [600, 10, 20]],
  ] as const)('%s hands them out as %j', (profile, order) => {
    const m = smallMachine('4M', { profile });
    allocAllFree(m);
    m.mem.setPageblockMigratetype(512, MIGRATE.UNMOVABLE);
    for (const p of [600, 10, 20]) m.putPage(p);
    moveFreepagesBlock(m.mem, topZone(m), 0, MIGRATE.UNMOVABLE);
    expect([0, 1, 2].map(() => m.allocPages(GFP.KERNEL, 0))).toEqual(order);
    expectInvariants(m);
  });
});

describe('zone_watermark_fast(): order-0 __GFP_HIGH at the min watermark of a boosted zone', () => {
  // min 128 pages; an unmovable fallback into block 0 (199 free pages left) boosts the
  // watermarks by a pageblock, so the boosted min is 640.
  function boosted(profile: ProfileName): Machine {
    const m = fullBut(profile, range(0, 200), '8M', 512);
    m.allocPages(GFP.KERNEL, 0);
    expect(topZone(m).nrFreePages).toBe(199);
    return m;
  }

  // v6.0 keys the retry on __GFP_ATOMIC, for which mops takes __GFP_HIGH without
  // __GFP_DIRECT_RECLAIM (what GFP_ATOMIC is); 6.3 on on ALLOC_MIN_RESERVE.
  it.each(['v6.0', 'v6.3', 'v6.17'] as const)(
    '%s: retries against the raw min (128 - 64 - 16 < 199)',
    (p) => {
      const m = boosted(p);
      expect(topZone(m).watermarkBoost).toBe(512);
      // No __GFP_KSWAPD_RECLAIM: kswapd does not run and take the boost back.
      expect(m.allocPages(__GFP.HIGH, 0)).toBeGreaterThanOrEqual(0);
      expectInvariants(m);
    },
  );

  it.each(['v6.0', 'v6.3', 'v6.17'] as const)(
    '%s: no retry above order 0 or without __GFP_HIGH',
    (p) => {
      const m = boosted(p);
      expect(m.allocPages(__GFP.HIGH, 1)).toBe(-1);
      expect(m.allocPages(0, 0)).toBe(-1);
      expect(topZone(m).watermarkBoost).toBe(512);
    },
  );

  it.each([
    ['v6.0', false],
    ['v6.3', true],
    ['v6.17', true],
  ] as const)('%s: a blocking __GFP_HIGH request retries too: %s', (p, retries) => {
    const m = boosted(p);
    expect(topZone(m).watermarkBoost).toBe(512);
    // Not GFP_ATOMIC (it may reclaim): no __GFP_ATOMIC in v6.0, ALLOC_MIN_RESERVE from 6.3.
    const pfn = m.allocPages(__GFP.HIGH | __GFP.DIRECT_RECLAIM, 0);
    expect(pfn >= 0).toBe(retries);
    expectInvariants(m);
  });

  it('v4.8: no boost, so the plain check passes', () => {
    const m = boosted('v4.8');
    expect(topZone(m).watermarkBoost).toBe(0);
    expect(m.allocPages(__GFP.HIGH, 0)).toBeGreaterThanOrEqual(0);
  });
});

describe('gfp_to_alloc_flags(): non-blocking reserves', () => {
  const nomem = __GFP.HIGH | __GFP.NOMEMALLOC;

  it.each([
    ['v4.8', true],
    ['v6.0', true],
    ['v6.3', false],
    ['v6.17', false],
  ] as const)(
    '%s: __GFP_NOMEMALLOC withholds ALLOC_NON_BLOCK; ALLOC_HIGHATOMIC at order 0: %s',
    (name, o0) => {
      const profile = getProfile(name);
      // __GFP_NOMEMALLOC: only __GFP_HIGH's ALLOC_MIN_RESERVE (v4.8/v6.0: no ALLOC_HARDER).
      expect(gfpToAllocFlags(nomem, 0, profile)).toBe(ALLOC.MIN_RESERVE);
      expect(gfpToAllocFlags(nomem, 3, profile)).toBe(ALLOC.MIN_RESERVE);
      const atomic = ALLOC.MIN_RESERVE | ALLOC.KSWAPD | ALLOC.NON_BLOCK;
      expect(gfpToAllocFlags(GFP.ATOMIC, 0, profile)).toBe(atomic | (o0 ? ALLOC.HIGHATOMIC : 0));
      expect(gfpToAllocFlags(GFP.ATOMIC, 1, profile)).toBe(atomic | ALLOC.HIGHATOMIC);
      expect(gfpToAllocFlags(GFP.KERNEL, 1, profile)).toBe(ALLOC.KSWAPD);
    },
  );

  it.each(['v4.8', 'v6.0', 'v6.3', 'v6.17'] as const)(
    '%s: GFP_ATOMIC | __GFP_NOMEMALLOC stops at half the min watermark',
    (profile) => {
      // min 256 pages; 111 free: 110 after the page is above min - min/2 - min/8 = 96 (the
      // non-blocking quarter; v4.8/v6.0: ALLOC_HARDER) but not above min - min/2 = 128.
      const m = fullBut(profile, range(0, 111), '8M', 1024);
      expect(topZone(m).watermark[0]).toBe(256);
      expect(m.allocPages(GFP.ATOMIC | __GFP.NOMEMALLOC, 0)).toBe(-1);
      expect(m.allocPages(GFP.ATOMIC, 0)).toBeGreaterThanOrEqual(0);
    },
  );
});

describe('fallback: __rmqueue_claim() (v6.17) and the older __rmqueue_fallback()', () => {
  it.each([
    ['v4.8', 0, 0],
    ['v6.0', 0, 300],
    ['v6.3', 0, 300],
    ['v6.17', 300, 300],
  ] as const)(
    '%s: mm_page_alloc_extfrag reports pfn %i, the allocation gets %i',
    (profile, traced, got) => {
      // Movable block 0 holds a free order-7 block at 0 and a free page at 300.
      const m = fullBut(profile, [...range(0, 128), 300]);
      const pfns: number[] = [];
      m.trace.on('mm_page_alloc_extfrag', (e) => pfns.push(e.pfn));
      // 6.x claims the block and allocates from it; 6.17 traces the page it hands out.
      expect(m.allocPages(GFP.KERNEL, 0)).toBe(got);
      expect(pfns).toEqual([traced]);
      expectInvariants(m);
    },
  );

  it.each(['v4.8', 'v6.0', 'v6.3', 'v6.17'] as const)(
    '%s: an order-10 ALLOC_NOFRAGMENT request never takes an order-9 block',
    (profile) => {
      const m = smallMachine('8M', { profile });
      // v4.8 boot freed the block at 1024 last, to the list head: it is split first.
      const v48 = profile === 'v4.8';
      expect(m.allocPages(GFP.HIGHUSER_MOVABLE, 9)).toBe(v48 ? 1024 : 0);
      expect(m.allocPages(GFP.HIGHUSER_MOVABLE, 10)).toBe(v48 ? 0 : 1024);
      // Only one order-9 block (512, v4.8: 1536) is free. v6.17 (the 6.4 fix) searches from
      // order 10.
      const flags = ALLOC.NO_WATERMARKS | ALLOC.NOFRAGMENT;
      expect(allocPages(m.mem, GFP.KERNEL | __GFP.COMP, 10, { allocFlags: flags })).toBe(-1);
      expect(topZone(m).nrFreePages).toBe(512);
      expectInvariants(m);
    },
  );
});
