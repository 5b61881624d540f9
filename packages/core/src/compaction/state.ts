/**
 * Per-zone compaction state: cached scanner positions, skip-flush flag, deferral
 * (mm/compaction.c; spec §8.6, compaction-by-profile T10).
 * @module
 */

import { MAX_PAGE_ORDER, pageblock_nr_pages } from '../memory/constants.js';
import type { Memory } from '../memory/mem.js';
import type { Zone } from '../memory/zone.js';
import { PGTY } from '../page/flags.js';
import type { TraceBus } from '../trace/bus.js';
import { COMPACT_MAX_DEFER_SHIFT } from './types.js';

/** The compaction fields of `struct zone`. */
export interface ZoneCompactState {
  /** compact_cached_migrate_pfn[ASYNC, SYNC]. */
  cachedMigratePfn: [number, number];
  /** compact_cached_free_pfn. */
  cachedFreePfn: number;
  /** compact_init_migrate_pfn. */
  initMigratePfn: number;
  /**
   * compact_init_free_pfn: 0 until skip hints are first reset, then the highest pfn the
   * reset sampled in a block holding free pages. A free scanner at or above it is starting
   * its scan (fast_isolate_freepages searches deeper then).
   */
  initFreePfn: number;
  /** compact_blockskip_flush. */
  blockskipFlush: boolean;
  /** compact_considered. */
  considered: number;
  /** compact_defer_shift. */
  deferShift: number;
  /** compact_order_failed. */
  orderFailed: number;
}

const states = new WeakMap<Zone, ZoneCompactState>();

/** pageblock_start_pfn(). */
export const pageblockStartPfn = (pfn: number): number => pfn & ~(pageblock_nr_pages - 1);
/** pageblock_end_pfn(). */
export const pageblockEndPfn = (pfn: number): number => pageblockStartPfn(pfn) + pageblock_nr_pages;

/** The compaction state of a zone, created with reset cached positions. */
export function zoneCompactState(zone: Zone): ZoneCompactState {
  let s = states.get(zone);
  if (!s) {
    const free = pageblockStartPfn(zone.zoneEndPfn - 1);
    s = {
      cachedMigratePfn: [zone.zoneStartPfn, zone.zoneStartPfn],
      cachedFreePfn: free,
      initMigratePfn: zone.zoneStartPfn,
      initFreePfn: 0,
      blockskipFlush: false,
      considered: 0,
      deferShift: 0,
      orderFailed: 0,
    };
    states.set(zone, s);
  }
  return s;
}

/**
 * reset_cached_positions(): both migrate positions to the zone start, the free position to
 * the first pfn of the zone's last pageblock.
 */
export function resetCachedPositions(zone: Zone): void {
  const s = zoneCompactState(zone);
  s.cachedMigratePfn[0] = zone.zoneStartPfn;
  s.cachedMigratePfn[1] = zone.zoneStartPfn;
  s.cachedFreePfn = pageblockStartPfn(zone.zoneEndPfn - 1);
}

/**
 * __reset_isolation_suitable(): clear the zone's skip hints and reset the cached
 * positions. (v4.8 clears every block; 6.x's sampling of candidate blocks is approximated
 * by clearing every block too.)
 */
export function resetIsolationSuitable(mem: Memory, zone: Zone): void {
  for (
    let pfn = pageblockStartPfn(zone.zoneStartPfn);
    pfn < zone.zoneEndPfn;
    pfn += pageblock_nr_pages
  )
    mem.setPageblockSkip(pfn, false);
  const s = zoneCompactState(zone);
  s.blockskipFlush = false;
  resetCachedPositions(zone);
  s.initMigratePfn = zone.zoneStartPfn;
  // The free side samples zone_end_pfn - 1 downwards a pageblock at a time and keeps the
  // highest pfn whose block has a free page.
  for (let pfn = zone.zoneEndPfn - 1; pfn > zone.zoneStartPfn; pfn -= pageblock_nr_pages)
    if (blockHasFreePage(mem, pfn)) {
      s.initFreePfn = pfn;
      break;
    }
}

/** Whether the pageblock of `pfn` holds a free buddy block or lies inside one. */
function blockHasFreePage(mem: Memory, pfn: number): boolean {
  const { type, priv } = mem.pages;
  const head = pfn & ~((1 << MAX_PAGE_ORDER) - 1);
  if (type[head] >>> 24 === PGTY.buddy && priv[head] === MAX_PAGE_ORDER) return true;
  const start = pageblockStartPfn(pfn);
  const end = Math.min(start + pageblock_nr_pages, mem.nrPages);
  for (let q = start; q < end; q++) if (type[q] >>> 24 === PGTY.buddy) return true;
  return false;
}

type DeferEvent =
  | 'mm_compaction_deferred'
  | 'mm_compaction_defer_compaction'
  | 'mm_compaction_defer_reset';

function traceDefer(
  trace: TraceBus | undefined,
  event: DeferEvent,
  zone: Zone,
  order: number,
): void {
  if (!trace?.enabled[event]) return;
  const s = zoneCompactState(zone);
  trace.fire(event, {
    nid: zone.nid,
    idx: zone.idx,
    order,
    considered: s.considered,
    defer_shift: s.deferShift,
    order_failed: s.orderFailed,
  });
}

/**
 * defer_compaction(): after a failure, skip the next 2^shift attempts at this order or
 * above. Fires mm_compaction_defer_compaction on `trace`, if given.
 */
export function deferCompaction(zone: Zone, order: number, trace?: TraceBus): void {
  const s = zoneCompactState(zone);
  s.considered = 0;
  s.deferShift++;
  if (order < s.orderFailed) s.orderFailed = order;
  if (s.deferShift > COMPACT_MAX_DEFER_SHIFT) s.deferShift = COMPACT_MAX_DEFER_SHIFT;
  traceDefer(trace, 'mm_compaction_defer_compaction', zone, order);
}

/**
 * compaction_deferred(): whether to skip compaction at `order` now (counts the attempt).
 * Fires mm_compaction_deferred on `trace`, if given, when it skips.
 */
export function compactionDeferred(zone: Zone, order: number, trace?: TraceBus): boolean {
  const s = zoneCompactState(zone);
  const limit = 1 << s.deferShift;
  if (order < s.orderFailed) return false;
  if (++s.considered >= limit) {
    s.considered = limit;
    return false;
  }
  traceDefer(trace, 'mm_compaction_deferred', zone, order);
  return true;
}

/**
 * compaction_defer_reset(): after a success (or an allocation that worked). Fires
 * mm_compaction_defer_reset on `trace`, if given.
 */
export function compactionDeferReset(
  zone: Zone,
  order: number,
  allocSuccess: boolean,
  trace?: TraceBus,
): void {
  const s = zoneCompactState(zone);
  if (allocSuccess) {
    s.considered = 0;
    s.deferShift = 0;
  }
  if (order >= s.orderFailed) s.orderFailed = order + 1;
  traceDefer(trace, 'mm_compaction_defer_reset', zone, order);
}

/** compaction_restarting(): deferred as long as possible and about to try again. */
export function compactionRestarting(zone: Zone, order: number): boolean {
  const s = zoneCompactState(zone);
  if (order < s.orderFailed) return false;
  return s.deferShift === COMPACT_MAX_DEFER_SHIFT && s.considered >= 1 << s.deferShift;
}
