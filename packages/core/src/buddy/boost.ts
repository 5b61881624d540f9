/**
 * Watermark boosting (mm/page_alloc.c, 6.x; compaction-by-profile T9, T16): a fallback
 * that claims part of a pageblock of another type raises the zone's watermarks by a
 * pageblock, up to `watermark_boost_factor` of the high watermark, and asks kswapd to
 * reclaim (and then kcompactd to compact) before more blocks get mixed. With it, the
 * kswapd stand-in (mm/vmscan.c): its wakeups, from a boosted zone and from the allocation
 * slow path, and its pass, which asks kcompactd for work.
 * @module
 */

import { pageblock_nr_pages, pageblock_order } from '../memory/constants.js';
import type { Memory } from '../memory/mem.js';
import { WMARK, type Zone } from '../memory/zone.js';
import { freePagesInBlocks } from './free_page.js';
import { __GFP, ALLOC, gfpZone } from './gfp.js';
import { zoneWatermarkOk } from './page_alloc.js';

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
  wakeupKswapd(mem, 0, 0, zone.idx);
}

/**
 * pgdat_balanced(): some managed zone up to `highestZoneidx` meets its high watermark
 * (boost included) for a block of `order` (under vm.defrag_mode, for an order above 0, with
 * the free pages in whole pageblocks: NR_FREE_PAGES_BLOCKS), with the lowmem reserve against
 * `highestZoneidx` (zone_watermark_ok_safe(), no ALLOC_* flags). A node with no managed zone
 * there needs no balancing.
 * @param mem the machine's memory
 * @param order the order kswapd balances for
 * @param highestZoneidx the highest zone index the request may use
 * @returns whether kswapd has nothing to reclaim for that order
 */
export function pgdatBalanced(mem: Memory, order: number, highestZoneidx: number): boolean {
  const zones = mem.node.zones;
  let managed = false;
  for (let zi = 0; zi <= highestZoneidx && zi < zones.length; zi++) {
    const zone = zones[zi];
    if (zone.managedPages === 0) continue;
    managed = true;
    // Under vm.defrag_mode (6.15 on) a high order counts only free pages in whole pageblocks.
    const free = mem.defragMode && order > 0 ? freePagesInBlocks(zone) : zone.nrFreePages;
    if (zoneWatermarkOk(zone, order, zone.wmarkPages(WMARK.HIGH), highestZoneidx, 0, free))
      return true;
  }
  return !managed;
}

/** pgdat_watermark_boosted(): some managed zone up to `highestZoneidx` has a boost. */
function pgdatWatermarkBoosted(mem: Memory, highestZoneidx: number): boolean {
  const zones = mem.node.zones;
  for (let zi = Math.min(highestZoneidx, zones.length - 1); zi >= 0; zi--)
    if (zones[zi].managedPages > 0 && zones[zi].watermarkBoost > 0) return true;
  return false;
}

/**
 * wakeup_kcompactd() asked for below the compaction layer: queued on
 * `mem.kcompactdWakeups` for `kswapdBalance` to make, a pair already queued left out, and
 * order 0 too (wakeup_kcompactd() asks for nothing then).
 */
function queueKcompactdWakeup(mem: Memory, order: number, highestZoneidx: number): void {
  if (order === 0) return;
  const w = mem.kcompactdWakeups;
  for (let i = 0; i < w.length; i += 2) if (w[i] === order && w[i + 1] === highestZoneidx) return;
  w.push(order, highestZoneidx);
}

/**
 * wakeup_kswapd(): records the order and the zone limit for kswapd's next pass (the largest
 * of each), then wakes kswapd unless it is awake already or the node is balanced for the
 * order with no zone boosted. For such a balanced node an allocation that cannot direct
 * reclaim (no `__GFP_DIRECT_RECLAIM`) asks kcompactd for the order itself
 * (`profile.balancedWakesKcompactd`: not v4.8). mops keeps no count of kswapd's failed
 * passes, so no node is hopeless.
 * @param mem the machine's memory
 * @param gfp the allocation's gfp mask (0 from rmqueue()'s boosted-zone wakeup)
 * @param order the order to balance for
 * @param highestZoneidx the highest zone index the request may use
 */
export function wakeupKswapd(
  mem: Memory,
  gfp: number,
  order: number,
  highestZoneidx: number,
): void {
  if (highestZoneidx > mem.kswapdWakeZoneidx) mem.kswapdWakeZoneidx = highestZoneidx;
  if (order > mem.kswapdOrder) mem.kswapdOrder = order;
  // !waitqueue_active(): woken and not yet run, kswapd takes the recorded request then.
  if (mem.kswapdWoken) return;
  if (pgdatBalanced(mem, order, highestZoneidx) && !pgdatWatermarkBoosted(mem, highestZoneidx)) {
    if (mem.profile.balancedWakesKcompactd && !(gfp & __GFP.DIRECT_RECLAIM))
      if (mem.wakeupKcompactd)
        // In the allocating task, at once (mm/vmscan.c wakeup_kswapd()).
        mem.wakeupKcompactd(order, highestZoneidx);
      else queueKcompactdWakeup(mem, order, highestZoneidx);
    return;
  }
  mem.kswapdWoken = true;
}

/**
 * wake_all_kswapds(): the slow path wakes the node's kswapd through the first managed zone
 * the request may use, for its order (under vm.defrag_mode at least pageblock_order) and up
 * to its zone index (`profile.kswapdWakeZone`: the preferred zone's in v4.8, gfp_zone()'s
 * from 5.8 on).
 * @param mem the machine's memory
 * @param gfp the allocation's gfp mask
 * @param order the allocation's order
 */
export function wakeAllKswapds(mem: Memory, gfp: number, order: number): void {
  const zones = mem.node.zones;
  const highest = gfpZone(gfp);
  let preferred = -1;
  for (let zi = Math.min(highest, zones.length - 1); zi >= 0 && preferred < 0; zi--)
    if (zones[zi].managedPages > 0) preferred = zi;
  if (preferred < 0) return;
  const reclaimOrder = mem.defragMode ? Math.max(order, pageblock_order) : order;
  const zoneidx = mem.profile.kswapdWakeZone === 'classzone' ? preferred : highest;
  wakeupKswapd(mem, gfp, reclaimOrder, zoneidx);
}

/**
 * The kswapd stand-in: when woken, kswapd runs its pass at once for the order and the zone
 * limit recorded (then cleared). balance_pgdat() finds the node balanced for the order, or
 * reclaims; mops has no reclaimable pages, and the pass is taken to succeed as kswapd's does
 * when reclaim gets the node balanced for order 0 (reclaim_order drops to 0). A boosted pass
 * takes the boost back and asks kcompactd to compact for pageblock_order; then, before
 * sleeping, kswapd_try_to_sleep() asks kcompactd for the order it was woken for
 * (alloc_order) when that order was not already balanced: wakeup_kcompactd() calls left on
 * `mem.kcompactdWakeups` for the compaction layer (`kswapdBalance`), which also makes
 * kswapd's going to sleep (`mem.kswapdToSleep`).
 * @param mem the machine's memory
 */
export function runKswapd(mem: Memory): void {
  if (!mem.kswapdWoken) return;
  mem.kswapdWoken = false;
  mem.kswapdToSleep = true;
  const h = mem.kswapdWakeZoneidx;
  const order = mem.kswapdOrder;
  mem.kswapdWakeZoneidx = -1;
  mem.kswapdOrder = 0;
  // balance_pgdat() checks the node (boosts in place) before reclaiming for the order.
  const reclaims = order > 0 && !pgdatBalanced(mem, order, h);
  let boosted = false;
  const zones = mem.node.zones;
  for (let zi = 0; zi <= h && zi < zones.length; zi++) {
    const zone = zones[zi];
    if (zone.managedPages === 0 || zone.watermarkBoost === 0) continue;
    zone.watermarkBoost = 0;
    boosted = true;
  }
  if (boosted) queueKcompactdWakeup(mem, pageblock_order, h);
  if (reclaims) queueKcompactdWakeup(mem, order, h);
}
