/**
 * The names each release prints in /proc/vmstat, in its order: mm/vmstat.c `vmstat_text[]`
 * and the enums it mirrors (include/linux/mmzone.h `zone_stat_item`, `numa_stat_item`,
 * `node_stat_item`; mm/vmstat.c or include/linux/vmstat.h `writeback_stat_item` /
 * `vm_stat_item`; include/linux/vm_event_item.h `vm_event_item`), then the deprecated
 * counters vmstat_show() appends after the last item (5.8+: `nr_unstable 0`).
 *
 * The `#ifdef`s are resolved for the machine mops models, the configuration of the 6.18
 * sample in /work/shared/reference/proc-samples/vmstat (x86-64):
 * - on: ZONE_DMA, ZONE_DMA32, ZONE_DEVICE (the `_device` event columns, 6.1+), NUMA (one
 *   node), ZSMALLOC, SWAP, NUMA_BALANCING, MIGRATION, COMPACTION, HUGETLB_PAGE,
 *   TRANSPARENT_HUGEPAGE with HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD, MEMORY_BALLOON with
 *   BALLOON_COMPACTION, KSM, ZSWAP, IOMMU_SUPPORT, VM_EVENT_COUNTERS, X86;
 * - off: HIGHMEM, CMA (its events; `nr_free_cma` is unconditional), UNACCEPTED_MEMORY,
 *   SHADOW_CALL_STACK, DEBUG_TLBFLUSH, DEBUG_VM_VMACACHE, PER_VMA_LOCK_STATS,
 *   DEBUG_STACK_USAGE.
 *
 * Sources: v4.8 from the 4.8 vmstat_text and enums (a 4.8.x tree whose later KAISER backport
 * `nr_overhead` is not 4.8's); v6.0 from the 5.19/6.0 vmstat_text, the 6.0.1 mmzone.h enums
 * and the merge dates of NR_SECONDARY_PAGETABLE, PGPROMOTE_CANDIDATE and the `_device`
 * columns (all 6.1); v6.3 from a 6.3 tree; v6.17 from the 6.18 sample less the two items
 * 6.18 added (`pgpromote_candidate_nrl`, `nr_kernel_file_pages`).
 * @module
 */

/** The releases with a /proc/vmstat name table. */
export type VmstatRelease = 'v4.8' | 'v6.0' | 'v6.3' | 'v6.17';

/** One release's /proc/vmstat names, section by section, in print order. */
export interface VmstatNames {
  /** `zone_stat_item` (before 4.14 the NUMA counters are zone items too). */
  readonly zone: readonly string[];
  /** `numa_stat_item` (4.14+, CONFIG_NUMA). */
  readonly numa: readonly string[];
  /** `node_stat_item`. */
  readonly node: readonly string[];
  /** `writeback_stat_item` / `vm_stat_item`: the dirty thresholds (+ memmap, 6.11+). */
  readonly vm: readonly string[];
  /** `vm_event_item`. */
  readonly events: readonly string[];
  /** Deprecated counters printed after the last item, always 0. */
  readonly trailer: readonly string[];
}

/** The words of a whitespace-separated list, in order. */
const words = (s: string): readonly string[] => s.trim().split(/\s+/);

const NUMA = words('numa_hit numa_miss numa_foreign numa_interleave numa_local numa_other');
const DIRTY = words('nr_dirty_threshold nr_dirty_background_threshold');
const LRU = words('nr_inactive_anon nr_active_anon nr_inactive_file nr_active_file nr_unevictable');
const UNEVICTABLE = words(`
  unevictable_pgs_culled unevictable_pgs_scanned unevictable_pgs_rescued
  unevictable_pgs_mlocked unevictable_pgs_munlocked unevictable_pgs_cleared
  unevictable_pgs_stranded`);
const NUMA_BALANCING = words(`
  numa_pte_updates numa_huge_pte_updates numa_hint_faults numa_hint_faults_local
  numa_pages_migrated`);
const COMPACT_4_8 = words(`
  compact_migrate_scanned compact_free_scanned compact_isolated compact_stall compact_fail
  compact_success compact_daemon_wake`);
const COMPACT = [
  ...COMPACT_4_8,
  ...words('compact_daemon_migrate_scanned compact_daemon_free_scanned'),
];
const BALLOON = words('balloon_inflate balloon_deflate balloon_migrate');
/** `TEXTS_FOR_ZONES(xx)`: one name per zone, `_device` only from 6.1. */
const perZone = (xx: string, device: boolean): string[] =>
  ['dma', 'dma32', 'normal', 'movable', ...(device ? ['device'] : [])].map((z) => `${xx}_${z}`);
const zoneEvents = (device: boolean): string[] => [
  ...words('pgpgin pgpgout pswpin pswpout'),
  ...perZone('pgalloc', device),
  ...perZone('allocstall', device),
  ...perZone('pgskip', device),
];

/** Linux 4.8: node-based LRU, NUMA counters still zone items, no trailing nr_unstable. */
const V4_8: VmstatNames = {
  zone: words(`
    nr_free_pages nr_zone_inactive_anon nr_zone_active_anon nr_zone_inactive_file
    nr_zone_active_file nr_zone_unevictable nr_zone_write_pending nr_mlock
    nr_slab_reclaimable nr_slab_unreclaimable nr_page_table_pages nr_kernel_stack nr_bounce
    nr_zspages ${NUMA.join(' ')} nr_free_cma`),
  numa: [],
  node: [
    ...LRU,
    ...words(`
      nr_isolated_anon nr_isolated_file nr_pages_scanned workingset_refault
      workingset_activate workingset_nodereclaim nr_anon_pages nr_mapped nr_file_pages nr_dirty
      nr_writeback nr_writeback_temp nr_shmem nr_shmem_hugepages nr_shmem_pmdmapped
      nr_anon_transparent_hugepages nr_unstable nr_vmscan_write nr_vmscan_immediate_reclaim
      nr_dirtied nr_written`),
  ],
  vm: DIRTY,
  events: [
    ...zoneEvents(false),
    ...words(`
      pgfree pgactivate pgdeactivate pgfault pgmajfault pglazyfreed pgrefill pgsteal_kswapd
      pgsteal_direct pgscan_kswapd pgscan_direct pgscan_direct_throttle zone_reclaim_failed
      pginodesteal slabs_scanned kswapd_inodesteal kswapd_low_wmark_hit_quickly
      kswapd_high_wmark_hit_quickly pageoutrun pgrotated drop_pagecache drop_slab`),
    ...NUMA_BALANCING,
    ...words('pgmigrate_success pgmigrate_fail'),
    ...COMPACT_4_8,
    ...words('htlb_buddy_alloc_success htlb_buddy_alloc_fail'),
    ...UNEVICTABLE,
    ...words(`
      thp_fault_alloc thp_fault_fallback thp_collapse_alloc thp_collapse_alloc_failed
      thp_file_alloc thp_file_mapped thp_split_page thp_split_page_failed
      thp_deferred_split_page thp_split_pmd thp_zero_page_alloc thp_zero_page_alloc_failed`),
    ...BALLOON,
  ],
  trailer: [],
};

/** The node items of 6.0 up to nr_page_table_pages (6.3 inserts nr_sec_page_table_pages). */
const NODE_6_0 = [
  ...LRU,
  ...words(`
    nr_slab_reclaimable nr_slab_unreclaimable nr_isolated_anon nr_isolated_file
    workingset_nodes workingset_refault_anon workingset_refault_file workingset_activate_anon
    workingset_activate_file workingset_restore_anon workingset_restore_file
    workingset_nodereclaim nr_anon_pages nr_mapped nr_file_pages nr_dirty nr_writeback
    nr_writeback_temp nr_shmem nr_shmem_hugepages nr_shmem_pmdmapped nr_file_hugepages
    nr_file_pmdmapped nr_anon_transparent_hugepages nr_vmscan_write
    nr_vmscan_immediate_reclaim nr_dirtied nr_written nr_throttled_written
    nr_kernel_misc_reclaimable nr_foll_pin_acquired nr_foll_pin_released nr_kernel_stack
    nr_page_table_pages`),
];

/** The 6.x events from numa_pte_updates to the unevictable ones (6.0–6.17 alike). */
const EVENTS_6_MIGRATION = [
  ...NUMA_BALANCING,
  ...words('pgmigrate_success pgmigrate_fail thp_migration_success thp_migration_fail'),
  'thp_migration_split',
  ...COMPACT,
  ...words('htlb_buddy_alloc_success htlb_buddy_alloc_fail'),
  ...UNEVICTABLE,
];

/** The 6.0–6.3 events from zone_reclaim_failed on. */
const EVENTS_6_0_TAIL = [
  ...words(`
    zone_reclaim_failed pginodesteal slabs_scanned kswapd_inodesteal
    kswapd_low_wmark_hit_quickly kswapd_high_wmark_hit_quickly pageoutrun pgrotated
    drop_pagecache drop_slab oom_kill`),
  ...EVENTS_6_MIGRATION,
  ...words(`
    thp_fault_alloc thp_fault_fallback thp_fault_fallback_charge thp_collapse_alloc
    thp_collapse_alloc_failed thp_file_alloc thp_file_fallback thp_file_fallback_charge
    thp_file_mapped thp_split_page thp_split_page_failed thp_deferred_split_page thp_split_pmd
    thp_scan_exceed_none_pte thp_scan_exceed_swap_pte thp_scan_exceed_share_pte thp_split_pud
    thp_zero_page_alloc thp_zero_page_alloc_failed thp_swpout thp_swpout_fallback`),
  ...BALLOON,
  ...words(`
    swap_ra swap_ra_hit ksm_swpin_copy cow_ksm zswpin zswpout direct_map_level2_splits
    direct_map_level3_splits`),
];

/** Linux 6.0: pgdemote_kswapd/direct are events, no khugepaged split, no `_device` columns. */
const V6_0: VmstatNames = {
  zone: words(`
    nr_free_pages nr_zone_inactive_anon nr_zone_active_anon nr_zone_inactive_file
    nr_zone_active_file nr_zone_unevictable nr_zone_write_pending nr_mlock nr_bounce
    nr_zspages nr_free_cma`),
  numa: NUMA,
  node: [...NODE_6_0, ...words('nr_swapcached pgpromote_success')],
  vm: DIRTY,
  events: [
    ...zoneEvents(false),
    ...words(`
      pgfree pgactivate pgdeactivate pglazyfree pgfault pgmajfault pglazyfreed pgrefill pgreuse
      pgsteal_kswapd pgsteal_direct pgdemote_kswapd pgdemote_direct pgscan_kswapd
      pgscan_direct pgscan_direct_throttle pgscan_anon pgscan_file pgsteal_anon
      pgsteal_file`),
    ...EVENTS_6_0_TAIL,
  ],
  trailer: ['nr_unstable'],
};

/** Linux 6.3: + nr_sec_page_table_pages, pgpromote_candidate, khugepaged columns, `_device`. */
const V6_3: VmstatNames = {
  ...V6_0,
  node: [
    ...NODE_6_0,
    ...words('nr_sec_page_table_pages nr_swapcached pgpromote_success pgpromote_candidate'),
  ],
  events: [
    ...zoneEvents(true),
    ...words(`
      pgfree pgactivate pgdeactivate pglazyfree pgfault pgmajfault pglazyfreed pgrefill pgreuse
      pgsteal_kswapd pgsteal_direct pgsteal_khugepaged pgdemote_kswapd pgdemote_direct
      pgdemote_khugepaged pgscan_kswapd pgscan_direct pgscan_khugepaged
      pgscan_direct_throttle pgscan_anon pgscan_file pgsteal_anon pgsteal_file`),
    ...EVENTS_6_0_TAIL,
  ],
};

/**
 * Linux 6.17: no nr_bounce or nr_writeback_temp, pgdemote_* node items (+ proactive), the
 * memmap counters after the thresholds.
 */
const V6_17: VmstatNames = {
  zone: words(`
    nr_free_pages nr_free_pages_blocks nr_zone_inactive_anon nr_zone_active_anon
    nr_zone_inactive_file nr_zone_active_file nr_zone_unevictable nr_zone_write_pending
    nr_mlock nr_zspages nr_free_cma`),
  numa: NUMA,
  node: [
    ...NODE_6_0.filter((n) => n !== 'nr_writeback_temp'),
    ...words(`
      nr_sec_page_table_pages nr_iommu_pages nr_swapcached pgpromote_success
      pgpromote_candidate pgdemote_kswapd pgdemote_direct pgdemote_khugepaged
      pgdemote_proactive nr_hugetlb nr_balloon_pages`),
  ],
  vm: [...DIRTY, ...words('nr_memmap_pages nr_memmap_boot_pages')],
  events: [
    ...zoneEvents(true),
    ...words(`
      pgfree pgactivate pgdeactivate pglazyfree pgfault pgmajfault pglazyfreed pgrefill pgreuse
      pgsteal_kswapd pgsteal_direct pgsteal_khugepaged pgsteal_proactive pgscan_kswapd
      pgscan_direct pgscan_khugepaged pgscan_proactive pgscan_direct_throttle pgscan_anon
      pgscan_file pgsteal_anon pgsteal_file zone_reclaim_success zone_reclaim_failed
      pginodesteal slabs_scanned kswapd_inodesteal kswapd_low_wmark_hit_quickly
      kswapd_high_wmark_hit_quickly pageoutrun pgrotated drop_pagecache drop_slab oom_kill`),
    ...EVENTS_6_MIGRATION,
    ...words(`
      thp_fault_alloc thp_fault_fallback thp_fault_fallback_charge thp_collapse_alloc
      thp_collapse_alloc_failed thp_file_alloc thp_file_fallback thp_file_fallback_charge
      thp_file_mapped thp_split_page thp_split_page_failed thp_deferred_split_page
      thp_underused_split_page thp_split_pmd thp_scan_exceed_none_pte thp_scan_exceed_swap_pte
      thp_scan_exceed_share_pte thp_split_pud thp_zero_page_alloc thp_zero_page_alloc_failed
      thp_swpout thp_swpout_fallback`),
    ...BALLOON,
    ...words(`
      swap_ra swap_ra_hit swpin_zero swpout_zero ksm_swpin_copy cow_ksm zswpin zswpout zswpwb
      direct_map_level2_splits direct_map_level3_splits direct_map_level2_collapses
      direct_map_level3_collapses`),
  ],
  trailer: ['nr_unstable'],
};

/** Each release's /proc/vmstat names (selected by `Profile.vmstatNames`). */
export const VMSTAT_NAMES: Readonly<Record<VmstatRelease, VmstatNames>> = {
  'v4.8': V4_8,
  'v6.0': V6_0,
  'v6.3': V6_3,
  'v6.17': V6_17,
};

/**
 * Older names of counters mops keeps under a later name: 4.8's workingset_refault and
 * workingset_activate counted file pages only (anon pages got their own counters later).
 */
export const VMSTAT_ALIASES: Readonly<Record<string, string>> = {
  workingset_refault: 'workingset_refault_file',
  workingset_activate: 'workingset_activate_file',
};

/**
 * Items a release prints that mops keeps no counter for (no bounce buffers, NFS unstable
 * pages, FUSE temporary writeback or per-node scan count): printed as 0.
 */
export const VMSTAT_UNMODELLED: ReadonlySet<string> = new Set([
  'nr_bounce',
  'nr_pages_scanned',
  'nr_writeback_temp',
  'nr_unstable',
]);

/** A release's /proc/vmstat names, flattened in print order. */
export function vmstatNameList(release: VmstatRelease): string[] {
  const t = VMSTAT_NAMES[release];
  return [...t.zone, ...t.numa, ...t.node, ...t.vm, ...t.events, ...t.trailer];
}
