import { describe, expect, it } from 'vitest';
import {
  createMachine,
  GFP,
  type Machine,
  MIGRATE,
  MIGRATE_TYPES,
  PROFILE_NAMES,
  ZONE,
} from '../../src/index.js';
import { expectInvariants, smallMachine, topZone } from '../helpers.js';

/** The free list of `order` and type `mt` (default MOVABLE) in the top zone, head first. */
function movableList(m: Machine, order: number, mt: number = MIGRATE.MOVABLE): number[] {
  return m.mem.pages.lists.toArray(topZone(m).freeList[order * MIGRATE_TYPES + mt]);
}

// Boot frees memory in ascending pfn order, in the largest aligned blocks
// (__free_pages_memory()). From 5.10 each block goes to the tail of its list (FPI_TO_TAIL);
// v4.8's __free_one_page() adds it at the head unless a merge with the next-order buddy
// looks likely, so the top of memory is handed out first.
describe.each(PROFILE_NAMES)('boot: where memblock_free_all() puts each block — %s', (profile) => {
  const v48 = profile === 'v4.8';

  it('8M: the order-10 list and the first allocations', () => {
    const m = smallMachine('8M', { profile });
    expect(movableList(m, 10)).toEqual(v48 ? [1024, 0] : [0, 1024]);
    expect(m.allocPages(GFP.KERNEL, 1)).toBe(v48 ? 1024 : 0);
    expect(smallMachine('8M', { profile }).allocPages(GFP.HIGHUSER_MOVABLE, 0)).toBe(
      v48 ? 1024 : 0,
    );
    expectInvariants(m);
  });

  it('a zone of [256, 1792): head, except where a merge looks likely (v4.8)', () => {
    const m = createMachine({
      memory: '8M',
      zones: [{ idx: ZONE.NORMAL, startPfn: 256, spanned: 1536, present: 1536 }],
      minFreeKbytes: 0,
      profile,
    });
    // Freed in order: 256 (order 8), 512 (9), 1024 (9), 1536 (8). 1024 has no free
    // higher-order buddy (0 lies outside the zone): v4.8 puts it at the head. 1536's
    // order-9 higher buddy, 1024, is free: buddy_merge_likely(), so the tail in v4.8 too.
    // 256 lies in pageblock 0, which starts before the zone: memmap_init never marked it
    // MOVABLE, so its free block is on the UNMOVABLE list.
    expect(movableList(m, 9)).toEqual(v48 ? [1024, 512] : [512, 1024]);
    expect(movableList(m, 8)).toEqual([1536]);
    expect(movableList(m, 8, MIGRATE.UNMOVABLE)).toEqual([256]);
    expect(m.mem.pageblockMigratetype(256)).toBe(MIGRATE.UNMOVABLE);
    expect(m.allocPages(GFP.HIGHUSER_MOVABLE, 9)).toBe(v48 ? 1024 : 512);
    expectInvariants(m);
  });
});
