/**
 * The compaction rows of a protocol profile (compaction-by-profile.md): every way
 * mm/compaction.c differs between the releases mops emulates. Part of `Profile`.
 * @module
 */

/** The compaction rows of a profile (compaction-by-profile.md). */
export interface CompactionProfile {
  /**
   * Where isolated free pages wait: `'split_list'` (v4.8–v6.3: one list of order-0 pages,
   * refcount 1, handed out from its head) or `'per_order'` (v6.17: whole blocks on
   * per-order lists, split in compaction_alloc).
   */
  readonly freeStore: 'split_list' | 'per_order';
  /** Skipped free and compound pages count as scanned (v6.17). */
  readonly countSkippedAsScanned: boolean;
  /**
   * The migrate scanner skips a compound page only when skip_isolation_on_order() says so
   * (v6.17: its order is at least the target order, for a target, or pageblock order); a
   * smaller one is examined as any other page. Up to v6.3 every compound page is skipped.
   */
  readonly compoundSkipByOrder: boolean;
  /** The migrate-side skip hint is also tested at the zone start, not only at aligned pfns (v6.17). */
  readonly skipCheckAtZoneStart: boolean;
  /** Skip hints are set even when they are ignored (6.x); v4.8 sets none then. */
  readonly setsSkipWhenIgnoring: boolean;
  /**
   * The v4.8 scanners (before 5.x): the migrate scanner stops at exactly 32 isolated pages
   * (no rescan of a block migrated from, no contention exception); both scanners mark a
   * block skip only when they isolated nothing in it, record the first pfn they scanned in
   * it as the cached position, and test the skip hint for every block they enter; the
   * async free scanner visits every pfn (6.x: a stride of up to 32).
   */
  readonly scannersV48: boolean;
  /**
   * After an isolation, last_migrated_pfn is where the iteration started (up to v6.3);
   * v6.17 takes the pageblock of the last pfn scanned (migrate_pfn - 1).
   */
  readonly lastMigratedIsIterationStart: boolean;
  /**
   * Direct compaction captures a block its own frees bring to the requested order
   * (compaction_capture): `'none'` (v4.8), `'not_movable_small'` (v6.0/v6.3: never a block
   * below pageblock order in a MOVABLE pageblock), `'movable_request'` (v6.17: such a block
   * only for a movable request).
   */
  readonly capture: 'none' | 'not_movable_small' | 'movable_request';
  /**
   * Where compact_zone() looks for a captured page: `true` (v6.0) after check_drain, so an
   * iteration whose migrate scan isolated nothing (ISOLATE_NONE jumps to check_drain) ends
   * the run too; `false` (v6.3 on) before check_drain, after a migrate_pages() call only.
   */
  readonly captureAfterDrain: boolean;
  /**
   * update_cached (5.1 on): an async compaction that started with both cached migrate
   * positions equal copies the async one to the sync one while its scans isolate nothing.
   * v4.8 moves the sync position only in sync compaction (update_pageblock_skip).
   */
  readonly syncCachedFollowsAsync: boolean;
  /** compact_memory clears every skip bit and the cached positions first (v4.8). */
  readonly compactMemoryClearsSkip: boolean;
  /**
   * compact_zone() takes a preset whole_zone (compact_memory, SYNC_FULL, proactive runs) and
   * otherwise sets it when the migrate scanner starts at or below compact_init_migrate_pfn
   * (6.x); v4.8 always starts from the cached positions and sets it when the migrate
   * scanner starts at the zone start.
   */
  readonly wholeZoneFlag: boolean;
  /** Proactive compaction and its thresholds: none (v4.8), `'v6.0'`, `'v6.17'`. */
  readonly proactive: 'none' | 'v6.0' | 'v6.17';
  /** The tracepoint status string of success: 'partial' (v4.8) or 'success'. */
  readonly successName: 'partial' | 'success';
  /**
   * After migrate_pages fails: `'skip_order_block'` (v4.8/v6.0, direct ASYNC skips the rest
   * of the cc->order block), `'finish_direct'` (v6.3: direct, mode < SYNC rescans the rest
   * of the pageblock), `'finish_any'` (v6.17: any compactor honouring skip hints).
   */
  readonly onMigrateFailure: 'skip_order_block' | 'finish_direct' | 'finish_any';
  /** Direct compaction that found every zone deferred counts a stall and a failure (6.x). */
  readonly stallCountsDeferred: boolean;
  /** compact_memory accepts only "1" (v6.17); earlier any write triggers it. */
  readonly compactMemoryOnlyOne: boolean;
  /**
   * compact_node() checks for a fatal signal before each zone and returns -EINTR (v6.17);
   * earlier kernels start every zone and let compaction back out (COMPACT_CONTENDED).
   */
  readonly compactNodeChecksSignal: boolean;
  /** COMPACT_PRIO_SYNC_FULL exists (6.x). */
  readonly hasSyncFull: boolean;
  /**
   * The allocator's slow path makes its first direct compaction (ASYNC, before reclaim) for
   * every non-movable order > 0 as well as for costly orders (4.11 on: 6.x); v4.8 only for
   * costly orders, so a small order's first compaction there runs at SYNC_LIGHT.
   */
  readonly initialCompactUnmovable: boolean;
  /**
   * A costly __GFP_NORETRY allocation (a THP fault) gives up after a first compaction that
   * came back SKIPPED or DEFERRED (6.x); v4.8 gives up only on DEFERRED.
   */
  readonly noretryGivesUpOnSkipped: boolean;
  /**
   * __alloc_pages_direct_compact() clears PF_MEMALLOC after its compaction, even for a task
   * that had it before (v4.8's `current->flags &= ~PF_MEMALLOC`, fixed in 4.11); 6.x
   * restores the task's own bit (memalloc_noreclaim_restore()).
   */
  readonly directCompactClearsMemalloc: boolean;
  /** An isolated free block counts its size as scanned (6.x) rather than 1 (v4.8). */
  readonly freeScannedCountsBlock: boolean;
  /**
   * isolate_freepages_block() jumps over a compound page only when it ends inside the
   * range scanned (v6.17; a 6.7 tree still jumps always); one that crosses the end counts 1
   * and the scan walks on through its tails. Earlier releases always jump by its order.
   */
  readonly freeCompoundJumpWithinBlock: boolean;
  /**
   * The free-list searches fast_find_migrateblock() and fast_isolate_freepages() exist
   * (v5.1 onwards: 6.x); v4.8 scans linearly only.
   */
  readonly fastSearch: boolean;
  /**
   * fast_find_migrateblock() marks the block it picks skip (v6.0, v6.3), which makes
   * isolate_migratepages_block() give that block up at its first pfn; v6.17 relies on the
   * skip test alone (the 6.5 re-application of "fix set skip in fast_find_migrateblock").
   */
  readonly fastMigrateSetsSkip: boolean;
  /** fast_find_migrateblock() keeps the current block while it must be finished (v6.3+). */
  readonly fastMigrateHonoursFinish: boolean;
  /**
   * fast_isolate_around() after the free-list search isolated a block: `'split'` (v6.0:
   * scan the pageblock before and after that block; mark it skip if still short of
   * targets), `'whole_short'` (the 6.2 fix, v6.3: scan the whole pageblock; mark it skip if
   * still short), `'whole_scanned'` (v6.17: scan the whole pageblock; mark it skip when the
   * scan reached its end, unless skip hints are not to be set).
   */
  readonly fastIsolateAround: 'split' | 'whole_short' | 'whole_scanned';
  /**
   * v6.17's fast_isolate_freepages() also fires mm_compaction_fast_isolate_freepages and
   * drops the min_pfn fallback block of direct compaction when it is not a suitable
   * migration target.
   */
  readonly fastIsolateTraced: boolean;
  /**
   * compaction_suitable() by era (compaction-by-profile T9):
   * - `'v4.8'`: "already satisfiable" at the low watermark whatever the request's flags, the
   *   order-0 gate at low + compact_gap with those flags, the fragmentation index consulted
   *   for every order;
   * - `'6.0'` (v6.0/v6.3): the request's watermark, the gate at (costly order ? low : min) +
   *   compact_gap with ALLOC_CMA, the index for costly orders only;
   * - `'6.17'`: the gate at the request's watermark + compact_gap (+ low - min for costly
   *   orders), and first, for async costly orders without ALLOC_CMA, the request's
   *   watermark + compact_gap without CMA pages (6.15 on; low + compact_gap before).
   *
   * mm_compaction_suitable fires on every check, order -1 included, up to 6.3; v6.17 checks
   * in compaction_suit_allocation_order() and fires only when compaction_suitable() itself
   * runs: not for order -1, not for an allocation that would already succeed, not when the
   * async costly-order rule skipped the zone.
   */
  readonly suitability: 'v4.8' | '6.0' | '6.17';
  /**
   * The contention model before 5.1 (v4.8): __compact_finished() tests contention and fatal
   * signals first; compaction_alloc() isolates no more free pages once contended; a fatal
   * signal stops isolate_migratepages_block()'s scan, which then ends as usual (tracepoint
   * included) and the caller aborts on cc->contended. 6.x tests them last, and the scan
   * returns -EINTR at once (label fatal_pending: no tracepoint, no skip hint).
   */
  readonly contendedFirst: boolean;
  /**
   * __compact_finished() of a direct request first wants the zone watermark at the order
   * (v4.8); 6.x instead goes on to the end of the current pageblock.
   */
  readonly finishedNeedsWatermark: boolean;
  /**
   * Direct compaction and kcompactd count a zone as done (defer reset, stop the zone loop)
   * when its low watermark is met for the order after compacting (v4.8); 6.x when the
   * result is COMPACT_SUCCESS.
   */
  readonly successByLowWatermark: boolean;
  /** kcompactd counts compact_daemon_migrate_scanned / _free_scanned (6.x). */
  readonly daemonScanCounters: boolean;
  /** __isolate_free_page() checks the low watermark without ALLOC_CMA (v4.8; 6.x: min with it). */
  readonly isolateFreeLowWmark: boolean;
  /**
   * __isolate_free_page() turns a pageblock MOVABLE with move_freepages_block(), moving the
   * block's other free pages to the MOVABLE lists and leaving a block that reaches outside
   * the zone alone (v6.17); before, set_pageblock_migratetype() alone.
   */
  readonly isolateFreeMovesFreepages: boolean;
  /** gfp_compaction_allowed() also needs __GFP_FS (v4.8). */
  readonly compactionNeedsFs: boolean;
  /** kcompactd compacts ignoring the skip hints (v4.8). */
  readonly kcompactdIgnoresSkip: boolean;
  /**
   * suitable_migration_source() in ASYNC mode: `'any_async'` (v4.8: every async compactor
   * only takes MOVABLE/CMA blocks) or `'direct_async'` (6.x: async direct compaction only,
   * by the request's migratetype).
   */
  readonly asyncSource: 'any_async' | 'direct_async';
  /**
   * pageblock_skip_persistent() (4.15 on: 6.x): a block whose first page belongs to a
   * compound page of pageblock order or more, head or tail, is no migration source and keeps
   * its skip hint through a reset. v4.8 scans such a block like any other.
   */
  readonly skipPersistentBlocks: boolean;
  /** A proactiveness write fires mm_compaction_wakeup_kcompactd with order -1 (v6.3+). */
  readonly proactiveWriteTraced: boolean;
  /** Proactive runs count compact_daemon_migrate_scanned / _free_scanned (v6.3+). */
  readonly daemonCountsProactive: boolean;
  /** Width of the integer part in the extfrag_index view: `%2d` (6.x) or `%d` (v4.8). */
  readonly extfragIndexWidth: number;
  /**
   * /proc/pagetypeinfo stops counting a free list at this many blocks and prints
   * `>100000` (6.x); 0: counts uncapped (v4.8). Compaction-by-profile T11.
   */
  readonly pagetypeinfoCap: number;
}
