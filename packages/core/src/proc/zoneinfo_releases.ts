/**
 * What each release's zoneinfo_show_print() (mm/vmstat.c) prints: which lines a zone block
 * has and in which order. The stat item names come from the release's /proc/vmstat table
 * (vmstat/releases.ts, `VMSTAT_NAMES[release]`): `.node` under `per-node stats`, `.zone`
 * then `.numa` in each populated zone.
 * @module
 */

import type { VmstatRelease } from '../vmstat/releases.js';

/** The shape of one release's /proc/zoneinfo zone block. */
export interface ZoneinfoLayout {
  /** `boost` after `pages free` (the watermark boost, 5.0+). */
  readonly boost: boolean;
  /** `node_scanned` after `high` (NR_PAGES_SCANNED of the node; 4.8 to 4.10). */
  readonly nodeScanned: boolean;
  /** `promo` after `high` (the promotion watermark, 6.12+). */
  readonly promo: boolean;
  /** `cma` after `managed` (zone_cma_pages(), 5.11+). */
  readonly cma: boolean;
  /**
   * Where the zone stat items go: `'after_sizes'` (4.8: right after `managed`, before
   * `protection`) or `'after_protection'` (4.12+).
   */
  readonly zoneStats: 'after_sizes' | 'after_protection';
  /**
   * Unpopulated zones: `'hidden'` (4.8: walk_zones_in_node() skips them) or `'short'`
   * (4.12+: printed up to `protection`).
   */
  readonly unpopulated: 'hidden' | 'short';
  /**
   * The per-CPU pageset fields: `'count_high_batch'` (`count: `, `high:  `, `batch: `) or
   * `'high_min_max'` (6.7+: five fields padded to `high_max: `).
   */
  readonly pagesets: 'count_high_batch' | 'high_min_max';
  /** `node_inactive_ratio` after `start_pfn` (4.8 and 4.9). */
  readonly nodeInactiveRatio: boolean;
  /**
   * What `node_unreclaimable` prints: `'pgdat_reclaimable'` (4.8 to 4.10:
   * `!pgdat_reclaimable()`, pages scanned not below six times the node's reclaimable LRU
   * pages) or `'kswapd_failures'` (4.11+: kswapd gave up on the node, MAX_RECLAIM_RETRIES
   * failed runs).
   */
  readonly unreclaimable: 'pgdat_reclaimable' | 'kswapd_failures';
  /**
   * The pcp `batch` and `high` at boot: `'v4.8'` (batch from at most 512 KiB, high = 6 ×
   * batch before batch is raised to at least 1: pageset_set_batch()) or `'v6'` (batch from at most 1 MiB, high from the low
   * watermark: zone_highsize()).
   */
  readonly pcp: 'v4.8' | 'v6';
}

/**
 * Linux 4.8 (confirmed from WindRiver-Labs/kernel-4.8.x, mm/vmstat.c at
 * 9fad37b664739d82b3c7d2520d626682e58ab655, top-level Makefile 4.8.18, a 4.8.y stable
 * tree; not compared with a 4.8.0 tree): no boost, promo or cma;
 * `node_scanned`; zone stats before `protection`; unpopulated zones not printed; pagesets
 * `count`/`high`/`batch`; `node_unreclaimable`, `start_pfn`, `node_inactive_ratio`.
 */
const V4_8: ZoneinfoLayout = {
  boost: false,
  nodeScanned: true,
  promo: false,
  cma: false,
  zoneStats: 'after_sizes',
  unpopulated: 'hidden',
  pagesets: 'count_high_batch',
  nodeInactiveRatio: true,
  unreclaimable: 'pgdat_reclaimable',
  pcp: 'v4.8',
};

/**
 * Linux 6.3 (confirmed from bqqmf/linux-6.3, mm/vmstat.c at
 * 69562ef1704fad7af87fac625d09552a85068540, a 6.3 tree whose only change to this function
 * is an extra field on the `Node` header line, left out here; the repository holds no
 * top-level Makefile): boost, cma, no promo; zone stats then NUMA events after
 * `protection`; unpopulated zones stop after `protection`; pagesets `count`/`high`/`batch`
 * with `vm stats threshold`; `node_unreclaimable`, `start_pfn`.
 */
const V6_3: ZoneinfoLayout = {
  boost: true,
  nodeScanned: false,
  promo: false,
  cma: true,
  zoneStats: 'after_protection',
  unpopulated: 'short',
  pagesets: 'count_high_batch',
  nodeInactiveRatio: false,
  unreclaimable: 'kswapd_failures',
  pcp: 'v6',
};

/**
 * Linux 6.0: the 6.3 layout. Not read from a 6.0 mm/vmstat.c: the 6.0.1 mmzone.h
 * (HHRhr/linux-6.0.1, include/linux/mmzone.h at 0f3467a6a960edb3c57f55311ca2582b092f1ab5)
 * has zone_cma_pages() and no promo_wmark_pages() (added with the `promo` line in 6.12),
 * and the pcp `high_min`/`high_max` fields came in 6.7.
 */
const V6_0: ZoneinfoLayout = V6_3;

/**
 * Linux 6.17: the layout of the 6.18 sample /proc/zoneinfo and of a recent mainline
 * mm/vmstat.c (torvalds/linux at 00c010e130e58301db2ea0cec1eadc931e1cb8cf, release not
 * confirmed from its Makefile); no 6.17 tree was read. `promo` came in 6.12 ("mm: print the
 * promo watermark in zoneinfo"), `high_min`/`high_max` in 6.7: boost, promo, cma; pagesets
 * with `high_min`/`high_max`.
 */
const V6_17: ZoneinfoLayout = {
  ...V6_3,
  promo: true,
  pagesets: 'high_min_max',
};

/** Each release's zoneinfo layout (selected by `Profile.vmstatNames`). */
export const ZONEINFO_LAYOUTS: Readonly<Record<VmstatRelease, ZoneinfoLayout>> = {
  'v4.8': V4_8,
  'v6.0': V6_0,
  'v6.3': V6_3,
  'v6.17': V6_17,
};
