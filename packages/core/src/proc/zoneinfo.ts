/**
 * `/proc/zoneinfo` (mm/vmstat.c zoneinfo_show_print()) in each release's layout.
 * @module
 */

import type { Machine } from '../machine.js';
import type { Memory } from '../memory/mem.js';
import type { Zone } from '../memory/zone.js';
import { WMARK } from '../memory/zone.js';
import { VMSTAT_ALIASES, VMSTAT_NAMES, VMSTAT_UNMODELLED } from '../vmstat/releases.js';
import { NS, ZS } from '../vmstat/vmstat.js';
import { ls, rs, ul } from './format.js';
import { zoneStatValue } from './vmstat.js';
import { ZONEINFO_LAYOUTS, type ZoneinfoLayout } from './zoneinfo_releases.js';

/** CPUs the pagesets are shown for (mops reports a two-CPU machine). */
export const ZONEINFO_CPUS = 2;
/** MIN_PERCPU_PAGELIST_HIGH_FRACTION: the largest pcp high is managed / 8. */
const MIN_PERCPU_PAGELIST_HIGH_FRACTION = 8;

/** fls(): position of the highest set bit, 1-based; 0 for 0. */
function fls(x: number): number {
  return x === 0 ? 0 : 32 - Math.clz32(x);
}

/** Per-CPU pageset parameters of a zone, as the kernel sets them at boot. */
export interface PagesetParams {
  /** `pcp->batch` (zone_batchsize(), at least 1). */
  readonly batch: number;
  /** `pcp->high_min`: the low watermark split over the node's CPUs, at least 4 batches. */
  readonly highMin: number;
  /** `pcp->high_max`: managed / 8 split over the CPUs, at least 4 batches. */
  readonly highMax: number;
  /** `stat_threshold` (calculate_normal_threshold()). */
  readonly statThreshold: number;
}

/**
 * zone_batchsize(): a quarter of managed / 1024 capped at `maxBytes`, then 2^n - 1 — 0 for a
 * zone under 8192 managed pages (the callers decide what 0 becomes).
 */
function zoneBatchsize(managed: number, maxBytes: number): number {
  let batch = Math.min(managed >> 10, maxBytes / 4096);
  batch = Math.floor(batch / 4);
  if (batch < 1) batch = 1;
  const b = batch + Math.floor(batch / 2);
  return 2 ** (fls(b) - 1) - 1;
}

/**
 * zone_batchsize(), zone_highsize() and calculate_normal_threshold() for `zone` on a
 * machine with `cpus` CPUs in the node.
 * @see mm/page_alloc.c zone_set_pageset_high_and_batch(), mm/vmstat.c
 */
export function pagesetParams(zone: Zone, cpus = ZONEINFO_CPUS): PagesetParams {
  const managed = zone.managedPages;
  // zone_set_pageset_high_and_batch(): new_batch = max(1, zone_batchsize(zone)).
  const batch = Math.max(1, zoneBatchsize(managed, 1024 * 1024));
  const highsize = (total: number) => Math.max(Math.floor(total / cpus), batch << 2);
  const highMin = highsize(zone.watermark[WMARK.LOW]);
  const highMax = highsize(Math.floor(managed / MIN_PERCPU_PAGELIST_HIGH_FRACTION));
  return { batch, highMin, highMax, statThreshold: statThreshold(zone, cpus) };
}

/** calculate_normal_threshold(): 2 × fls(cpus) × (1 + fls(managed / 128 MiB)), at most 125. */
function statThreshold(zone: Zone, cpus: number): number {
  const mem = zone.managedPages >> (27 - 12);
  return Math.min(125, 2 * fls(cpus) * (1 + fls(mem)));
}

/**
 * The pageset lines of one CPU in `layout`. mops has no per-CPU page lists, so `count` is
 * 0. 6.7+: `high` is 0 (per_cpu_pages_init() zeroes the pageset and pageset_update() sets
 * only `batch`, `high_min` and `high_max`; `high` first moves when a page is freed to the
 * per-CPU list, which never happens in mops). Before 6.7 pageset_update() sets `high`
 * itself: zone_highsize() (the low watermark split over the CPUs, 5.14+), or 6 × batch
 * with the 512 KiB batch cap of 4.8 (pageset_set_batch(); a zone whose batch works out
 * to 0 shows high 0 and batch 1).
 */
function pagesetLines(zone: Zone, cpu: number, layout: ZoneinfoLayout): string {
  const p = pagesetParams(zone);
  if (layout.pagesets === 'high_min_max')
    return (
      `\n    cpu: ${cpu}` +
      `\n              count:    0` +
      `\n              high:     0` +
      `\n              batch:    ${p.batch}` +
      `\n              high_min: ${p.highMin}` +
      `\n              high_max: ${p.highMax}`
    );
  let batch = p.batch;
  let high = p.highMin;
  if (layout.pcp === 'v4.8') {
    // pageset_set_batch(p, batch): pageset_update(pcp, 6 * batch, max(1UL, 1 * batch)), so
    // a zone whose batch is 0 (the DMA zone) shows high 0, batch 1.
    const raw = zoneBatchsize(zone.managedPages, 512 * 1024);
    batch = Math.max(1, raw);
    high = 6 * raw;
  }
  return (
    `\n    cpu: ${cpu}` +
    `\n              count: 0` +
    `\n              high:  ${high}` +
    `\n              batch: ${batch}`
  );
}

/**
 * The value of a stat item `name` (a release's name) for `zone`, or for the node when
 * `zone` is undefined. A zone item mops keeps per node (4.8's nr_slab_reclaimable,
 * nr_kernel_stack, …) is shown whole in `home` (the highest populated zone, where kernel
 * allocations are served first) and as 0 in the others, so the zones add up to the node's
 * count as /proc/vmstat prints it. Items mops keeps no counter for are 0.
 */
function statValue(mem: Memory, name: string, zone?: Zone, home?: Zone): number {
  const key = VMSTAT_ALIASES[name] ?? name;
  if (zone && ZS[key] !== undefined) return zoneStatValue(zone, ZS[key]);
  if (NS[key] !== undefined) return zone && zone !== home ? 0 : mem.vmstat.node[NS[key]];
  if (VMSTAT_UNMODELLED.has(key)) return 0;
  throw new Error(`zoneinfo: no counter for '${name}'`);
}

/**
 * 4.8's `!pgdat_reclaimable()`: 1 unless the pages scanned for reclaim (NR_PAGES_SCANNED,
 * 0: mops does not reclaim) are fewer than six times the node's file LRU pages, active,
 * inactive and isolated (anon pages count only with swap, which mops does not have). mops
 * keeps no file LRU, but counts the movable pages compaction isolates in nr_isolated_file,
 * as 4.8 does: the node reads reclaimable while compaction holds pages isolated.
 * @see mm/vmscan.c pgdat_reclaimable(), pgdat_reclaimable_pages()
 */
function pgdatUnreclaimable(mem: Memory): number {
  const reclaimable = ['nr_active_file', 'nr_inactive_file', 'nr_isolated_file'].reduce(
    (n, name) => n + statValue(mem, name),
    0,
  );
  return 0 < 6 * reclaimable ? 0 : 1;
}

/**
 * /proc/zoneinfo in the layout of the profile's release (see zoneinfo_releases.ts): every
 * zone slot of node 0 (4.8: only the populated ones). A populated zone gets the full block:
 * the node stats under the first populated zone (the release's node items), free pages,
 * the watermarks with the boost included, sizes, the lowmem protection and the release's
 * zone stat items (4.8: stats before `protection`), the pagesets of {@link ZONEINFO_CPUS}
 * CPUs with the stat threshold, `node_unreclaimable` and `start_pfn` (4.8: and
 * `node_inactive_ratio`). An unpopulated zone stops after `protection` (6.x; 4.8 leaves it
 * out). The v6.17 layout is that of the 6.18 sample less the two per-node items 6.18 added
 * (`pgpromote_candidate_nrl`, `nr_kernel_file_pages`). The v6.0 layout is taken to be
 * v6.3's: it was not read from a 6.0 mm/vmstat.c (see zoneinfo_releases.ts).
 *
 * `batch`, `high` (before 6.7), `high_min`, `high_max` and the stat threshold are computed
 * from the zone's size as the kernel does (see {@link pagesetParams}); `count` is 0 and,
 * 6.7+, so is `high` (see pagesetLines()). Values mops does not model print as on a
 * machine without them: `node_scanned` (4.8) and `node_inactive_ratio` (4.8) are 0, mops
 * having no reclaim, and so is 6.x's `node_unreclaimable` (kswapd never fails); 4.8's
 * `node_unreclaimable` is `!pgdat_reclaimable()` of the node's counters (see
 * pgdatUnreclaimable()): 1, but while compaction holds pages isolated; `cma`
 * (zone_cma_pages()) is 0: mops has no CMA.
 * @see mm/vmstat.c zoneinfo_show_print()
 */
export function zoneinfo(machine: Machine): string {
  const mem = machine.mem;
  const release = machine.profile.vmstatNames;
  const layout = ZONEINFO_LAYOUTS[release];
  const names = VMSTAT_NAMES[release];
  const zoneItems = [...names.zone, ...names.numa];
  const zones = mem.node.zones;
  const first = zones.find((z) => z.populated);
  const home = zones.findLast((z) => z.populated);
  const zoneStats = (z: Zone) => {
    let s = '';
    for (const name of zoneItems)
      s += `\n      ${ls(name, 12)} ${ul(statValue(mem, name, z, home))}`;
    return s;
  };
  const unreclaimable = layout.unreclaimable === 'pgdat_reclaimable' ? pgdatUnreclaimable(mem) : 0;
  let out = '';
  for (const z of zones) {
    if (!z.populated && layout.unpopulated === 'hidden') continue;
    out += `Node ${z.nid}, zone ${rs(z.name, 8)}`;
    if (z === first) {
      out += '\n  per-node stats';
      for (const name of names.node) out += `\n      ${ls(name, 12)} ${ul(statValue(mem, name))}`;
    }
    out += `\n  pages free     ${ul(z.nrFreePages)}`;
    if (layout.boost) out += `\n        boost    ${ul(z.watermarkBoost)}`;
    out +=
      `\n        min      ${ul(z.wmarkPages(WMARK.MIN))}` +
      `\n        low      ${ul(z.wmarkPages(WMARK.LOW))}` +
      `\n        high     ${ul(z.wmarkPages(WMARK.HIGH))}`;
    if (layout.nodeScanned) out += '\n   node_scanned  0';
    if (layout.promo) out += `\n        promo    ${ul(z.wmarkPages(WMARK.PROMO))}`;
    out +=
      `\n        spanned  ${ul(z.spannedPages)}` +
      `\n        present  ${ul(z.presentPages)}` +
      `\n        managed  ${ul(z.managedPages)}`;
    if (layout.cma) out += '\n        cma      0';
    if (layout.zoneStats === 'after_sizes') out += zoneStats(z);
    out += `\n        protection: (${z.lowmemReserve.map((v) => String(Math.trunc(v))).join(', ')})`;
    if (!z.populated) {
      out += '\n';
      continue;
    }
    if (layout.zoneStats === 'after_protection') out += zoneStats(z);
    out += '\n  pagesets';
    const threshold = statThreshold(z, ZONEINFO_CPUS);
    for (let cpu = 0; cpu < ZONEINFO_CPUS; cpu++)
      out += `${pagesetLines(z, cpu, layout)}\n  vm stats threshold: ${threshold}`;
    out += `\n  node_unreclaimable:  ${unreclaimable}\n  start_pfn:           ${ul(z.zoneStartPfn)}`;
    if (layout.nodeInactiveRatio) out += '\n  node_inactive_ratio: 0';
    out += '\n';
  }
  return out;
}
