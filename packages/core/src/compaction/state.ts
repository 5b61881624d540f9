/**
 * Per-zone compaction state: cached scanner positions, skip-flush flag, deferral
 * (mm/compaction.c; spec §8.6, compaction-by-profile T10).
 * @module
 */

import {
  MIGRATE,
  PAGE_ALLOC_COSTLY_ORDER,
  pageblock_nr_pages,
  pageblock_order,
} from '../memory/constants.js';
import type { Memory } from '../memory/mem.js';
import type { Zone } from '../memory/zone.js';
import { PG, PGTY } from '../page/flags.js';
import { compoundHead, PageHead } from '../page/page.js';
import type { TraceBus } from '../trace/bus.js';
import { COMPACT_MAX_DEFER_SHIFT } from './types.js';

/** The compaction fields of `struct zone`. */
export interface ZoneCompactState {
  /** compact_cached_migrate_pfn[ASYNC, SYNC]. */
  cachedMigratePfn: [number, number];
  /** compact_cached_free_pfn. */
  cachedFreePfn: number;
  /**
   * compact_init_migrate_pfn (6.x): 0 until skip hints are first reset, then the lowest pfn
   * the reset sampled in a block holding LRU pages. A cached-position run whose migrate
   * scanner starts at or below it scans the whole zone (whole_zone).
   */
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

/** pageblock_start_pfn(). */
export const pageblockStartPfn = (pfn: number): number => pfn & ~(pageblock_nr_pages - 1);
/** pageblock_end_pfn(). */
export const pageblockEndPfn = (pfn: number): number => pageblockStartPfn(pfn) + pageblock_nr_pages;

/**
 * pageblock_pfn_to_page() for the scanners' walks: whether the pageblock whose first pfn in
 * `zone` is `startPfn` has a memmap, i.e. holds a present pfn of the zone. A zone's holes
 * are the end of its span, `[zoneStartPfn + presentPages, zoneEndPfn)` (for a machine from
 * /proc, the pageblocks its pagetypeinfo did not count, those without an online memmap). A
 * block lying wholly in them has no `struct page`: pfn_valid() or pfn_to_online_page()
 * fails, as for a real machine's holes and offline sections, and pageblock_pfn_to_page()
 * returns NULL. A block the hole starts inside has one (a memmap covers at least a 2 MiB
 * subsection, one pageblock), and its hole part is scanned as reserved pages. Every release
 * passes over a block without one before any other test: no pfn of it scanned, no
 * tracepoint, no skip hint, no cached position; the scanner only moves past it.
 */
export function pageblockPfnToPage(zone: Zone, startPfn: number): boolean {
  return startPfn >= zone.zoneStartPfn && startPfn < zone.zoneStartPfn + zone.presentPages;
}

/**
 * The compaction state of a zone. Every field starts at 0, as in the zeroed `struct zone`:
 * nothing sets the cached positions before the first compact_zone(), which takes them only
 * if they lie inside the zone (so a zone starting at pfn 0 starts with both scanners at pfn
 * 0), and only __reset_isolation_suitable() sets the compact_init_* positions.
 */
export function zoneCompactState(zone: Zone): ZoneCompactState {
  let s = zone.compact;
  if (!s) {
    s = {
      cachedMigratePfn: [0, 0],
      cachedFreePfn: 0,
      initMigratePfn: 0,
      initFreePfn: 0,
      blockskipFlush: false,
      considered: 0,
      deferShift: 0,
      orderFailed: 0,
    };
    zone.compact = s;
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
 * positions. v4.8 clears every block. 6.x walks the zone from both ends a pageblock at a
 * time and clears only blocks whose sample (every 8th page) shows a page the scanner could
 * use (an LRU page for the migrate side, a free page for the free side), moving the cached
 * and `compact_init_*` positions to the first such blocks.
 */
export function resetIsolationSuitable(mem: Memory, zone: Zone): void {
  const s = zoneCompactState(zone);
  s.blockskipFlush = false;
  if (mem.profile.compaction.scannersV48) {
    for (
      let pfn = pageblockStartPfn(zone.zoneStartPfn);
      pfn < zone.zoneEndPfn;
      pfn += pageblock_nr_pages
    )
      mem.setPageblockSkip(pfn, false);
    resetCachedPositions(zone);
    return;
  }
  let migratePfn = zone.zoneStartPfn;
  let freePfn = zone.zoneEndPfn - 1;
  let resetMigrate = freePfn;
  let resetFree = migratePfn;
  let sourceSet = false;
  let freeSet = false;
  for (; migratePfn < freePfn; migratePfn += pageblock_nr_pages, freePfn -= pageblock_nr_pages) {
    if (resetIsolationPfn(mem, zone, migratePfn, true, sourceSet) && migratePfn < resetMigrate) {
      sourceSet = true;
      resetMigrate = migratePfn;
      s.initMigratePfn = migratePfn;
      s.cachedMigratePfn[0] = migratePfn;
      s.cachedMigratePfn[1] = migratePfn;
    }
    if (resetIsolationPfn(mem, zone, freePfn, freeSet, true) && freePfn > resetFree) {
      freeSet = true;
      resetFree = freePfn;
      s.initFreePfn = freePfn;
      s.cachedFreePfn = freePfn;
    }
  }
  // Leave no distance if no suitable block was reset.
  if (resetMigrate >= resetFree) {
    s.cachedMigratePfn[0] = migratePfn;
    s.cachedMigratePfn[1] = migratePfn;
    s.cachedFreePfn = freePfn;
  }
}

/**
 * reset_isolation_suitable(): {@link resetIsolationSuitable} of each populated zone whose
 * last full compaction (scanners met in a direct compaction) set `compact_blockskip_flush`.
 */
export function resetNodeIsolationSuitable(mem: Memory): void {
  for (const zone of mem.populatedZones)
    if (zoneCompactState(zone).blockskipFlush) resetIsolationSuitable(mem, zone);
}

/**
 * pageblock_skip_persistent() (4.15+; always false where the profile lacks it,
 * `skipPersistentBlocks`): the page at `pfn` belongs to a compound page of pageblock order
 * or more (`pfn` may be its head or any tail, e.g. the first page of the second block of an
 * order-10 page), so its block holds nothing to migrate or isolate until that page is freed.
 */
export function pageblockSkipPersistent(mem: Memory, pfn: number): boolean {
  if (!mem.profile.compaction.skipPersistentBlocks) return false;
  const head = compoundHead(mem, pfn);
  return PageHead(mem, head) && mem.pages.compound[head] >= pageblock_order;
}

/**
 * __reset_isolation_pfn(): whether the block of `pfn` may serve the scanners checked, its
 * skip hint cleared if a sample shows an LRU page (source) or a free page (target).
 */
function resetIsolationPfn(
  mem: Memory,
  zone: Zone,
  pfn: number,
  checkSource: boolean,
  checkTarget: boolean,
): boolean {
  const p = mem.pages;
  if (pageblockSkipPersistent(mem, pfn)) return false;
  if (checkSource && checkTarget && !mem.pageblockSkip(pfn)) return true;
  // The free side does not start from a block that is not MOVABLE.
  if (!checkSource && checkTarget && mem.pageblockMigratetype(pfn) !== MIGRATE.MOVABLE)
    return false;
  const start = Math.max(pageblockStartPfn(pfn), zone.zoneStartPfn);
  const end = Math.min(start + pageblock_nr_pages, zone.zoneEndPfn) - 1;
  for (let q = start; q <= end; q += 1 << PAGE_ALLOC_COSTLY_ORDER) {
    if (
      (checkSource && p.flags[q] & (1 << PG.lru)) ||
      (checkTarget && p.type[q] >>> 24 === PGTY.buddy)
    ) {
      mem.setPageblockSkip(q, false);
      return true;
    }
  }
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
