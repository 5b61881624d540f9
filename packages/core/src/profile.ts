/**
 * Protocol profiles (§0.2 and §5.2): each is one kernel release's
 * behaviour, held in one object. Code asks the profile; it never compares version strings.
 * @module
 */

import {
  type BuddyProfile,
  HIGHATOMIC_V48,
  HIGHATOMIC_V63,
  HIGHATOMIC_V617,
} from './buddy/profile.js';
import type { CompactionProfile } from './compaction/profile.js';
import { MopsError, valueKind } from './errors.js';
import {
  POINT_NAMES_V48,
  POINT_NAMES_V60,
  POINT_NAMES_V63,
  POINT_NAMES_V617,
  type PointNames,
} from './migrate/point_names.js';
import { MR_NAMES } from './migrate/types.js';
import type { FormatProfile } from './profile_formats.js';
import type { TraceFilterProfile } from './trace/filter_profile.js';

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
export interface Profile extends BuddyProfile, FormatProfile {
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
  /**
   * Free-time flag rules besides PG_slab: `'v4.8'` (PG_swapcache also makes a bad page),
   * `'6.x'`, `'v6.17'` (PG_mlocked is cleared and counted in unevictable_pgs_cleared
   * instead of making a bad page).
   */
  readonly freeFlagRules: 'v4.8' | '6.x' | 'v6.17';
  /** PG_slab at free makes a bad page (≤ v6.3; slab became a page type later). */
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
  /**
   * The zone index wake_all_kswapds() hands wakeup_kswapd() (and kswapd, wakeup_kcompactd()):
   * `'classzone'` (v4.8: ac_classzone_idx(), the preferred zone, the highest populated zone
   * the request may use) or `'highest'` (5.8 on: ac->highest_zoneidx, gfp_zone()).
   */
  readonly kswapdWakeZone: 'classzone' | 'highest';
  /**
   * wakeup_kswapd() on a balanced, unboosted node wakes kcompactd itself for the order when
   * the allocation cannot direct reclaim (4.17 on); v4.8 only returns.
   */
  readonly balancedWakesKcompactd: boolean;
  /** Merging two order ≥ pageblock_order blocks of different types rewrites the buddy's type. */
  readonly mergeRewritesBuddyType: boolean;
  /** Folio helpers exist (`folio_ref_freeze`); v4.8 only has `page_ref_freeze`. */
  readonly hasFolios: boolean;
  /**
   * The names of the VM's scheduling points in isolation, putback and migration: the
   * kernel function each step calls in this release (page helpers up to v6.0, folio
   * helpers from v6.3). The speculative gets are named by `isolationGet` and `pageCacheGet`.
   */
  readonly pointNames: PointNames;
  /** The speculative get used by isolation (spec §1.5, T18). */
  readonly isolationGet: 'get_page_unless_zero' | 'folio_get_nontail_page';
  /**
   * The speculative get of a lockless page-cache lookup (find_get_entry, filemap_get_entry;
   * spec §9b): `page_cache_get_speculative` (v4.8), `folio_try_get_rcu` (v6.0, v6.3),
   * `folio_try_get` (v6.17).
   */
  readonly pageCacheGet: 'page_cache_get_speculative' | 'folio_try_get_rcu' | 'folio_try_get';
  /**
   * Page-cache migration compares the count with the expected one before freezing it (spec
   * §9b): v4.8 (migrate_page_move_mapping, under the tree lock) and v6.17 (__migrate_folio,
   * a bail-out before copying); v6.0 and v6.3 freeze straight away.
   */
  readonly migrateMappingPrecheck: boolean;
  /**
   * What a fault on a migration entry does (spec §9c): `'wait_on_page_locked'` (v4.8: take a
   * reference under the PTE lock, sleep on the page lock, then put it) or
   * `'migration_entry_wait_on_locked'` (5.17 on: queue under the PTE lock, no reference).
   */
  readonly migrationEntryWait: 'wait_on_page_locked' | 'migration_entry_wait_on_locked';
  /**
   * Who an unlock of a contended page lock wakes (mm/filemap.c). `'v4.8'`: wake_up_page()
   * wakes every wait_on_page_locked() sleeper (queued at the head) and the first lock_page()
   * sleeper (exclusive, queued at the tail); a woken lock_page() retries and may lose to a
   * newcomer, then queues at the tail again. `'v5.9'` (v6.0 on): folio_wake_bit() walks the
   * queue in order, waking non-exclusive sleepers up to and including the first exclusive
   * one; a lock_page() sleeper that lost the lock sysctl_page_lock_unfairness (5) times is
   * handed it by the unlock instead (WQ_FLAG_CUSTOM).
   */
  readonly pageLockWake: 'v4.8' | 'v5.9';

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
  /**
   * A movable page reaching putback or the move step without the isolated flag is a
   * VM_WARN_ON_ONCE_PAGE and the path goes on (v6.17 putback_movable_ops_page,
   * migrate_movable_ops_page); v4.8–v6.3 VM_BUG_ON it.
   */
  readonly isolatedCheckWarns: boolean;
  /**
   * putback_movable_page() asserts the isolated flag again once it holds the page lock
   * (`VM_BUG_ON_PAGE(!PageIsolated(page))`, v4.8; the checks went in the 5.x cleanups), so a
   * flag cleared while the VM slept on the lock is a BUG rather than a warning.
   */
  readonly putbackRechecksIsolated: boolean;
  /**
   * isolate_movable_page's one-time warning when the driver's isolate_page set the isolated
   * flag itself: one call site, so once per machine whichever driver did it.
   */
  readonly isolateFlagWarning: string;
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
  /**
   * `enum migrate_mode` has MIGRATE_SYNC_NO_COPY (4.14 to 6.10: v6.0, v6.3): migrate_pages()
   * takes it as a sync mode.
   */
  readonly hasSyncNoCopy: boolean;
  /** Pages failing after 10 passes of -EAGAIN count in pgmigrate_fail (all but v6.0). */
  readonly countRetryFailures: boolean;
  /** On -ENOMEM pgmigrate_fail also counts the pages still waiting for a retry (v6.3+). */
  readonly enomemCountsRetries: boolean;
  /**
   * The 6.x tracepoint formats (compaction-by-profile T15): `mm_migrate_pages_start` exists,
   * `mm_migrate_pages` has THP fields, `mm_compaction_migratepages` counts the pages
   * migrate_pages() failed, and `mm_compaction_try_to_compact_pages` prints the gfp flags by
   * name, and the kcompactd wake events call their zone field `highest_zoneidx` (5.8).
   * v4.8: no start event, no THP fields, nr_failed from migrate_pages()' return value,
   * the gfp mask in hex, `classzone_idx`.
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
   * Lockdep annotates a process-context `read_lock()` of a `rwlock_t` as a recursive read
   * (v4.8). From 5.10 on (read_lock_is_recursive()) only interrupt-context readers are, so a
   * recursive `read_lock()` in process context is reported as possible recursive locking.
   */
  readonly lockdepReadLockRecursive: boolean;
  /**
   * Lockdep report titles in the bracketed form of v4.8, e.g. `[ INFO: possible circular
   * locking dependency detected ]` and `[ BUG: bad unlock balance detected! ]`, between rule
   * lines of that era's lengths. Since commit 9fb80128ea8f (2017, "lockdep: Use "WARNING"
   * tag on lockdep splats") every title is a `WARNING: ...` line (v6.0 on here).
   */
  readonly lockdepBracketedTitles: boolean;
  /**
   * might_sleep()'s report in atomic context as 5.16 on prints it (commit 8d713b699e84,
   * "sched: Make might_sleep() output less confusing"): after the in_atomic() line, which
   * names `non_block` since non_block_start() (2019), `preempt_count: %x, expected: %x`
   * and, in a preemptible kernel, `RCU nest depth: %d, expected: %u` (6.x here). v4.8's
   * has the in_atomic() line without `non_block` and neither of the others.
   */
  readonly mightSleepExpected: boolean;
  /**
   * process_one_work()'s report of a work item that comes back holding locks or in atomic
   * context as 6.9 on prints it (`BUG: workqueue leaked atomic, lock or RCU: comm[pid]`,
   * with the preempt count and the lock and RCU depths before and after; "workqueue:
   * Implement BH workqueues"); before, `BUG: workqueue leaked lock or atomic:
   * comm/preempt/pid` and `last function:`.
   */
  readonly workqueueLeakRcu: boolean;
  /**
   * A mutex waiter robbed by a newcomer after its wakeup asks for the mutex to be handed to
   * it at the next unlock (MUTEX_FLAG_HANDOFF, 4.10 on). v4.8's counter-based mutex has no
   * handoff: a waiter may be robbed again and again.
   */
  readonly mutexHandoff: boolean;
  /**
   * The writer at the head of a queued rwlock's (`rwlock_t`) wait queue sets `_QW_WAITING`
   * at once, even while another writer holds the lock (4.15 on: queued_write_lock_slowpath()
   * after "locking/qrwlock: Prevent slowpath writers getting held up by fastpath"). In v4.8
   * it first waits for the write holder to leave and sets `_QW_WAITING` only when it runs
   * and finds none, so between a `write_unlock()` and that moment the lock word is zero and
   * any fast-path `write_lock()`, `write_trylock()`, `read_lock()` or `read_trylock()` gets
   * in ahead of the queue.
   */
  readonly qrwlockWaitingAtOnce: boolean;
  /**
   * The selftest compaction_test.c the release ships (`compactionTest`): `'v4.8'` maps 1 MiB
   * chunks, writes 100000 to nr_hugepages and reports with printf() (a skipped run exits 0);
   * `'v6.0'` (v6.0, v6.3) the same with 100 MiB chunks, a skipped run exiting KSFT_SKIP;
   * `'v6.17'` asks for half of 80 % of MemFree in huge pages (6.15) and reports in TAP
   * (6.8), with the messages and the zero check of 6.10.
   */
  readonly compactionSelftest: 'v4.8' | 'v6.0' | 'v6.17';
  /** Compaction differences (compaction-by-profile T2-T14). */
  readonly compaction: CompactionProfile;
  /**
   * How tracefs reads event filters (kernel/trace/trace_events_filter.c): the empty filter,
   * the `.ustring` and `.function` suffixes, `CPUS{…}` and subsystem filters.
   */
  readonly traceFilter: TraceFilterProfile;
}

const base = {
  freeResetsMapping: 'tag',
  freeClearsPageType: false,
  slabFlagIsBad: true,
  freeFlagRules: '6.x',
  fallback: 'v6.0',
  watermarkBoost: 'wake_any',
  hasDefragMode: false,
  kswapdWakeZone: 'highest',
  balancedWakesKcompactd: true,
  mergeRewritesBuddyType: false,
  hasFolios: true,
  pointNames: POINT_NAMES_V60,
  isolationGet: 'get_page_unless_zero',
  pageCacheGet: 'folio_try_get_rcu',
  migrateMappingPrecheck: false,
  migrationEntryWait: 'migration_entry_wait_on_locked',
  pageLockWake: 'v5.9',
  movableMarker: 'mops',
  isolateReturnsInt: false,
  slabGuard: false,
  ownerMayRelease: true,
  coreDetectsRelease: true,
  isolatedCheckWarns: false,
  putbackRechecksIsolated: false,
  isolateFlagWarning: 'WARN_ON_ONCE(PageIsolated(page))',
  driverClearsSrc: true,
  migrateAlgo: 'unmap_and_move',
  allocBeforeShortcut: false,
  shortcutLocks: false,
  putbackPermanentInside: false,
  movableCountedIsolated: false,
  syncLightNeedsUptodate: false,
  hasSyncNoCopy: true,
  countRetryFailures: true,
  enomemCountsRetries: false,
  tracepointsV6: true,
  memoryFailureKeepsSrc: true,
  migrateReasons: MR_NAMES,
  migrateTraceNrSplit: false,
  kmemPfnHex: true,
  ftraceLayout: '6.x',
  nullPointer: 'zeros',
  dumpPageLayout: 'v6.0',
  folioAsserts: true,
  gfpNames: 'v6.0',
  movableZoneMinClamp: false,
  minFreeKbytesMax: 262144,
  allocNofragment: true,
  moveFreepagesTail: true,
  moveFreepagesWholeBlock: false,
  minWmarkIgnoresBoost: 'min_reserve',
  allocHarder: 'non_block',
  watermarkFastOrder0: 'usable',
  zoneLockedTrace: 'smallest',
  mergeableTypes: 'pcp',
  lockdepReadLockRecursive: false,
  lockdepBracketedTitles: false,
  mightSleepExpected: true,
  workqueueLeakRcu: false,
  mutexHandoff: true,
  qrwlockWaitingAtOnce: true,
  compactionSelftest: 'v6.0',
  highatomic: HIGHATOMIC_V63,
  bootFreeToTail: true,
  compaction: {
    freeStore: 'split_list',
    countSkippedAsScanned: false,
    compoundSkipByOrder: false,
    skipCheckAtZoneStart: false,
    setsSkipWhenIgnoring: true,
    scannersV48: false,
    lastMigratedIsIterationStart: true,
    capture: 'not_movable_small',
    captureAfterDrain: false,
    syncCachedFollowsAsync: true,
    compactMemoryClearsSkip: false,
    wholeZoneFlag: true,
    proactive: 'v6.0',
    successName: 'success',
    onMigrateFailure: 'skip_order_block',
    stallCountsDeferred: true,
    compactMemoryOnlyOne: false,
    compactNodeChecksSignal: false,
    hasSyncFull: true,
    initialCompactUnmovable: true,
    noretryGivesUpOnSkipped: true,
    directCompactClearsMemalloc: false,
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
    isolateFreeMovesFreepages: false,
    compactionNeedsFs: false,
    kcompactdIgnoresSkip: false,
    asyncSource: 'direct_async',
    skipPersistentBlocks: true,
    daemonCountsProactive: false,
    proactiveWriteTraced: false,
    extfragIndexWidth: 2,
    pagetypeinfoCap: 100000,
  },
  traceFilter: {
    emptyFilter: 'errno',
    ustring: true,
    functionSuffix: false,
    cpus: false,
    subsystem: 'per_event',
  },
} as const;

/** The four profiles, frozen: a profile is a constant of its kernel era. */
export const PROFILES: Readonly<Record<ProfileName, Profile>> = deepFreeze({
  'v4.8': {
    ...base,
    name: 'v4.8',
    traceFilter: {
      emptyFilter: 'meaningless',
      ustring: false,
      functionSuffix: false,
      cpus: false,
      subsystem: 'dry_run',
    },
    fallback: 'v4.8',
    watermarkBoost: 'none',
    kswapdWakeZone: 'classzone',
    balancedWakesKcompactd: false,
    hasFolios: false,
    pointNames: POINT_NAMES_V48,
    pageCacheGet: 'page_cache_get_speculative',
    migrateMappingPrecheck: true,
    migrationEntryWait: 'wait_on_page_locked',
    pageLockWake: 'v4.8',
    movableMarker: 'address_space',
    allocBeforeShortcut: true,
    shortcutLocks: true,
    putbackPermanentInside: true,
    putbackRechecksIsolated: true,
    movableCountedIsolated: true,
    hasSyncNoCopy: false,
    freeFlagRules: 'v4.8',
    tracepointsV6: false,
    memoryFailureKeepsSrc: false,
    migrateReasons: MR_NAMES.slice(0, 6).concat('cma'),
    kmemPfnHex: false,
    ftraceLayout: '4.x',
    nullPointer: '(null)',
    dumpPageLayout: 'v4.8',
    folioAsserts: false,
    gfpNames: 'v4.8',
    vmstatNames: 'v4.8',
    minFreeKbytesMax: 65536,
    allocNofragment: false,
    moveFreepagesTail: false,
    minWmarkIgnoresBoost: 'none',
    allocHarder: 'gfp_atomic',
    watermarkFastOrder0: 'free',
    zoneLockedTrace: 'rmqueue',
    mergeableTypes: 'not_isolate',
    lockdepReadLockRecursive: true,
    lockdepBracketedTitles: true,
    mightSleepExpected: false,
    mutexHandoff: false,
    qrwlockWaitingAtOnce: false,
    compactionSelftest: 'v4.8',
    highatomic: HIGHATOMIC_V48,
    bootFreeToTail: false,
    compaction: {
      ...base.compaction,
      setsSkipWhenIgnoring: false,
      scannersV48: true,
      capture: 'none',
      syncCachedFollowsAsync: false,
      compactMemoryClearsSkip: true,
      wholeZoneFlag: false,
      proactive: 'none',
      successName: 'partial',
      stallCountsDeferred: false,
      hasSyncFull: false,
      initialCompactUnmovable: false,
      noretryGivesUpOnSkipped: false,
      directCompactClearsMemalloc: true,
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
    vmstatNames: 'v6.0',
    isolateReturnsInt: true,
    countRetryFailures: false,
    minWmarkIgnoresBoost: 'gfp_atomic',
    allocHarder: 'gfp_atomic',
    highatomic: HIGHATOMIC_V48,
    compaction: {
      ...base.compaction,
      fastMigrateHonoursFinish: false,
      fastIsolateAround: 'split',
      captureAfterDrain: true,
    },
  },
  'v6.3': {
    ...base,
    name: 'v6.3',
    traceFilter: { ...base.traceFilter, functionSuffix: true },
    vmstatNames: 'v6.3',
    dumpPageLayout: 'v6.3',
    pointNames: POINT_NAMES_V63,
    isolationGet: 'folio_get_nontail_page',
    isolateFlagWarning: 'WARN_ON_ONCE(folio_test_isolated(folio))',
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
    traceFilter: { ...base.traceFilter, functionSuffix: true, cpus: true },
    dumpPageLayout: 'v6.17',
    freeResetsMapping: 'anon',
    freeClearsPageType: true,
    slabFlagIsBad: false,
    freeFlagRules: 'v6.17',
    fallback: 'v6.17',
    watermarkBoost: 'wake_kswapd',
    hasDefragMode: true,
    mergeRewritesBuddyType: true,
    pointNames: POINT_NAMES_V617,
    isolationGet: 'folio_get_nontail_page',
    pageCacheGet: 'folio_try_get',
    migrateMappingPrecheck: true,
    movableMarker: 'page_type',
    ownerMayRelease: false,
    coreDetectsRelease: false,
    isolatedCheckWarns: true,
    isolateFlagWarning: 'VM_WARN_ON_ONCE_PAGE(PageMovableOpsIsolated(page), page)',
    gfpNames: 'v6.15',
    compactionSelftest: 'v6.17',
    workqueueLeakRcu: true,
    driverClearsSrc: false,
    migrateAlgo: 'batched',
    syncLightNeedsUptodate: true,
    hasSyncNoCopy: false,
    enomemCountsRetries: true,
    movableZoneMinClamp: true,
    migrateReasons: MR_NAMES.concat('damon'),
    migrateTraceNrSplit: true,
    vmstatNames: 'v6.17',
    highatomic: HIGHATOMIC_V617,
    moveFreepagesWholeBlock: true,
    compaction: {
      ...base.compaction,
      freeStore: 'per_order',
      countSkippedAsScanned: true,
      compoundSkipByOrder: true,
      isolateFreeMovesFreepages: true,
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
  // Own keys only: 'toString' or '__proto__' name no profile.
  const p =
    typeof name === 'string' && Object.hasOwn(PROFILES, name)
      ? PROFILES[name as ProfileName]
      : undefined;
  if (!p)
    throw new MopsError(
      'E_CONFIG',
      `profile: ${valueKind(name)} is not a profile; choose one of ${PROFILE_NAMES.join(', ')}`,
      'profile',
    );
  return p;
}
