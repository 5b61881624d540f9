/**
 * GFP flags and allocation flags (include/linux/gfp_types.h, mm/internal.h).
 * @module
 */

import { bug } from '../debug/dump_page.js';
import { MopsError, valueKind } from '../errors.js';
import { MIGRATE, ZONE } from '../memory/constants.js';
import type { Memory } from '../memory/mem.js';

/**
 * The `__GFP_*` bits mops models, with 6.x's values. `RETRY_MAYFAIL` (v4.8: `__GFP_REPEAT`)
 * and `THISNODE` are accepted and printed, and change nothing mops models: the slowpath
 * retries they allow (for a costly order, compaction again at the same priority) need
 * reclaim progress, which mops has no reclaim to make, and there is one node. `NORETRY` (`___GFP_NORETRY`: v4.8 0x1000, 6.x 0x10000) keeps the slow path
 * from looping: direct compaction stops after the retry loop's first pass, and a costly
 * order whose first compaction was deferred (6.x: or skipped) fails at once
 * (allocPagesSlowpathCompact). mops has neither reclaim nor an OOM killer, so an order-0
 * request (the balloon's) behaves the same with or without it.
 */
export const __GFP = {
  DMA: 0x01,
  HIGHMEM: 0x02,
  DMA32: 0x04,
  MOVABLE: 0x08,
  RECLAIMABLE: 0x10,
  HIGH: 0x20,
  IO: 0x40,
  FS: 0x80,
  ZERO: 0x100,
  DIRECT_RECLAIM: 0x400,
  KSWAPD_RECLAIM: 0x800,
  NOWARN: 0x2000,
  RETRY_MAYFAIL: 0x4000,
  NORETRY: 0x10000,
  COMP: 0x40000,
  NOMEMALLOC: 0x80000,
  HARDWALL: 0x100000,
  THISNODE: 0x200000,
} as const;

/** Common combinations. */
export const GFP = {
  /** GFP_ATOMIC: may not sleep, may use part of the reserves. */
  ATOMIC: __GFP.HIGH | __GFP.KSWAPD_RECLAIM,
  /** GFP_KERNEL. */
  KERNEL: __GFP.DIRECT_RECLAIM | __GFP.KSWAPD_RECLAIM | __GFP.IO | __GFP.FS,
  /** GFP_NOWAIT. */
  NOWAIT: __GFP.KSWAPD_RECLAIM,
  /** GFP_USER. */
  USER: __GFP.DIRECT_RECLAIM | __GFP.KSWAPD_RECLAIM | __GFP.IO | __GFP.FS | __GFP.HARDWALL,
  /** GFP_HIGHUSER_MOVABLE: user pages (movable). */
  HIGHUSER_MOVABLE:
    __GFP.DIRECT_RECLAIM |
    __GFP.KSWAPD_RECLAIM |
    __GFP.IO |
    __GFP.FS |
    __GFP.HARDWALL |
    __GFP.HIGHMEM |
    __GFP.MOVABLE,
  /** GFP_KERNEL | __GFP_RECLAIMABLE (slab caches with SLAB_RECLAIM_ACCOUNT). */
  KERNEL_RECLAIMABLE:
    __GFP.DIRECT_RECLAIM | __GFP.KSWAPD_RECLAIM | __GFP.IO | __GFP.FS | __GFP.RECLAIMABLE,
} as const;

/** gfp_migratetype(). */
export function gfpMigratetype(gfp: number): number {
  if (gfp & __GFP.MOVABLE) return MIGRATE.MOVABLE;
  if (gfp & __GFP.RECLAIMABLE) return MIGRATE.RECLAIMABLE;
  return MIGRATE.UNMOVABLE;
}

/** Every `__GFP_*` bit mops models. */
const GFP_KNOWN = Object.values(__GFP).reduce((a, b) => a | b, 0);

/**
 * Checks a gfp mask at an allocation entry: a non-negative integer of modelled `__GFP_*`
 * bits (else E_RANGE naming `gfp`), and at most one zone modifier of DMA, DMA32 and HIGHMEM
 * (else the MmBug of gfp_zone()'s GFP_ZONE_BAD check).
 * @param mem the machine's memory
 * @param gfp the mask given to the entry point
 * @throws {@link MopsError} `E_RANGE` naming `gfp`
 * @throws {@link MmBug} for two zone modifiers at once; the machine halts
 */
export function checkGfp(mem: Memory, gfp: number): void {
  // One comparison for the common case: an unsigned integer with no unknown bit.
  if (typeof gfp !== 'number' || gfp >>> 0 !== gfp || (gfp & ~GFP_KNOWN) !== 0)
    throw new MopsError(
      'E_RANGE',
      `gfp must be a mask of __GFP bits (the GFP and __GFP constants), got ${typeof gfp === 'number' && Number.isInteger(gfp) && gfp >= 0 ? `0x${gfp.toString(16)}` : valueKind(gfp)}`,
      'gfp',
    );
  // GFP_ZONE_BAD: two or three of DMA (1), HIGHMEM (2), DMA32 (4).
  if ((0b11101000 >> (gfp & 7)) & 1)
    bug(
      mem,
      `VM_BUG_ON((GFP_ZONE_BAD >> bit) & 1): gfp_zone(0x${gfp.toString(16)}) names more than one zone`,
    );
}

/** gfp_zone(): the highest zone the allocation may use. */
export function gfpZone(gfp: number): number {
  if (gfp & __GFP.DMA) return ZONE.DMA;
  if (gfp & __GFP.DMA32) return ZONE.DMA32;
  if (gfp & __GFP.HIGHMEM && gfp & __GFP.MOVABLE) return ZONE.MOVABLE;
  return ZONE.NORMAL;
}

/** `ALLOC_*` flags (mm/internal.h). The low two bits select the watermark. */
export const ALLOC = {
  WMARK_MIN: 0,
  WMARK_LOW: 1,
  WMARK_HIGH: 2,
  NO_WATERMARKS: 0x04,
  WMARK_MASK: 0x03,
  OOM: 0x08,
  NON_BLOCK: 0x10,
  MIN_RESERVE: 0x20,
  CPUSET: 0x40,
  CMA: 0x80,
  NOFRAGMENT: 0x100,
  HIGHATOMIC: 0x200,
  KSWAPD: 0x800,
} as const;
/** ALLOC_RESERVES: any of the reserve-granting flags. */
export const ALLOC_RESERVES = ALLOC.NON_BLOCK | ALLOC.MIN_RESERVE | ALLOC.HIGHATOMIC | ALLOC.OOM;
/** ALLOC_HARDER of v4.8 and v6.0, as mops models it: a non-blocking request's flags. */
export const ALLOC_HARDER = ALLOC.NON_BLOCK | ALLOC.HIGHATOMIC;
