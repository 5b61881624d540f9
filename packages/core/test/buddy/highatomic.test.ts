import { describe, expect, it } from 'vitest';
import { highatomicLimit, reserveHighatomicPageblock } from '../../src/buddy/highatomic.js';
import { moveFreepagesBlock } from '../../src/buddy/rmqueue.js';
import {
  __GFP,
  ALLOC,
  allocAllFree,
  buddyinfo,
  checkInvariants,
  GFP,
  getPageFromFreelist,
  getProfile,
  type Machine,
  MIGRATE,
  machineFromProc,
  PROFILE_NAMES,
  type ProfileName,
  pagetypeinfo,
  ZONE,
  zoneinfo,
  zoneWatermarkOk,
} from '../../src/index.js';
import { expectInvariants, smallMachine, topZone } from '../helpers.js';

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

/** A machine with every page allocated, then `free` given back. */
function fullBut(profile: ProfileName, free: number[], memory = '8M'): Machine {
  const m = smallMachine(memory, { profile });
  allocAllFree(m);
  for (const p of free) m.putPage(p);
  return m;
}

/** Reserves pageblock 0 by hand (whatever the limit) with its free pages. */
function reserveBlock0(m: Machine): void {
  m.mem.setPageblockMigratetype(0, MIGRATE.HIGHATOMIC);
  moveFreepagesBlock(m.mem, topZone(m), 0, MIGRATE.HIGHATOMIC);
  topZone(m).nrReservedHighatomic = 512;
}

/**
 * A machine whose free pages are just below the low watermark (above min), so that an
 * allocation fails the fast path and succeeds in the slow path. v6.17 reserves nothing in a
 * zone whose 1% is below a pageblock: its machine is 256M.
 */
function belowLow(profile: ProfileName): Machine {
  const m = smallMachine(profile === 'v6.17' ? '256M' : '8M', { profile, minFreeKbytes: 1024 });
  const z = topZone(m);
  while (z.nrFreePages > z.watermark[1] - 2) m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
  return m;
}

describe('reserve_highatomic_pageblock() after a slow-path atomic allocation', () => {
  it.each(PROFILE_NAMES)('%s: an order-1 GFP_ATOMIC allocation reserves its pageblock', (p) => {
    const m = belowLow(p);
    const pfn = m.allocPages(GFP.ATOMIC, 1);
    expect(pfn).toBeGreaterThanOrEqual(0);
    expect(m.mem.pageblockMigratetype(pfn)).toBe(MIGRATE.HIGHATOMIC);
    expect(topZone(m).nrReservedHighatomic).toBe(512);
    expectInvariants(m);
  });

  // v4.8/v6.0: order && ALLOC_HARDER (mops gives ALLOC_HARDER's flags at order 0 too); 6.3 on:
  // ALLOC_HIGHATOMIC, which only order > 0 gets. Blocking or __GFP_NOMEMALLOC requests never.
  it.each(PROFILE_NAMES)('%s: order 0, blocking and NOMEMALLOC requests reserve nothing', (p) => {
    const m = belowLow(p);
    for (const [gfp, order] of [
      [GFP.ATOMIC, 0],
      [GFP.KERNEL, 1],
      [GFP.ATOMIC | __GFP.NOMEMALLOC, 1],
    ])
      expect(m.allocPages(gfp, order)).toBeGreaterThanOrEqual(0);
    expect(topZone(m).nrReservedHighatomic).toBe(0);
    expectInvariants(m);
  });

  it.each(PROFILE_NAMES)('%s: the fast path (low watermark) reserves nothing', (p) => {
    const m = smallMachine('8M', { profile: p, minFreeKbytes: 1024 });
    expect(m.allocPages(GFP.ATOMIC, 1)).toBeGreaterThanOrEqual(0);
    expect(topZone(m).nrReservedHighatomic).toBe(0);
  });
});

describe('the reserve limit', () => {
  it('managed/100 + pageblock_nr_pages up to 6.6; ALIGN(managed/100) or nothing after', () => {
    const old = getProfile('v6.3').highatomic;
    const now = getProfile('v6.17').highatomic;
    expect(highatomicLimit(old, 2048)).toBe(20 + 512);
    expect(highatomicLimit(now, 2048)).toBe(0);
    expect(highatomicLimit(now, 65536)).toBe(1024);
    expect(highatomicLimit(now, 51200)).toBe(512);
  });

  // 8M (2048 pages): 20 + 512 lets a second block in (512 < 532), not a third.
  it.each(['v4.8', 'v6.0', 'v6.3'] as const)('%s: 8M reserves two blocks at most', (p) => {
    const m = fullBut(p, []);
    for (const pfn of [0, 512, 1024]) reserveHighatomicPageblock(m.mem, topZone(m), pfn, 1);
    expect([0, 512].map((b) => m.mem.pageblockMigratetype(b))).toEqual([3, 3]);
    expect(m.mem.pageblockMigratetype(1024)).not.toBe(MIGRATE.HIGHATOMIC);
    expect(topZone(m).nrReservedHighatomic).toBe(1024);
    expectInvariants(m);
  });

  it('v6.17: nothing in 8M; ALIGN(655, 512) = two blocks in 256M', () => {
    const small = fullBut('v6.17', []);
    reserveHighatomicPageblock(small.mem, topZone(small), 0, 1);
    expect(topZone(small).nrReservedHighatomic).toBe(0);
    const big = fullBut('v6.17', [], '256M');
    for (const pfn of [0, 512, 1024]) reserveHighatomicPageblock(big.mem, topZone(big), pfn, 1);
    expect(topZone(big).nrReservedHighatomic).toBe(1024);
    expect(big.mem.pageblockMigratetype(1024)).not.toBe(MIGRATE.HIGHATOMIC);
  });

  it('an order-10 allocation: v6.17 reserves both its blocks, v6.3 the first', () => {
    const big = fullBut('v6.17', [], '256M');
    reserveHighatomicPageblock(big.mem, topZone(big), 0, 10);
    expect([big.mem.pageblockMigratetype(0), big.mem.pageblockMigratetype(512)]).toEqual([3, 3]);
    expect(topZone(big).nrReservedHighatomic).toBe(1024);
    const old = fullBut('v6.3', [], '256M');
    reserveHighatomicPageblock(old.mem, topZone(old), 0, 10);
    expect(old.mem.pageblockMigratetype(0)).toBe(MIGRATE.HIGHATOMIC);
    expect(old.mem.pageblockMigratetype(512)).not.toBe(MIGRATE.HIGHATOMIC);
    expect(topZone(old).nrReservedHighatomic).toBe(512);
  });

  it.each(PROFILE_NAMES)('%s: an Isolate or HighAtomic block is not reserved again', (p) => {
    const m = fullBut(p, [], '256M');
    m.mem.setPageblockMigratetype(0, MIGRATE.ISOLATE);
    reserveHighatomicPageblock(m.mem, topZone(m), 0, 1);
    reserveHighatomicPageblock(m.mem, topZone(m), 512, 1);
    reserveHighatomicPageblock(m.mem, topZone(m), 600, 1);
    expect(m.mem.pageblockMigratetype(0)).toBe(MIGRATE.ISOLATE);
    expect(topZone(m).nrReservedHighatomic).toBe(512);
  });
});

describe('__zone_watermark_ok() and the reserve', () => {
  // Block 0 reserved with its 512 free pages, 88 more free elsewhere: 600 free, mark 590.
  const cases: [ProfileName, boolean][] = [
    ['v4.8', false],
    ['v6.0', false],
    ['v6.3', true],
    ['v6.17', true],
  ];
  it.each(cases)('%s: only requests that may use the reserves count them', (p, highOk) => {
    const m = fullBut(p, range(0, 600));
    reserveBlock0(m);
    const z = topZone(m);
    expect(z.nrFreePages).toBe(600);
    const ok = (flags: number) => zoneWatermarkOk(z, 0, 590, ZONE.NORMAL, flags);
    expect(ok(0)).toBe(false);
    expect(ok(ALLOC.NON_BLOCK | ALLOC.HIGHATOMIC)).toBe(true);
    // __GFP_HIGH alone (ALLOC_MIN_RESERVE): a reserve right from 6.3 on, not ALLOC_HARDER.
    expect(ok(ALLOC.MIN_RESERVE)).toBe(highOk);
  });

  // Block 0 reserved but wholly allocated: nr_reserved_highatomic 512, nr_free_highatomic 0.
  it.each([
    ['v4.8', false],
    ['v6.0', false],
    ['v6.3', false],
    ['v6.17', true],
  ] as const)('%s subtracts the reserved (false) or the free (true) pages', (p, free) => {
    const m = fullBut(p, range(512, 1112));
    reserveBlock0(m);
    expect(zoneWatermarkOk(topZone(m), 0, 590, ZONE.NORMAL, 0)).toBe(free);
  });
});

describe('rmqueue_buddy() and the MIGRATE_HIGHATOMIC lists', () => {
  it.each(PROFILE_NAMES)('%s: a high-order atomic request takes a reserved page first', (p) => {
    const m = fullBut(p, [...range(0, 8), ...range(1024, 1032)]);
    reserveBlock0(m);
    const atomic = ALLOC.NO_WATERMARKS | ALLOC.NON_BLOCK | ALLOC.HIGHATOMIC;
    expect(getPageFromFreelist(m.mem, GFP.ATOMIC, 1, atomic, 1)).toBeLessThan(512);
    expect(getPageFromFreelist(m.mem, GFP.KERNEL, 1, ALLOC.NO_WATERMARKS, 1)).toBeGreaterThan(512);
  });

  // Only the reserve has free pages: an order-0 atomic request may take one in v6.17
  // (ALLOC_NON_BLOCK), not before; ALLOC_OOM may from v6.3 on.
  it.each([
    ['v4.8', false, false],
    ['v6.0', false, false],
    ['v6.3', false, true],
    ['v6.17', true, true],
  ] as const)('%s: the last resort (non-block %s, OOM %s)', (p, nonBlock, oom) => {
    const m = fullBut(p, range(0, 8));
    reserveBlock0(m);
    const got = (flags: number) =>
      getPageFromFreelist(m.mem, GFP.ATOMIC, 0, ALLOC.NO_WATERMARKS | flags, 1) >= 0;
    expect(got(ALLOC.NON_BLOCK)).toBe(nonBlock);
    expect(got(ALLOC.OOM)).toBe(oom);
  });
});

describe('the invariant', () => {
  it('a HighAtomic pageblock the reserve does not count is reported', () => {
    const m = fullBut('v6.3', []);
    m.mem.setPageblockMigratetype(0, MIGRATE.HIGHATOMIC);
    expect(checkInvariants(m).violations.join('\n')).toContain('nr_reserved_highatomic is 0');
    topZone(m).nrReservedHighatomic = 512;
    expectInvariants(m);
  });
});

describe('the /proc rebuild', () => {
  it('v6.3: the reserve follows the rebuilt HighAtomic blocks', () => {
    const m = belowLow('v6.3');
    m.allocPages(GFP.ATOMIC, 1);
    const t = { buddyinfo: buddyinfo(m), pagetypeinfo: pagetypeinfo(m), zoneinfo: zoneinfo(m) };
    expect(t.pagetypeinfo).toMatch(/Normal +\d+ +\d+ +\d+ +1 +0 +\n/);
    const copy = machineFromProc(t, { profile: 'v6.3' });
    expect(pagetypeinfo(copy)).toBe(t.pagetypeinfo);
    expect(topZone(copy).nrReservedHighatomic).toBe(512);
    expectInvariants(copy);
  });
});
