/**
 * The buddy allocator's rows of the release profile (mm/page_alloc.c): the watermark and
 * free-list rules, and the high-atomic pageblock reserve (MIGRATE_HIGHATOMIC: when
 * get_page_from_freelist() reserves a pageblock, how many it may reserve, and how the
 * watermark check and rmqueue treat them).
 * @module
 */

/**
 * The buddy allocator's rows of a release profile (mm/page_alloc.c): watermarks, fallbacks,
 * free-list placement and the high-atomic reserve. Part of `Profile`.
 */
export interface BuddyProfile {
  /**
   * ZONE_MOVABLE is treated as highmem (v6.17): left out of the pages sharing
   * min_free_kbytes, its min watermark is managed/1024 clamped to [32, 128].
   */
  readonly movableZoneMinClamp: boolean;
  /** The upper bound of the default min_free_kbytes (v4.8: 65536; 6.x: 262144). */
  readonly minFreeKbytesMax: number;
  /** The fast path asks for ALLOC_NOFRAGMENT when the preferred zone is Normal (6.x). */
  readonly allocNofragment: boolean;
  /** move_freepages() relinks moved blocks at the list tail (6.x); v4.8 at the head (list_move). */
  readonly moveFreepagesTail: boolean;
  /**
   * move_freepages_block() refuses a pageblock not wholly inside the zone (v6.17,
   * prep_move_freepages_block()); before, one starting below the zone is moved from the
   * given pfn on (only one reaching past the zone's end is refused).
   */
  readonly moveFreepagesWholeBlock: boolean;
  /**
   * zone_watermark_fast() retries an order-0 ALLOC_MIN_RESERVE request at WMARK_MIN in a
   * boosted zone against the raw min (v6.3 on). v6.0 keyed it on __GFP_ATOMIC, which mops
   * does not model, so it keeps the boosted check alone; v4.8 has no boost.
   */
  readonly minWmarkIgnoresBoost: boolean;
  /** A non-blocking request gets ALLOC_HIGHATOMIC at order 0 too (v4.8/v6.0 ALLOC_HARDER). */
  readonly highatomicOrder0: boolean;
  /**
   * Which free blocks of different migrate types merge across pageblocks: `'not_isolate'`
   * (v4.8: any two but ISOLATE) or `'pcp'` (6.x migratetype_is_mergeable: the per-CPU types).
   */
  readonly mergeableTypes: 'not_isolate' | 'pcp';
  /** The high-atomic pageblock reserve. */
  readonly highatomic: HighatomicProfile;
  /**
   * Boot frees each block to the tail of its free list (5.10 on: FPI_TO_TAIL); v4.8 to the
   * head unless a merge looks likely, so the top of memory goes first (buddy/init.ts).
   */
  readonly bootFreeToTail: boolean;
}

/**
 * The high-atomic reserve (reserve_highatomic_pageblock(), __zone_watermark_unusable_free(),
 * rmqueue_buddy()). unreserve_highatomic_pageblock() is not modelled: the kernel calls it
 * only from __alloc_pages_direct_reclaim() (a failed retry after reclaim) and from
 * should_reclaim_retry() (before the OOM killer), and mops models neither direct reclaim nor
 * the OOM path — its slow path is the min-watermark attempt plus the compaction hooks, which
 * the kernel runs before reclaim. A reserved block therefore stays reserved.
 */
export interface HighatomicProfile {
  /**
   * Which allocations reserve a pageblock after succeeding, and take from the
   * MIGRATE_HIGHATOMIC free lists first: `'order_harder'` (v4.8, v6.0: `order &&
   * (alloc_flags & ALLOC_HARDER)`, ALLOC_HARDER being ALLOC_NON_BLOCK | ALLOC_HIGHATOMIC in
   * mops) or `'highatomic'` (6.3 on: `alloc_flags & ALLOC_HIGHATOMIC`, which
   * gfp_to_alloc_flags() sets only above order 0).
   */
  readonly trigger: 'order_harder' | 'highatomic';
  /**
   * The cap on zone->nr_reserved_highatomic: `'plus_block'` (up to 6.6: managed/100 +
   * pageblock_nr_pages, so at least one block and up to two on a small zone) or `'align'`
   * (6.7 on, "mm: page_alloc: correct high atomic reserve calculations": nothing when
   * managed/100 < pageblock_nr_pages, else ALIGN(managed/100, pageblock_nr_pages)).
   */
  readonly limit: 'plus_block' | 'align';
  /**
   * An allocation of order ≥ pageblock_order reserves every pageblock it covers
   * (change_pageblock_range(), nr_reserved_highatomic += 1 << order; v6.17: the fix for
   * highatomic typing in multi-block buddies, after 6.3). Older releases retype the first
   * block only.
   */
  readonly multiBlock: boolean;
  /**
   * Which requests see the reserved pages as free in __zone_watermark_ok(): `'harder'`
   * (v4.8, v6.0: ALLOC_HARDER or ALLOC_OOM) or `'reserves'` (6.3 on: any ALLOC_RESERVES
   * flag, __GFP_HIGH's ALLOC_MIN_RESERVE included).
   */
  readonly wmarkExempt: 'harder' | 'reserves';
  /**
   * What the watermark check subtracts for the other requests: `'reserved'`
   * (nr_reserved_highatomic, up to 6.12) or `'free'` (nr_free_highatomic, the free pages on
   * the MIGRATE_HIGHATOMIC lists; 6.13 on).
   */
  readonly wmarkSubtracts: 'reserved' | 'free';
  /**
   * rmqueue_buddy()'s last resort when __rmqueue() found nothing: `'none'` (v4.8, v6.0),
   * `'oom'` (v6.3: ALLOC_OOM may take from MIGRATE_HIGHATOMIC) or `'oom_nonblock'` (v6.17:
   * ALLOC_OOM or ALLOC_NON_BLOCK, so order-0 atomic requests too; "let GFP_ATOMIC order-0
   * allocs access highatomic reserves", 2025).
   */
  readonly lastResort: 'none' | 'oom' | 'oom_nonblock';
}

/** v4.8 and v6.0. */
export const HIGHATOMIC_V48: HighatomicProfile = {
  trigger: 'order_harder',
  limit: 'plus_block',
  multiBlock: false,
  wmarkExempt: 'harder',
  wmarkSubtracts: 'reserved',
  lastResort: 'none',
};

/** v6.3. */
export const HIGHATOMIC_V63: HighatomicProfile = {
  trigger: 'highatomic',
  limit: 'plus_block',
  multiBlock: false,
  wmarkExempt: 'reserves',
  wmarkSubtracts: 'reserved',
  lastResort: 'oom',
};

/** v6.17. */
export const HIGHATOMIC_V617: HighatomicProfile = {
  trigger: 'highatomic',
  limit: 'align',
  multiBlock: true,
  wmarkExempt: 'reserves',
  wmarkSubtracts: 'free',
  lastResort: 'oom_nonblock',
};
