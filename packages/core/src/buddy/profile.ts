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
   * Which order-0 requests at WMARK_MIN zone_watermark_fast() checks again against the raw
   * min watermark (`z->_watermark[WMARK_MIN]`) when the boosted one failed them:
   * `'gfp_atomic'` (5.9 to 6.2; v6.0: a __GFP_ATOMIC mask, for which mops checks the stand-in
   * {@link BuddyProfile.allocHarder} describes: __GFP_HIGH without __GFP_DIRECT_RECLAIM),
   * `'min_reserve'` (6.3 on: ALLOC_MIN_RESERVE, any __GFP_HIGH request) or `'none'` (v4.8,
   * which has no watermark boost).
   */
  readonly minWmarkIgnoresBoost: 'none' | 'gfp_atomic' | 'min_reserve';
  /**
   * Which requests gfp_to_alloc_flags() lets dig into the reserves without blocking.
   * `'gfp_atomic'` (4.4 to 6.2; v4.8, v6.0): ALLOC_HARDER, at every order, for a __GFP_ATOMIC
   * mask without __GFP_NOMEMALLOC (and for real-time tasks, which mops does not model). mops
   * has no __GFP_ATOMIC bit and stands in for it with __GFP_HIGH set and __GFP_DIRECT_RECLAIM
   * clear: GFP_ATOMIC is that, GFP_NOWAIT is not. ALLOC_HARDER is ALLOC_NON_BLOCK |
   * ALLOC_HIGHATOMIC in mops. `'non_block'` (6.3 on, "mm/page_alloc: explicitly define how
   * __GFP_HIGH non-blocking allocations accesses reserves"): ALLOC_NON_BLOCK for any mask
   * without __GFP_DIRECT_RECLAIM or __GFP_NOMEMALLOC, GFP_NOWAIT included, and
   * ALLOC_HIGHATOMIC with it above order 0.
   */
  readonly allocHarder: 'gfp_atomic' | 'non_block';
  /**
   * zone_watermark_fast()'s order-0 shortcut: `'free'` (4.7 to 5.9; v4.8) passes when
   * NR_FREE_PAGES (less free CMA pages, none in mops) is above the mark plus the lowmem
   * reserve, the high-atomic reserve not subtracted (a corner case the kernel calls harmless:
   * rmqueue() then finds no page if only the reserve is free); `'usable'` (5.10 on) subtracts
   * __zone_watermark_unusable_free() first, which makes the shortcut agree with
   * __zone_watermark_ok().
   */
  readonly watermarkFastOrder0: 'free' | 'usable';
  /**
   * Where mm_page_alloc_zone_locked fires. `'rmqueue'` (v4.8): at the end of every
   * __rmqueue() call, fallbacks included, with a NULL page when it found none, and after
   * buffered_rmqueue() took a block from the MIGRATE_HIGHATOMIC lists; the migratetype is
   * the request's, and percpu_refill, which is no field, prints `order == 0`. `'smallest'`
   * (6.0 on, "mm/page_alloc: fix tracepoint mm_page_alloc_zone_locked()"): in
   * __rmqueue_smallest() after expand() for each block it takes, with the migratetype of the
   * list taken from and the percpu_refill field `pcp_allowed_order(order) && migratetype <
   * MIGRATE_PCPTYPES`; a block a fallback takes without it (v6.17's __rmqueue_steal() and
   * whole-block claim) is not traced.
   */
  readonly zoneLockedTrace: 'rmqueue' | 'smallest';
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
   * mops, given as {@link BuddyProfile.allocHarder} `'gfp_atomic'` says) or `'highatomic'`
   * (6.3 on: `alloc_flags & ALLOC_HIGHATOMIC`, which gfp_to_alloc_flags() sets only above
   * order 0).
   */
  readonly trigger: 'order_harder' | 'highatomic';
  /**
   * reserve_highatomic_pageblock() leaves a block alone when move_freepages_block() refuses
   * it, one not wholly inside the zone (6.10 on; v6.17). Before, it counts the block in
   * nr_reserved_highatomic and retypes it whatever move_freepages_block() did, which for a
   * block reaching past the zone's end is to move nothing (it returns 0).
   */
  readonly reserveNeedsMove: boolean;
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
  reserveNeedsMove: false,
  limit: 'plus_block',
  multiBlock: false,
  wmarkExempt: 'harder',
  wmarkSubtracts: 'reserved',
  lastResort: 'none',
};

/** v6.3. */
export const HIGHATOMIC_V63: HighatomicProfile = {
  trigger: 'highatomic',
  reserveNeedsMove: false,
  limit: 'plus_block',
  multiBlock: false,
  wmarkExempt: 'reserves',
  wmarkSubtracts: 'reserved',
  lastResort: 'oom',
};

/** v6.17. */
export const HIGHATOMIC_V617: HighatomicProfile = {
  trigger: 'highatomic',
  reserveNeedsMove: true,
  limit: 'align',
  multiBlock: true,
  wmarkExempt: 'reserves',
  wmarkSubtracts: 'free',
  lastResort: 'oom_nonblock',
};
