import { describe, expect, it } from 'vitest';
import { moveFreepagesBlock } from '../../src/buddy/rmqueue.js';
import {
  __GFP,
  ALLOC,
  allocAllFree,
  GFP,
  getProfile,
  gfpToAllocFlags,
  type Machine,
  MIGRATE,
  PROFILE_NAMES,
  type ProfileName,
  ZONE,
  zoneWatermarkOk,
} from '../../src/index.js';
import { expectInvariants, smallMachine, topZone } from '../helpers.js';

/**
 * A machine whose free pages sit between the min and the low watermark, so that an
 * allocation fails the fast path and is served by the slow path. v6.17 reserves nothing in a
 * zone whose 1% is below a pageblock: its machine is 256M.
 */
function betweenMinAndLow(profile: ProfileName): Machine {
  const m = smallMachine(profile === 'v6.17' ? '256M' : '8M', { profile, minFreeKbytes: 1024 });
  const z = topZone(m);
  while (z.nrFreePages > z.watermark[1] - 2) m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
  expect(z.nrFreePages).toBeGreaterThan(z.watermark[0]);
  return m;
}

/**
 * Whether GFP_NOWAIT has the reserves' rights of a non-blocking request: 6.3 on gives it
 * ALLOC_HIGHATOMIC (and the non-blocking reserves); v4.8/v6.0 only __GFP_ATOMIC has them.
 */
const NOWAIT_GETS_RESERVES = [
  ['v4.8', false],
  ['v6.0', false],
  ['v6.3', true],
  ['v6.17', true],
] as const;

describe('gfp_to_alloc_flags(): which non-blocking requests dig deeper', () => {
  // 4.4 to 6.2: ALLOC_HARDER for __GFP_ATOMIC (mops: __GFP_HIGH without
  // __GFP_DIRECT_RECLAIM); 6.3 on: ALLOC_NON_BLOCK for any request that cannot reclaim.
  it.each(NOWAIT_GETS_RESERVES)(
    '%s: GFP_NOWAIT gets the non-blocking reserves: %s',
    (name, nowait) => {
      const profile = getProfile(name);
      const harder = ALLOC.NON_BLOCK | ALLOC.HIGHATOMIC;
      expect(gfpToAllocFlags(GFP.NOWAIT, 0, profile)).toBe(
        ALLOC.KSWAPD | (nowait ? ALLOC.NON_BLOCK : 0),
      );
      expect(gfpToAllocFlags(GFP.NOWAIT, 1, profile)).toBe(ALLOC.KSWAPD | (nowait ? harder : 0));
      // GFP_ATOMIC: ALLOC_HARDER at every order up to 6.2; ALLOC_HIGHATOMIC above order 0 after.
      const atomic = ALLOC.MIN_RESERVE | ALLOC.KSWAPD;
      expect(gfpToAllocFlags(GFP.ATOMIC, 1, profile)).toBe(atomic | harder);
      expect(gfpToAllocFlags(GFP.ATOMIC, 0, profile)).toBe(
        atomic | (nowait ? ALLOC.NON_BLOCK : harder),
      );
      // __GFP_HIGH on a request that may reclaim: the min reserve only, in every release.
      expect(gfpToAllocFlags(__GFP.HIGH | __GFP.DIRECT_RECLAIM, 1, profile)).toBe(
        ALLOC.MIN_RESERVE,
      );
    },
  );

  it.each(PROFILE_NAMES)('%s: a GFP_ATOMIC order-1 request reserves its pageblock', (p) => {
    const m = betweenMinAndLow(p);
    const pfn = m.allocPages(GFP.ATOMIC, 1);
    expect(pfn).toBeGreaterThanOrEqual(0);
    expect(topZone(m).nrReservedHighatomic).toBe(512);
    expect(m.mem.pageblockMigratetype(pfn)).toBe(MIGRATE.HIGHATOMIC);
    expectInvariants(m);
  });

  // v4.8/v6.0: GFP_NOWAIT has no __GFP_ATOMIC, so no ALLOC_HARDER and no reserve; 6.3 on
  // gives it ALLOC_HIGHATOMIC above order 0.
  it.each(NOWAIT_GETS_RESERVES)(
    '%s: a GFP_NOWAIT order-1 request reserves its pageblock: %s',
    (p, reserves) => {
      const m = betweenMinAndLow(p);
      const pfn = m.allocPages(GFP.NOWAIT, 1);
      expect(pfn).toBeGreaterThanOrEqual(0);
      expect(topZone(m).nrReservedHighatomic).toBe(reserves ? 512 : 0);
      expect(m.mem.pageblockMigratetype(pfn) === MIGRATE.HIGHATOMIC).toBe(reserves);
      expectInvariants(m);
    },
  );

  // Block 0 reserved with its 512 free pages and 88 more free: 600 free, mark 590. Only a
  // request with the reserves' rights counts the reserved pages (v4.8/v6.0: ALLOC_HARDER).
  it.each(NOWAIT_GETS_RESERVES)(
    '%s: GFP_NOWAIT counts the high-atomic reserve as free: %s',
    (p, counts) => {
      const m = smallMachine('8M', { profile: p });
      allocAllFree(m);
      for (let pfn = 0; pfn < 600; pfn++) m.putPage(pfn);
      const z = topZone(m);
      m.mem.setPageblockMigratetype(0, MIGRATE.HIGHATOMIC);
      moveFreepagesBlock(m.mem, z, 0, MIGRATE.HIGHATOMIC);
      z.nrReservedHighatomic = 512;
      const ok = (gfp: number) =>
        zoneWatermarkOk(z, 0, 590, ZONE.NORMAL, gfpToAllocFlags(gfp, 0, m.profile));
      expect(ok(GFP.NOWAIT)).toBe(counts);
      expect(ok(GFP.ATOMIC)).toBe(true);
    },
  );
});
