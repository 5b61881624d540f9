/**
 * Watermark boosting (mm/page_alloc.c, 6.x; compaction-by-profile T9, T16): a fallback
 * that claims part of a pageblock of another type raises the zone's watermarks by a
 * pageblock, up to `watermark_boost_factor` of the high watermark, and asks kswapd to
 * reclaim (and then kcompactd to compact) before more blocks get mixed.
 * @module
 */

import { pageblock_nr_pages } from '../memory/constants.js';
import type { Memory } from '../memory/mem.js';
import { WMARK, type Zone } from '../memory/zone.js';
import { ALLOC } from './gfp.js';

/**
 * boost_watermark(): whether the zone's boost was raised (or already at its cap). Not in
 * zones of fewer than four pageblocks, nor when the high watermark is still 0.
 */
export function boostWatermark(mem: Memory, zone: Zone): boolean {
  const factor = mem.watermarkBoostFactor;
  if (factor === 0) return false;
  if (pageblock_nr_pages * 4 > zone.managedPages) return false;
  // mult_frac(high, factor, 10000)
  const high = zone.watermark[WMARK.HIGH];
  const maxBoost =
    Math.floor(high / 10000) * factor + Math.floor(((high % 10000) * factor) / 10000);
  if (maxBoost === 0) return false;
  const cap = Math.max(pageblock_nr_pages, maxBoost);
  zone.watermarkBoost = Math.min(zone.watermarkBoost + pageblock_nr_pages, cap);
  return true;
}

/**
 * The boost of a fallback that claims less than a pageblock: the zone is marked
 * ZONE_BOOSTED_WATERMARK when the allocation may wake kswapd.
 */
export function boostOnFallback(mem: Memory, zone: Zone, allocFlags: number): void {
  if (boostWatermark(mem, zone) && allocFlags & ALLOC.KSWAPD) zone.boosted = true;
}

/**
 * The end of rmqueue(): a zone marked boosted wakes kswapd for order 0 up to its own index
 * (6.5 on: only for an ALLOC_KSWAPD allocation). Runs whether or not a page was found.
 */
export function wakeKswapdIfBoosted(mem: Memory, zone: Zone, allocFlags: number): void {
  if (!zone.boosted) return;
  if (mem.profile.watermarkBoost === 'wake_kswapd' && !(allocFlags & ALLOC.KSWAPD)) return;
  zone.boosted = false;
  if (zone.idx > mem.kswapdWakeZoneidx) mem.kswapdWakeZoneidx = zone.idx;
}

/**
 * The kswapd stand-in: a wakeup for the zones up to `highest` (wake_all_kswapds() from the
 * slow path; -1 for none) together with a pending one from a boosted zone, kswapd taken to
 * run at once. Its balance_pgdat() can reclaim nothing (mops has no reclaimable pages), so a
 * boosted pass ends by taking the boost back and, as after any boosted pass, asks kcompactd
 * to compact for pageblock_order (left in `mem.boostKcompactdZoneidx` for the compaction
 * layer).
 */
export function runKswapd(mem: Memory, highest: number): void {
  const h = Math.max(highest, mem.kswapdWakeZoneidx);
  mem.kswapdWakeZoneidx = -1;
  let boosted = false;
  const zones = mem.node.zones;
  for (let zi = 0; zi <= h && zi < zones.length; zi++) {
    const zone = zones[zi];
    if (zone.managedPages === 0 || zone.watermarkBoost === 0) continue;
    zone.watermarkBoost = 0;
    boosted = true;
  }
  if (boosted && h > mem.boostKcompactdZoneidx) mem.boostKcompactdZoneidx = h;
}
