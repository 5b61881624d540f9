/**
 * Protocol profiles (DESIGN decision 4, spec §0.2 and §5.2): each is one kernel release's
 * behaviour, held in one object. Code asks the profile; it never compares version strings.
 * @module
 */

import { MopsError } from './errors.js';
import { MR_NAMES } from './migrate/types.js';

/** The releases mops emulates. */
export type ProfileName = 'v4.8' | 'v6.0' | 'v6.3' | 'v6.17';

/** Every profile name, oldest first. */
export const PROFILE_NAMES: readonly ProfileName[] = ['v4.8', 'v6.0', 'v6.3', 'v6.17'];

/** The default profile: the folio era, whose rules the seed threads discuss. */
export const DEFAULT_PROFILE: ProfileName = 'v6.3';

/**
 * The differences between releases that the memory layer needs (page primitives, freeing,
 * the buddy allocator). The migration layer extends this object with its own rows.
 */
export interface Profile {
  /** Release name. */
  readonly name: ProfileName;
  /**
   * free_pages_prepare and `mapping`: `'tag'` resets it when either tag bit (ANON or
   * MOVABLE) is set (v4.8–v6.3); `'anon'` only when the ANON bit is set (v6.17). Any other
   * non-NULL mapping at free makes a bad page.
   */
  readonly freeResetsMapping: 'tag' | 'anon';
  /** free_pages_prepare resets any page type (v6.17); older releases call a typed page bad. */
  readonly freeClearsPageType: boolean;
  /** PG_slab at free makes a bad page (≤ v6.3; slab became a page type later). */
  /**
   * Free-time flag rules besides PG_slab: `'v4.8'` (PG_swapcache also makes a bad page),
   * `'6.x'`, `'v6.17'` (PG_mlocked is cleared and counted in unevictable_pgs_cleared
   * instead of making a bad page).
   */
  readonly freeFlagRules: 'v4.8' | '6.x' | 'v6.17';
  readonly slabFlagIsBad: boolean;
  /**
   * __rmqueue_fallback style (compaction-by-profile T16): `'v4.8'` largest order first, steal
   * when free ≥ half a block; `'v6.0'` largest first with ALLOC_NOFRAGMENT and the switch to
   * the smallest order for MOVABLE, claim when free + alike ≥ half a block; `'v6.17'` claim
   * (largest first) then steal (smallest first, one page, block keeps its type).
   */
  readonly fallback: 'v4.8' | 'v6.0' | 'v6.17';
  /**
   * Watermark boosting (compaction-by-profile T9, T16): `'none'` (v4.8: no boost, no
   * vm.watermark_boost_factor); otherwise a fallback that claims part of a pageblock boosts
   * the zone's watermarks and, for an ALLOC_KSWAPD allocation, marks the zone
   * ZONE_BOOSTED_WATERMARK, which rmqueue() turns into a kswapd wakeup after any allocation
   * from the zone (`'wake_any'`, up to 6.4) or only after an ALLOC_KSWAPD one
   * (`'wake_kswapd'`, 6.5 on).
   */
  readonly watermarkBoost: 'none' | 'wake_any' | 'wake_kswapd';
  /**
   * vm.defrag_mode exists (6.15 on; v6.17): when set, allocations keep ALLOC_NOFRAGMENT
   * until reclaim and compaction have failed, and kcompactd targets the high watermark in
   * whole free pageblocks (compaction-by-profile T9, T12; spec §8.5 step 5).
   */
  readonly hasDefragMode: boolean;
  /** Merging two order ≥ pageblock_order blocks of different types rewrites the buddy's type. */
  readonly mergeRewritesBuddyType: boolean;
  /** Folio helpers exist (`folio_ref_freeze`); v4.8 only has `page_ref_freeze`. */
  readonly hasFolios: boolean;
  /** The speculative get used by isolation (spec §1.5, T18). */
  readonly isolationGet: 'get_page_unless_zero' | 'folio_get_nontail_page';

  // ---- movable_ops protocol (spec §5.2 and §0.2) ----

  /**
   * How a page is marked movable: `'address_space'` (v4.8: `mapping` = address_space | 2,
   * callbacks in its a_ops), `'mops'` (v6.0/v6.3: `mapping` = movable_operations | 2),
   * `'page_type'` (v6.17: page type Offline/Zsmalloc + PG_movable_ops; ops by type).
   */
  readonly movableMarker: 'address_space' | 'mops' | 'page_type';
  /** isolate_movable_page returns int 0 / -EBUSY (v6.0) rather than bool. */
  readonly isolateReturnsInt: boolean;
  /** The slab false-positive guard in isolation (v6.3 only; spec §3.1 step 2). */
  readonly slabGuard: boolean;
  /** An owner may release a page the VM has isolated, via __ClearPageMovable (v4.8–v6.3). */
  readonly ownerMayRelease: boolean;
  /**
   * The core detects an owner release (`!PageMovable` under the lock) in putback and in the
   * move step, and then skips the driver (v4.8–v6.3). v6.17 has no such check.
   */
  readonly coreDetectsRelease: boolean;
  /** On success the driver must __ClearPageMovable(src) (v4.8–v6.3). */
  readonly driverClearsSrc: boolean;
  /** migrate_pages algorithm: `'unmap_and_move'` (v4.8, v6.0) or `'batched'` (v6.3+). */
  readonly migrateAlgo: 'unmap_and_move' | 'batched';
  /** The target is allocated before the refcount==1 shortcut (v4.8). */
  readonly allocBeforeShortcut: boolean;
  /** The shortcut takes a sleeping lock_page and clears PG_isolated if released (v4.8). */
  readonly shortcutLocks: boolean;
  /** A permanent failure is put back inside migrate_pages (v4.8). */
  readonly putbackPermanentInside: boolean;
  /**
   * Isolated movable_ops pages count in nr_isolated_file (v4.8): compaction's
   * acct_isolated() adds them (they are not swap-backed), migrate_pages() and
   * putback_movable_pages() subtract them, and too_many_isolated() throttles on them. 6.x
   * counts LRU pages only.
   */
  readonly movableCountedIsolated: boolean;
  /** SYNC_LIGHT waits on the page lock only for uptodate pages (v6.17; arrived in 6.5). */
  readonly syncLightNeedsUptodate: boolean;
  /** Pages failing after 10 passes of -EAGAIN count in pgmigrate_fail (all but v6.0). */
  readonly countRetryFailures: boolean;
  /** On -ENOMEM pgmigrate_fail also counts the pages still waiting for a retry (v6.3+). */
  readonly enomemCountsRetries: boolean;
  /**
   * The 6.x tracepoint formats (compaction-by-profile T15): `mm_migrate_pages_start` exists,
   * `mm_migrate_pages` has THP fields, `mm_compaction_migratepages` counts the pages
   * migrate_pages() failed, and `mm_compaction_try_to_compact_pages` prints the gfp flags by
   * name. v4.8: no start event, no THP fields, nr_failed from migrate_pages()' return value,
   * the gfp mask in hex.
   */
  readonly tracepointsV6: boolean;
  /**
   * A page migrated for MR_MEMORY_FAILURE keeps its isolation reference: the caller
   * (page_handle_poison) releases it (v6.0+; v4.8 drops it and then poisons the page).
   */
  readonly memoryFailureKeepsSrc: boolean;
  /** `enum migrate_reason` names as the migrate tracepoints print them, by value. */
  readonly migrateReasons: readonly string[];
  /**
   * ZONE_MOVABLE is treated as highmem (v6.17): left out of the pages sharing
   * min_free_kbytes, its min watermark is managed/1024 clamped to [32, 128].
   */
  readonly movableZoneMinClamp: boolean;
  /** The upper bound of the default min_free_kbytes (v4.8: 65536; 6.x: 262144). */
  readonly minFreeKbytesMax: number;
  /** The fast path asks for ALLOC_NOFRAGMENT when the preferred zone is Normal (6.x). */
  readonly allocNofragment: boolean;
  /**
   * Which free blocks of different migrate types merge across pageblocks: `'not_isolate'`
   * (v4.8: any two but ISOLATE) or `'pcp'` (6.x migratetype_is_mergeable: the per-CPU types).
   */
  readonly mergeableTypes: 'not_isolate' | 'pcp';
  /** Compaction differences (compaction-by-profile T2-T14). */
  readonly compaction: CompactionProfile;
}

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
  /** compact_memory clears every skip bit and the cached positions first (v4.8). */
  readonly compactMemoryClearsSkip: boolean;
  /** Whether compact_zone presets whole_zone for compact_memory (6.x) or derives it (v4.8). */
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
  /** An isolated free block counts its size as scanned (6.x) rather than 1 (v4.8). */
  readonly freeScannedCountsBlock: boolean;
  /**
   * isolate_freepages_block() jumps over a compound page only when it ends inside the
   * range scanned (6.7 on: v6.17); one that crosses the end counts 1 and the scan walks on
   * through its tails. Earlier releases always jump by its order.
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
  /** Proactive runs count compact_daemon_migrate_scanned / _free_scanned (v6.17). */
  readonly daemonCountsProactive: boolean;
  /** Width of the integer part in the extfrag_index view: `%2d` (6.x) or `%d` (v4.8). */
  readonly extfragIndexWidth: number;
  /**
   * /proc/pagetypeinfo stops counting a free list at this many blocks and prints
   * `>100000` (6.x); 0: counts uncapped (v4.8). Compaction-by-profile T11.
   */
  readonly pagetypeinfoCap: number;
}

const base = {
  freeResetsMapping: 'tag',
  freeClearsPageType: false,
  slabFlagIsBad: true,
  freeFlagRules: '6.x',
  fallback: 'v6.0',
  watermarkBoost: 'wake_any',
  hasDefragMode: false,
  mergeRewritesBuddyType: false,
  hasFolios: true,
  isolationGet: 'get_page_unless_zero',
  movableMarker: 'mops',
  isolateReturnsInt: false,
  slabGuard: false,
  ownerMayRelease: true,
  coreDetectsRelease: true,
  driverClearsSrc: true,
  migrateAlgo: 'unmap_and_move',
  allocBeforeShortcut: false,
  shortcutLocks: false,
  putbackPermanentInside: false,
  movableCountedIsolated: false,
  syncLightNeedsUptodate: false,
  countRetryFailures: true,
  enomemCountsRetries: false,
  tracepointsV6: true,
  memoryFailureKeepsSrc: true,
  migrateReasons: MR_NAMES,
  movableZoneMinClamp: false,
  minFreeKbytesMax: 262144,
  allocNofragment: true,
  mergeableTypes: 'pcp',
  compaction: {
    freeStore: 'split_list',
    countSkippedAsScanned: false,
    skipCheckAtZoneStart: false,
    setsSkipWhenIgnoring: true,
    scannersV48: false,
    lastMigratedIsIterationStart: true,
    capture: 'not_movable_small',
    compactMemoryClearsSkip: false,
    wholeZoneFlag: true,
    proactive: 'v6.0',
    successName: 'success',
    onMigrateFailure: 'skip_order_block',
    stallCountsDeferred: true,
    compactMemoryOnlyOne: false,
    compactNodeChecksSignal: false,
    hasSyncFull: true,
    freeScannedCountsBlock: true,
    freeCompoundJumpWithinBlock: false,
    fastSearch: true,
    fastMigrateSetsSkip: true,
    fastMigrateHonoursFinish: true,
    fastIsolateAround: 'whole_short',
    fastIsolateTraced: false,
    suitability: '6.0',
    contendedFirst: false,
    finishedNeedsWatermark: false,
    successByLowWatermark: false,
    daemonScanCounters: true,
    isolateFreeLowWmark: false,
    compactionNeedsFs: false,
    kcompactdIgnoresSkip: false,
    asyncSource: 'direct_async',
    skipPersistentBlocks: true,
    daemonCountsProactive: false,
    proactiveWriteTraced: false,
    extfragIndexWidth: 2,
    pagetypeinfoCap: 100000,
  },
} as const;

/** The four profiles, frozen: a profile is a constant of its kernel era. */
export const PROFILES: Readonly<Record<ProfileName, Profile>> = deepFreeze({
  'v4.8': {
    ...base,
    name: 'v4.8',
    fallback: 'v4.8',
    watermarkBoost: 'none',
    hasFolios: false,
    movableMarker: 'address_space',
    allocBeforeShortcut: true,
    shortcutLocks: true,
    putbackPermanentInside: true,
    movableCountedIsolated: true,
    freeFlagRules: 'v4.8',
    tracepointsV6: false,
    memoryFailureKeepsSrc: false,
    migrateReasons: MR_NAMES.slice(0, 6).concat('cma'),
    minFreeKbytesMax: 65536,
    allocNofragment: false,
    mergeableTypes: 'not_isolate',
    compaction: {
      ...base.compaction,
      setsSkipWhenIgnoring: false,
      scannersV48: true,
      capture: 'none',
      compactMemoryClearsSkip: true,
      wholeZoneFlag: false,
      proactive: 'none',
      successName: 'partial',
      stallCountsDeferred: false,
      hasSyncFull: false,
      freeScannedCountsBlock: false,
      fastSearch: false,
      suitability: 'v4.8',
      contendedFirst: true,
      finishedNeedsWatermark: true,
      successByLowWatermark: true,
      daemonScanCounters: false,
      isolateFreeLowWmark: true,
      compactionNeedsFs: true,
      kcompactdIgnoresSkip: true,
      asyncSource: 'any_async',
      skipPersistentBlocks: false,
      extfragIndexWidth: 0,
      pagetypeinfoCap: 0,
    },
  },
  'v6.0': {
    ...base,
    name: 'v6.0',
    isolateReturnsInt: true,
    countRetryFailures: false,
    compaction: { ...base.compaction, fastMigrateHonoursFinish: false, fastIsolateAround: 'split' },
  },
  'v6.3': {
    ...base,
    name: 'v6.3',
    isolationGet: 'folio_get_nontail_page',
    slabGuard: true,
    migrateAlgo: 'batched',
    enomemCountsRetries: true,
    compaction: {
      ...base.compaction,
      onMigrateFailure: 'finish_direct',
      daemonCountsProactive: true,
      proactiveWriteTraced: true,
    },
  },
  'v6.17': {
    ...base,
    name: 'v6.17',
    freeResetsMapping: 'anon',
    freeClearsPageType: true,
    slabFlagIsBad: false,
    freeFlagRules: 'v6.17',
    fallback: 'v6.17',
    watermarkBoost: 'wake_kswapd',
    hasDefragMode: true,
    mergeRewritesBuddyType: true,
    isolationGet: 'folio_get_nontail_page',
    movableMarker: 'page_type',
    ownerMayRelease: false,
    coreDetectsRelease: false,
    driverClearsSrc: false,
    migrateAlgo: 'batched',
    syncLightNeedsUptodate: true,
    enomemCountsRetries: true,
    movableZoneMinClamp: true,
    migrateReasons: MR_NAMES.concat('damon'),
    compaction: {
      ...base.compaction,
      freeStore: 'per_order',
      countSkippedAsScanned: true,
      freeCompoundJumpWithinBlock: true,
      skipCheckAtZoneStart: true,
      proactive: 'v6.17',
      onMigrateFailure: 'finish_any',
      compactMemoryOnlyOne: true,
      suitability: '6.17',
      lastMigratedIsIterationStart: false,
      capture: 'movable_request',
      compactNodeChecksSignal: true,
      fastMigrateSetsSkip: false,
      fastIsolateAround: 'whole_scanned',
      fastIsolateTraced: true,
      daemonCountsProactive: true,
      proactiveWriteTraced: true,
    },
  },
});

function deepFreeze<T extends object>(o: T): T {
  for (const v of Object.values(o)) if (typeof v === 'object' && v !== null) deepFreeze(v);
  return Object.freeze(o);
}

/** The profile called `name`; a MopsError naming the choices otherwise. */
export function getProfile(name: string): Profile {
  const p = PROFILES[name as ProfileName];
  if (!p)
    throw new MopsError(
      'E_CONFIG',
      `profile: unknown profile '${name}'; choose one of ${PROFILE_NAMES.join(', ')}`,
      'profile',
    );
  return p;
}
