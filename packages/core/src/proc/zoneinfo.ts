/**
 * `/proc/zoneinfo` (mm/vmstat.c zoneinfo_show_print()).
 * @module
 */

import type { Machine } from '../machine.js';
import type { Zone } from '../memory/zone.js';
import { WMARK } from '../memory/zone.js';
import { NODE_STAT_ITEMS, ZONE_STAT_ITEMS } from '../vmstat/items.js';
import { ls, rs, ul } from './format.js';
import { zoneStatValue } from './vmstat.js';

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
 * zone_batchsize(), zone_highsize() and calculate_normal_threshold() for `zone` on a
 * machine with `cpus` CPUs in the node.
 * @see mm/page_alloc.c zone_set_pageset_high_and_batch(), mm/vmstat.c
 */
export function pagesetParams(zone: Zone, cpus = ZONEINFO_CPUS): PagesetParams {
  const managed = zone.managedPages;
  let batch = Math.min(managed >> 10, (1024 * 1024) / 4096);
  batch = Math.floor(batch / 4);
  if (batch < 1) batch = 1;
  const b = batch + Math.floor(batch / 2);
  batch = 2 ** (fls(b) - 1) - 1;
  batch = Math.max(1, batch);
  const highsize = (total: number) => Math.max(Math.floor(total / cpus), batch << 2);
  const highMin = highsize(zone.watermark[WMARK.LOW]);
  const highMax = highsize(Math.floor(managed / MIN_PERCPU_PAGELIST_HIGH_FRACTION));
  const mem = managed >> (27 - 12);
  const statThreshold = Math.min(125, 2 * fls(cpus) * (1 + fls(mem)));
  return { batch, highMin, highMax, statThreshold };
}

/**
 * /proc/zoneinfo: every zone slot of node 0. A populated zone gets the full block (the node
 * stats under the first populated zone; free pages, watermarks with the boost included,
 * sizes, the lowmem protection, the zone stat items, the pagesets of
 * {@link ZONEINFO_CPUS} CPUs, `node_unreclaimable` and `start_pfn`); an unpopulated zone
 * stops after `protection`.
 *
 * The pagesets have the 6.7+ layout (`high_min`, `high_max`). mops has no per-CPU page
 * lists, so each pageset's `count` is 0 and `high` is 0: per_cpu_pages_init() zeroes the
 * pageset and pageset_update() sets only `batch`, `high_min` and `high_max`; `high` first
 * moves when a page is freed to the per-CPU list (nr_pcp_high() clamps it into
 * [high_min, high_max]), which never happens in mops. `batch`, `high_min`, `high_max` and
 * the stat threshold are computed from the zone's size as the kernel does (see
 * {@link pagesetParams}).
 * `node_unreclaimable` is 0 (mops has no reclaim); `cma` (zone_cma_pages()) is 0:
 * mops has no CMA.
 * @see mm/vmstat.c zoneinfo_show_print()
 */
export function zoneinfo(machine: Machine): string {
  const mem = machine.mem;
  const zones = mem.node.zones;
  const first = zones.find((z) => z.populated);
  let out = '';
  for (const z of zones) {
    out += `Node ${z.nid}, zone ${rs(z.name, 8)}`;
    if (z === first) {
      out += '\n  per-node stats';
      for (let i = 0; i < NODE_STAT_ITEMS.length; i++)
        out += `\n      ${ls(NODE_STAT_ITEMS[i], 12)} ${ul(mem.vmstat.node[i])}`;
    }
    out +=
      `\n  pages free     ${ul(z.nrFreePages)}` +
      `\n        boost    ${ul(z.watermarkBoost)}` +
      `\n        min      ${ul(z.wmarkPages(WMARK.MIN))}` +
      `\n        low      ${ul(z.wmarkPages(WMARK.LOW))}` +
      `\n        high     ${ul(z.wmarkPages(WMARK.HIGH))}` +
      `\n        promo    ${ul(z.wmarkPages(WMARK.PROMO))}` +
      `\n        spanned  ${ul(z.spannedPages)}` +
      `\n        present  ${ul(z.presentPages)}` +
      `\n        managed  ${ul(z.managedPages)}` +
      `\n        cma      0` +
      `\n        protection: (${z.lowmemReserve.map((v) => String(Math.trunc(v))).join(', ')})`;
    if (!z.populated) {
      out += '\n';
      continue;
    }
    for (let i = 0; i < ZONE_STAT_ITEMS.length; i++)
      out += `\n      ${ls(ZONE_STAT_ITEMS[i], 12)} ${ul(zoneStatValue(z, i))}`;
    out += '\n  pagesets';
    const p = pagesetParams(z);
    for (let cpu = 0; cpu < ZONEINFO_CPUS; cpu++) {
      out +=
        `\n    cpu: ${cpu}` +
        `\n              count:    0` +
        `\n              high:     0` +
        `\n              batch:    ${p.batch}` +
        `\n              high_min: ${p.highMin}` +
        `\n              high_max: ${p.highMax}` +
        `\n  vm stats threshold: ${p.statThreshold}`;
    }
    out += `\n  node_unreclaimable:  0\n  start_pfn:           ${ul(z.zoneStartPfn)}\n`;
  }
  return out;
}
