import { describe, expect, it } from 'vitest';
import {
  __GFP,
  allocAllFree,
  checkInvariants,
  createMachine,
  GFP,
  MIGRATE,
  NR_PAGE_ORDERS,
  ZONE,
} from '../../src/index.js';

/**
 * DMA32 ends 256 pages into its 33rd pageblock (pfn 16384..16895), Normal holds the rest.
 * Only that block's DMA32 pages are free: 256 pages, between DMA32's min (252) and low (315)
 * watermarks, so a GFP_ATOMIC request is served by the slow path from that block.
 */
function zoneEndingMidBlock(profile: 'v4.8' | 'v6.0' | 'v6.3' | 'v6.17') {
  const m = createMachine({
    memory: '66M',
    profile,
    minFreeKbytes: 1024,
    zones: [
      { idx: ZONE.DMA32, startPfn: 0, spanned: 16640, present: 16640 },
      { idx: ZONE.NORMAL, startPfn: 16640, spanned: 256, present: 256 },
    ],
  });
  const z = m.mem.node.zones[ZONE.DMA32];
  allocAllFree(m);
  for (let p = 16384; p < 16640; p++) m.putPage(p);
  expect([z.nrFreePages, z.watermark[0], z.watermark[1]]).toEqual([256, 252, 315]);
  return { m, z };
}

describe('reserve_highatomic_pageblock() and a pageblock reaching past the zone end', () => {
  // Up to 6.9 the block is counted and retyped whatever move_freepages_block() did (it moves
  // nothing for such a block); 6.10 on skips a block move_freepages_block() refuses.
  it.each([
    ['v4.8', true],
    ['v6.0', true],
    ['v6.3', true],
    ['v6.17', false],
  ] as const)('%s: the block is reserved: %s', (p, reserved) => {
    const { m, z } = zoneEndingMidBlock(p);
    const pfn = m.allocPages(GFP.ATOMIC | __GFP.DMA32, 1);
    expect(pfn).toBeGreaterThanOrEqual(16384);
    expect(pfn).toBeLessThan(16640);
    expect(z.nrReservedHighatomic).toBe(reserved ? 512 : 0);
    expect(m.mem.pageblockMigratetype(16384)).toBe(reserved ? MIGRATE.HIGHATOMIC : MIGRATE.MOVABLE);
    // Either way no free page moved to the MIGRATE_HIGHATOMIC lists.
    for (let o = 0; o < NR_PAGE_ORDERS; o++) expect(z.freeCount(o, MIGRATE.HIGHATOMIC)).toBe(0);
    // The block is shared with the Normal zone, which did not count it: consistent.
    expect(checkInvariants(m).violations).toEqual([]);
  });
});
