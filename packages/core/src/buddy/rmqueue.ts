import {
  MAX_PAGE_ORDER,
  MIGRATE,
  MIGRATE_PCPTYPES,
  MIGRATE_TYPES,
  PAGE_ALLOC_COSTLY_ORDER,
  pageblock_nr_pages,
  pageblock_order,
} from '../memory/constants.js';
import type { Memory } from '../memory/mem.js';
import type { Zone } from '../memory/zone.js';
import { PG, PGTY } from '../page/flags.js';
import { boostOnFallback } from './boost.js';
import { addToFreeList, delFromFreeList, firstFree, moveToFreeList } from './free_area.js';
import { ALLOC, ALLOC_HARDER } from './gfp.js';
import { highatomicLastResort, highatomicRequest } from './highatomic.js';

/** Fallback types for each migrate type (`fallbacks[]`). */
const FALLBACKS: readonly (readonly number[])[] = [
  [MIGRATE.RECLAIMABLE, MIGRATE.MOVABLE],
  [MIGRATE.RECLAIMABLE, MIGRATE.UNMOVABLE],
  [MIGRATE.UNMOVABLE, MIGRATE.MOVABLE],
];

/** expand(): split a block of order `high` down to `low`, freeing the upper halves. */
function expand(mem: Memory, zone: Zone, pfn: number, low: number, high: number, mt: number) {
  let size = 1 << high;
  while (high > low) {
    high--;
    size >>= 1;
    addToFreeList(mem, zone, pfn + size, high, mt, false);
  }
}

/**
 * __rmqueue_smallest(): the smallest free block of `mt` of at least `order`. 6.x traces
 * each block it takes here (the profile's `zoneLockedTrace`).
 */
function rmqueueSmallest(mem: Memory, zone: Zone, order: number, mt: number): number {
  for (let o = order; o <= MAX_PAGE_ORDER; o++) {
    const pfn = firstFree(mem, zone, o, mt);
    if (pfn < 0) continue;
    delFromFreeList(mem, zone, pfn);
    expand(mem, zone, pfn, order, o, mt);
    if (zoneLockedTracedAt(mem, 'smallest')) traceZoneLocked(mem, pfn, order, mt);
    return pfn;
  }
  return -1;
}

/**
 * Whether mm_page_alloc_zone_locked is on and the release fires it `where`: in
 * __rmqueue_smallest() (6.x) or at the end of __rmqueue() and for a reserved block (v4.8).
 */
function zoneLockedTracedAt(mem: Memory, where: 'smallest' | 'rmqueue'): boolean {
  return mem.trace.enabled.mm_page_alloc_zone_locked && mem.profile.zoneLockedTrace === where;
}

/**
 * trace_mm_page_alloc_zone_locked(). percpu_refill is what the release records for the call,
 * not whether a per-CPU list is being refilled (mops has none): 6.x passes
 * `pcp_allowed_order(order) && migratetype < MIGRATE_PCPTYPES` (orders up to
 * PAGE_ALLOC_COSTLY_ORDER, and pageblock_order with CONFIG_TRANSPARENT_HUGEPAGE, which the
 * machine mops models has); v4.8 has no such field and prints `order == 0`, which the
 * payload carries so that the line prints the same.
 */
function traceZoneLocked(mem: Memory, pfn: number, order: number, mt: number): void {
  const refill =
    mem.profile.zoneLockedTrace === 'rmqueue'
      ? order === 0
      : (order <= PAGE_ALLOC_COSTLY_ORDER || order === pageblock_order) && mt < MIGRATE_PCPTYPES;
  mem.trace.fire('mm_page_alloc_zone_locked', {
    pfn,
    order,
    migratetype: mt,
    percpu_refill: refill ? 1 : 0,
  });
}

/** change_pageblock_range(): set the type of every pageblock of a block of `order`. */
export function changePageblockRange(mem: Memory, pfn: number, order: number, mt: number): void {
  const n = Math.max(1, 1 << (order - pageblock_order));
  for (let i = 0; i < n; i++) mem.setPageblockMigratetype(pfn + i * pageblock_nr_pages, mt);
}

/** A non-free page that counts as "movable" when judging whether to claim a block. */
function countsAsMovable(mem: Memory, pfn: number): boolean {
  const p = mem.pages;
  if (p.flags[pfn] & (1 << PG.lru)) return true;
  if (mem.profile.fallback === 'v6.17') {
    const t = p.type[pfn] >>> 24;
    return (
      (p.flags[pfn] & (1 << PG.movable_ops)) !== 0 && (t === PGTY.offline || t === PGTY.zsmalloc)
    );
  }
  if (mem.profile.fallback === 'v4.8') return false;
  return (p.mapping[pfn] & 3) === 2;
}

/**
 * move_freepages_block(): move every free block of the pageblock holding `pfn` to the `mt`
 * lists. Returns the pages moved and the non-free pages that count as movable, or
 * undefined when the profile's `moveFreepagesWholeBlock` refuses the block.
 */
export function moveFreepagesBlock(
  mem: Memory,
  zone: Zone,
  pfn: number,
  mt: number,
): { free: number; movable: number } | undefined {
  let start = pfn & ~(pageblock_nr_pages - 1);
  const end = start + pageblock_nr_pages - 1;
  if (!zone.spans(start)) {
    if (mem.profile.moveFreepagesWholeBlock) return undefined;
    start = pfn;
  }
  if (!zone.spans(end)) return undefined;
  let free = 0;
  let movable = 0;
  const p = mem.pages;
  for (let q = start; q <= end; ) {
    if (p.type[q] >>> 24 !== PGTY.buddy) {
      if (countsAsMovable(mem, q)) movable++;
      q++;
      continue;
    }
    const order = p.priv[q];
    moveToFreeList(mem, zone, q, mt);
    q += 1 << order;
    free += 1 << order;
  }
  return { free, movable };
}

/** can_steal_fallback() / should_try_claim_block() (`pageblock_order / 2` in C: 4). */
export function canSteal(order: number, startMt: number): boolean {
  if (order >= pageblock_order) return true;
  if (order >= pageblock_order >> 1) return true;
  return startMt === MIGRATE.RECLAIMABLE || startMt === MIGRATE.UNMOVABLE;
}

/** find_suitable_fallback(): the first fallback type with a free block of `order`. */
export function findFallback(zone: Zone, order: number, startMt: number): number {
  if (zone.nrFree[order] === 0) return -1;
  for (const mt of FALLBACKS[startMt]) {
    if (zone.nrFreeList[order * MIGRATE_TYPES + mt] > 0) return mt;
  }
  return -1;
}

/**
 * steal_suitable_fallback() (v6.0/v6.3) and its v4.8 form: take over the block's free pages
 * and, when enough of the block is free or alike, the block itself. Leaves the free block at
 * `pfn` on the `startMt` list when stealing (single_page), or where it is when claiming.
 */
function stealSuitableFallback(
  mem: Memory,
  zone: Zone,
  pfn: number,
  order: number,
  startMt: number,
  wholeBlock: boolean,
  allocFlags: number,
): void {
  const oldMt = mem.pageblockMigratetype(pfn);
  if (oldMt === MIGRATE.HIGHATOMIC && mem.profile.fallback !== 'v4.8') {
    moveToFreeList(mem, zone, pfn, startMt);
    return;
  }
  if (order >= pageblock_order) {
    changePageblockRange(mem, pfn, order, startMt);
    moveToFreeList(mem, zone, pfn, startMt);
    return;
  }
  // Less than a block: boost the watermarks to make future fallbacks less likely.
  boostOnFallback(mem, zone, allocFlags);
  if (!wholeBlock) {
    moveToFreeList(mem, zone, pfn, startMt);
    return;
  }
  const moved = moveFreepagesBlock(mem, zone, pfn, startMt);
  if (!moved || moved.free === 0) {
    if (mem.pages.type[pfn] >>> 24 === PGTY.buddy) moveToFreeList(mem, zone, pfn, startMt);
    return;
  }
  let alike = 0;
  if (mem.profile.fallback !== 'v4.8') {
    if (startMt === MIGRATE.MOVABLE) alike = moved.movable;
    else if (oldMt === MIGRATE.MOVABLE) alike = pageblock_nr_pages - (moved.free + moved.movable);
  }
  if (moved.free + alike >= pageblock_nr_pages >> 1) mem.setPageblockMigratetype(pfn, startMt);
}

/** trace_mm_page_alloc_extfrag(): a fallback took a block of another type. */
function traceExtfrag(
  mem: Memory,
  pfn: number,
  order: number,
  at: number,
  startMt: number,
  fallbackMt: number,
): void {
  if (!mem.trace.enabled.mm_page_alloc_extfrag) return;
  mem.trace.fire('mm_page_alloc_extfrag', {
    pfn,
    alloc_order: order,
    fallback_order: at,
    alloc_migratetype: startMt,
    fallback_migratetype: fallbackMt,
    change_ownership: mem.pageblockMigratetype(pfn) === startMt ? 1 : 0,
  });
}

/** __rmqueue_fallback() of v6.0/v6.3: returns true when it put a block on `startMt`'s list. */
function rmqueueFallbackV6(
  mem: Memory,
  zone: Zone,
  order: number,
  startMt: number,
  allocFlags: number,
): boolean {
  const minOrder = allocFlags & ALLOC.NOFRAGMENT ? pageblock_order : order;
  let found = -1;
  let at = -1;
  let steal = false;
  for (let o = MAX_PAGE_ORDER; o >= minOrder; o--) {
    const mt = findFallback(zone, o, startMt);
    if (mt < 0) continue;
    steal = canSteal(o, startMt);
    if (!steal && startMt === MIGRATE.MOVABLE && o > order) {
      // find_smallest: a movable request takes the smallest block rather than break up a
      // large block it could not claim.
      for (let s = order; s <= MAX_PAGE_ORDER; s++) {
        const smt = findFallback(zone, s, startMt);
        if (smt >= 0) {
          found = smt;
          at = s;
          break;
        }
      }
      steal = canSteal(at, startMt);
    } else {
      found = mt;
      at = o;
    }
    break;
  }
  if (found < 0) return false;
  const pfn = firstFree(mem, zone, at, found);
  stealSuitableFallback(mem, zone, pfn, at, startMt, steal, allocFlags);
  traceExtfrag(mem, pfn, order, at, startMt, found);
  return true;
}

/** __rmqueue_fallback() of v4.8: returns the allocated pfn, expanded on `startMt`'s lists. */
function rmqueueFallbackV48(mem: Memory, zone: Zone, order: number, startMt: number): number {
  for (let o = MAX_PAGE_ORDER; o >= order; o--) {
    const mt = findFallback(zone, o, startMt);
    if (mt < 0) continue;
    const pfn = firstFree(mem, zone, o, mt);
    if (canSteal(o, startMt)) stealSuitableFallback(mem, zone, pfn, o, startMt, true, 0);
    traceExtfrag(mem, pfn, order, o, startMt, mt);
    delFromFreeList(mem, zone, pfn);
    expand(mem, zone, pfn, order, o, startMt);
    return pfn;
  }
  return -1;
}

/** __rmqueue_claim() + __rmqueue_steal() of v6.17. */
function rmqueueFallbackV617(
  mem: Memory,
  zone: Zone,
  order: number,
  startMt: number,
  allocFlags: number,
): number {
  // Only a request below pageblock_order is raised to it (the 6.4 fix): an order-10 one
  // must not look at order-9 blocks.
  const nofrag = order < pageblock_order && allocFlags & ALLOC.NOFRAGMENT;
  const minOrder = nofrag ? pageblock_order : order;
  for (let o = MAX_PAGE_ORDER; o >= minOrder; o--) {
    const mt = findFallback(zone, o, startMt);
    if (mt < 0) continue;
    if (!canSteal(o, startMt)) break;
    const pfn = firstFree(mem, zone, o, mt);
    if (o >= pageblock_order) {
      changePageblockRange(mem, pfn, o, startMt);
      traceExtfrag(mem, pfn, order, o, startMt, mt);
      delFromFreeList(mem, zone, pfn);
      expand(mem, zone, pfn, order, o, startMt);
      return pfn;
    }
    if (mem.pageblockMigratetype(pfn) === MIGRATE.HIGHATOMIC) continue;
    boostOnFallback(mem, zone, allocFlags);
    const start = pfn & ~(pageblock_nr_pages - 1);
    if (!zone.spans(start) || !zone.spans(start + pageblock_nr_pages - 1)) continue;
    // Count before claiming: try_to_claim_block() only converts a block that is mostly free
    // or alike.
    let free = 0;
    let movable = 0;
    const p = mem.pages;
    for (let q = start; q < start + pageblock_nr_pages; ) {
      if (p.type[q] >>> 24 === PGTY.buddy) {
        free += 1 << p.priv[q];
        q += 1 << p.priv[q];
      } else {
        if (countsAsMovable(mem, q)) movable++;
        q++;
      }
    }
    const oldMt = mem.pageblockMigratetype(pfn);
    let alike = 0;
    if (startMt === MIGRATE.MOVABLE) alike = movable;
    else if (oldMt === MIGRATE.MOVABLE) alike = pageblock_nr_pages - (free + movable);
    if (free + alike >= pageblock_nr_pages >> 1) {
      mem.setPageblockMigratetype(start, startMt);
      moveFreepagesBlock(mem, zone, start, startMt);
      // try_to_claim_block() returns __rmqueue_smallest()'s page, and that is the page
      // __rmqueue_claim() traces.
      const got = rmqueueSmallest(mem, zone, order, startMt);
      traceExtfrag(mem, got, order, o, startMt, mt);
      return got;
    }
  }
  // __rmqueue_steal(): one block, smallest first, never under ALLOC_NOFRAGMENT (the
  // allocator retries without it, claiming first).
  if (allocFlags & ALLOC.NOFRAGMENT) return -1;
  for (let o = order; o <= MAX_PAGE_ORDER; o++) {
    const mt = findFallback(zone, o, startMt);
    if (mt < 0) continue;
    const pfn = firstFree(mem, zone, o, mt);
    traceExtfrag(mem, pfn, order, o, startMt, mt);
    delFromFreeList(mem, zone, pfn);
    expand(mem, zone, pfn, order, o, mt);
    return pfn;
  }
  return -1;
}

/**
 * rmqueue_buddy(): a high-atomic request looks on the MIGRATE_HIGHATOMIC lists first; then
 * __rmqueue(); then, where the release allows it, a last resort on MIGRATE_HIGHATOMIC.
 */
export function rmqueue(
  mem: Memory,
  zone: Zone,
  order: number,
  mt: number,
  allocFlags: number,
): number {
  if (!(allocFlags & (ALLOC_HARDER | ALLOC.OOM)))
    return rmqueueTypes(mem, zone, order, mt, allocFlags);
  const rules = mem.profile.highatomic;
  let pfn = -1;
  if (highatomicRequest(rules, order, allocFlags)) {
    pfn = rmqueueSmallest(mem, zone, order, MIGRATE.HIGHATOMIC);
    // v4.8's buffered_rmqueue() traces a reserved block with the request's migratetype.
    if (pfn >= 0 && zoneLockedTracedAt(mem, 'rmqueue')) traceZoneLocked(mem, pfn, order, mt);
  }
  if (pfn < 0) pfn = rmqueueTypes(mem, zone, order, mt, allocFlags);
  if (pfn < 0 && highatomicLastResort(rules, allocFlags))
    pfn = rmqueueSmallest(mem, zone, order, MIGRATE.HIGHATOMIC);
  return pfn;
}

/**
 * __rmqueue(): a free block of `order` for `mt`, falling back to other types. v4.8 traces
 * every call at its end, a failed one with a NULL page (pfn -1).
 */
function rmqueueTypes(
  mem: Memory,
  zone: Zone,
  order: number,
  mt: number,
  allocFlags: number,
): number {
  let pfn = rmqueueSmallest(mem, zone, order, mt);
  if (pfn < 0 && mt < MIGRATE_PCPTYPES) pfn = rmqueueFallback(mem, zone, order, mt, allocFlags);
  if (zoneLockedTracedAt(mem, 'rmqueue')) traceZoneLocked(mem, pfn, order, mt);
  return pfn;
}

/** The fallback part of __rmqueue(), after the `mt` lists had no block of `order`. */
function rmqueueFallback(
  mem: Memory,
  zone: Zone,
  order: number,
  mt: number,
  allocFlags: number,
): number {
  let pfn = -1;
  switch (mem.profile.fallback) {
    case 'v4.8':
      return rmqueueFallbackV48(mem, zone, order, mt);
    case 'v6.17':
      return rmqueueFallbackV617(mem, zone, order, mt, allocFlags);
    default:
      while (pfn < 0 && rmqueueFallbackV6(mem, zone, order, mt, allocFlags))
        pfn = rmqueueSmallest(mem, zone, order, mt);
      return pfn;
  }
}
