/**
 * The buddy allocator (mm/page_alloc.c): splitting and merging, the fallback order and
 * pageblock stealing, watermarks, and the allocation and freeing entry points.
 *
 * mops has no per-CPU page lists: an order-0 free goes straight to the buddy allocator and
 * merges at once (spec §0.2).
 * @module
 */

import { bug } from '../debug/dump_page.js';
import {
  MAX_PAGE_ORDER,
  MIGRATE,
  MIGRATE_PCPTYPES,
  MIGRATE_TYPES,
  PAGE_SIZE,
  pageblock_nr_pages,
  pageblock_order,
  ZONE,
} from '../memory/constants.js';
import type { Memory } from '../memory/mem.js';
import { WMARK, type Zone } from '../memory/zone.js';
import { OWNER_SHIFT, PG, PGTY } from '../page/flags.js';
import { EV } from '../vmstat/vmstat.js';
import {
  addToFreeList,
  delFromFreeList,
  firstFree,
  moveToFreeList,
  pageIsBuddy,
} from './free_area.js';
import { __GFP, ALLOC, ALLOC_RESERVES, gfpMigratetype, gfpZone } from './gfp.js';

/** Fallback types for each migrate type (`fallbacks[]`). */
const FALLBACKS: readonly (readonly number[])[] = [
  [MIGRATE.RECLAIMABLE, MIGRATE.MOVABLE],
  [MIGRATE.RECLAIMABLE, MIGRATE.UNMOVABLE],
  [MIGRATE.UNMOVABLE, MIGRATE.MOVABLE],
];

const EV_PGFREE = EV.pgfree;
const EV_PGALLOC = [EV.pgalloc_dma, EV.pgalloc_dma32, EV.pgalloc_normal, EV.pgalloc_movable];

/** Called when a free block merges or lands; the buddy of `pfn` at `order` is free. */
function buddyMergeLikely(mem: Memory, zone: Zone, pfn: number, buddy: number, order: number) {
  if (order >= MAX_PAGE_ORDER - 1) return false;
  const higher = buddy & pfn;
  const higherBuddy = higher ^ (1 << (order + 1));
  return zone.spans(higherBuddy) && pageIsBuddy(mem, higherBuddy, order + 1);
}

/** migratetype_is_mergeable(): only the per-CPU types merge across pageblocks (6.x). */
function mergeableTypes(mem: Memory, a: number, b: number): boolean {
  if (a === b) return true;
  if (mem.profile.fallback === 'v4.8') return a !== MIGRATE.ISOLATE && b !== MIGRATE.ISOLATE;
  return a < MIGRATE_PCPTYPES && b < MIGRATE_PCPTYPES;
}

/**
 * A merge with a buddy of pageblock order or more: whether the types allow it; the buddy's
 * pageblocks take `mt` when the profile says so.
 */
function mergeAcrossBlocks(mem: Memory, buddy: number, order: number, mt: number): boolean {
  const bmt = mem.pageblockMigratetype(buddy);
  if (!mergeableTypes(mem, mt, bmt)) return false;
  if (bmt !== mt && mem.profile.mergeRewritesBuddyType) changePageblockRange(mem, buddy, order, mt);
  return true;
}

/**
 * __free_one_page(): merge with free buddies as far as possible and put the block on the
 * `mt` free list, at the tail if `toTail` or if a further merge looks likely.
 */
export function freeOneBlock(
  mem: Memory,
  zone: Zone,
  pfn: number,
  order: number,
  mt: number,
  toTail = false,
): void {
  let buddy = 0;
  while (order < MAX_PAGE_ORDER) {
    buddy = pfn ^ (1 << order);
    if (!zone.spans(buddy) || !pageIsBuddy(mem, buddy, order)) break;
    if (order >= pageblock_order && !mergeAcrossBlocks(mem, buddy, order, mt)) break;
    delFromFreeList(mem, zone, buddy);
    pfn &= buddy;
    order++;
  }
  const tail = toTail || buddyMergeLikely(mem, zone, pfn, pfn ^ (1 << order), order);
  addToFreeList(mem, zone, pfn, order, mt, tail);
}

/** expand(): split a block of order `high` down to `low`, freeing the upper halves. */
function expand(mem: Memory, zone: Zone, pfn: number, low: number, high: number, mt: number) {
  let size = 1 << high;
  while (high > low) {
    high--;
    size >>= 1;
    addToFreeList(mem, zone, pfn + size, high, mt, false);
  }
}

/** __rmqueue_smallest(): the smallest free block of `mt` of at least `order`. */
function rmqueueSmallest(mem: Memory, zone: Zone, order: number, mt: number): number {
  for (let o = order; o <= MAX_PAGE_ORDER; o++) {
    const pfn = firstFree(mem, zone, o, mt);
    if (pfn < 0) continue;
    delFromFreeList(mem, zone, pfn);
    expand(mem, zone, pfn, order, o, mt);
    return pfn;
  }
  return -1;
}

/** change_pageblock_range(): set the type of every pageblock of a block of `order`. */
function changePageblockRange(mem: Memory, pfn: number, order: number, mt: number): void {
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
 * undefined when the block is not wholly inside the zone.
 */
export function moveFreepagesBlock(
  mem: Memory,
  zone: Zone,
  pfn: number,
  mt: number,
): { free: number; movable: number } | undefined {
  let start = pfn & ~(pageblock_nr_pages - 1);
  const end = start + pageblock_nr_pages - 1;
  if (!zone.spans(start)) start = pfn;
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

/** can_steal_fallback() / should_try_claim_block(). */
function canSteal(order: number, startMt: number): boolean {
  if (order >= pageblock_order) return true;
  if (order >= pageblock_order / 2) return true;
  return startMt === MIGRATE.RECLAIMABLE || startMt === MIGRATE.UNMOVABLE;
}

/** find_suitable_fallback(): the first fallback type with a free block of `order`. */
function findFallback(zone: Zone, order: number, startMt: number): number {
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
  stealSuitableFallback(mem, zone, pfn, at, startMt, steal);
  traceExtfrag(mem, pfn, order, at, startMt, found);
  return true;
}

/** __rmqueue_fallback() of v4.8: returns the allocated pfn, expanded on `startMt`'s lists. */
function rmqueueFallbackV48(mem: Memory, zone: Zone, order: number, startMt: number): number {
  for (let o = MAX_PAGE_ORDER; o >= order; o--) {
    const mt = findFallback(zone, o, startMt);
    if (mt < 0) continue;
    const pfn = firstFree(mem, zone, o, mt);
    if (canSteal(o, startMt)) stealSuitableFallback(mem, zone, pfn, o, startMt, true);
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
  const minOrder = allocFlags & ALLOC.NOFRAGMENT ? pageblock_order : order;
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
      traceExtfrag(mem, pfn, order, o, startMt, mt);
      return rmqueueSmallest(mem, zone, order, startMt);
    }
  }
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

/** __rmqueue(): a free block of `order` for `mt`, falling back to other types. */
export function rmqueue(
  mem: Memory,
  zone: Zone,
  order: number,
  mt: number,
  allocFlags: number,
): number {
  let pfn = rmqueueSmallest(mem, zone, order, mt);
  if (pfn >= 0 || mt >= MIGRATE_PCPTYPES) return pfn;
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

/**
 * __zone_watermark_ok(): would `zone` stay above `mark` (plus the lowmem reserve against
 * `highestZoneidx`) after allocating a block of `order`, and does it have such a block?
 */
export function zoneWatermarkOk(
  zone: Zone,
  order: number,
  mark: number,
  highestZoneidx: number,
  allocFlags: number,
  freePages: number = zone.nrFreePages,
): boolean {
  let min = mark;
  freePages -= (1 << order) - 1;
  if (allocFlags & ALLOC_RESERVES) {
    if (allocFlags & ALLOC.MIN_RESERVE) {
      min -= Math.floor(min / 2);
      if (allocFlags & ALLOC.NON_BLOCK) min -= Math.floor(min / 4);
    }
    if (allocFlags & ALLOC.OOM) min -= Math.floor(min / 2);
  }
  if (freePages <= min + zone.lowmemReserve[highestZoneidx]) return false;
  if (order === 0) return true;
  for (let o = order; o <= MAX_PAGE_ORDER; o++) {
    if (zone.nrFree[o] === 0) continue;
    for (let mt = 0; mt < MIGRATE_PCPTYPES; mt++)
      if (zone.nrFreeList[o * MIGRATE_TYPES + mt] > 0) return true;
    if (
      allocFlags & (ALLOC.HIGHATOMIC | ALLOC.OOM) &&
      zone.nrFreeList[o * MIGRATE_TYPES + MIGRATE.HIGHATOMIC] > 0
    )
      return true;
  }
  return false;
}

/** prep_new_page(): make a just-removed free block an allocated page (or compound page). */
function prepNewPage(mem: Memory, pfn: number, order: number, gfp: number, owner: number): void {
  const p = mem.pages;
  p.refcount[pfn] = 1;
  p.flags[pfn] = owner << OWNER_SHIFT;
  if (order > 0 && gfp & __GFP.COMP) {
    p.flags[pfn] |= 1 << PG.head;
    p.compound[pfn] = order;
    const n = 1 << order;
    for (let i = 1; i < n; i++) {
      p.compound[pfn + i] = -i;
      p.flags[pfn + i] = owner << OWNER_SHIFT;
    }
  } else if (order > 0) {
    const n = 1 << order;
    for (let i = 1; i < n; i++) p.flags[pfn + i] = owner << OWNER_SHIFT;
  }
  if (gfp & __GFP.ZERO && p.contents)
    p.contents.fill(0, pfn * PAGE_SIZE, (pfn + (1 << order)) * PAGE_SIZE);
}

/** Options of {@link allocPages}. */
export interface AllocOptions {
  /** Owner id recorded in the pages (see `OwnerTable`); default the machine's 'kernel'. */
  owner?: number;
  /** Extra ALLOC_* flags for the first attempt (compaction's capture, tests). */
  allocFlags?: number;
}

/**
 * get_page_from_freelist(): walk the zonelist from the highest allowed zone down and take
 * a block from the first zone that passes its watermark check.
 */
export function getPageFromFreelist(
  mem: Memory,
  gfp: number,
  order: number,
  allocFlags: number,
  owner: number,
): number {
  const highest = gfpZone(gfp);
  const mt = gfpMigratetype(gfp);
  const zones = mem.node.zones;
  for (;;) {
    for (let zi = Math.min(highest, zones.length - 1); zi >= 0; zi--) {
      const zone = zones[zi];
      if (zone.managedPages === 0) continue;
      if (!(allocFlags & ALLOC.NO_WATERMARKS)) {
        const mark = zone.wmarkPages(allocFlags & ALLOC.WMARK_MASK);
        if (!zoneWatermarkOk(zone, order, mark, highest, allocFlags, zone.nrFreePages)) continue;
      }
      const pfn = rmqueue(mem, zone, order, mt, allocFlags);
      if (pfn < 0) continue;
      prepNewPage(mem, pfn, order, gfp, owner);
      mem.vmstat.events[EV_PGALLOC[Math.min(zi, 3)]] += 1 << order;
      if (mem.trace.enabled.mm_page_alloc) traceAlloc(mem, pfn, order, gfp);
      return pfn;
    }
    if (!(allocFlags & ALLOC.NOFRAGMENT)) return -1;
    allocFlags &= ~ALLOC.NOFRAGMENT;
  }
}

function traceAlloc(mem: Memory, pfn: number, order: number, gfp: number): void {
  mem.trace.fire('mm_page_alloc', { pfn, order, gfp_flags: gfp, migratetype: gfpMigratetype(gfp) });
}

/**
 * alloc_flags_nofragment(): ALLOC_NOFRAGMENT when the preferred zone (the highest populated
 * zone the request may use) is Normal (6.x; v4.8 has no such flag).
 */
function allocFlagsNofragment(mem: Memory, gfp: number): number {
  const flags = gfp & __GFP.KSWAPD_RECLAIM ? ALLOC.KSWAPD : 0;
  if (mem.profile.fallback === 'v4.8') return flags;
  const zones = mem.node.zones;
  for (let zi = gfpZone(gfp); zi >= 0; zi--) {
    if (zones[zi].managedPages === 0) continue;
    return zi === ZONE.NORMAL ? flags | ALLOC.NOFRAGMENT : flags;
  }
  return flags;
}

/** gfp_to_alloc_flags() for the slow path: the min watermark and the reserves gfp allows. */
export function gfpToAllocFlags(gfp: number): number {
  let flags = ALLOC.WMARK_MIN;
  if (gfp & __GFP.HIGH) flags |= ALLOC.MIN_RESERVE;
  if (!(gfp & __GFP.DIRECT_RECLAIM)) {
    flags |= ALLOC.NON_BLOCK;
    if (!(gfp & __GFP.NOMEMALLOC)) flags |= ALLOC.HIGHATOMIC;
  }
  return flags;
}

/**
 * A slow-path step that may make an allocation succeed (direct compaction plugs in here).
 * Returns a pfn or -1.
 */
export type SlowpathHook = (gfp: number, order: number, allocFlags: number) => number;

/**
 * alloc_pages(gfp, order): the fast path at the low watermark, then the slow path at the
 * min watermark with the reserves `gfp` allows, then the hooks (direct compaction). Returns
 * the first pfn, or -1 when the allocation fails (failures are normal and counted).
 */
export function allocPages(mem: Memory, gfp: number, order: number, opts?: AllocOptions): number {
  const owner = opts?.owner ?? 1;
  const extra = opts?.allocFlags ?? 0;
  const first = ALLOC.WMARK_LOW | allocFlagsNofragment(mem, gfp) | extra;
  let pfn = getPageFromFreelist(mem, gfp, order, first, owner);
  if (pfn >= 0) return pfn;
  const slow = gfpToAllocFlags(gfp) | extra;
  pfn = getPageFromFreelist(mem, gfp, order, slow, owner);
  if (pfn >= 0) return pfn;
  for (const hook of mem.slowpath) {
    pfn = hook(gfp, order, slow);
    if (pfn >= 0) return pfn;
  }
  mem.allocFailures++;
  return -1;
}

/** Reasons free_page_is_bad() gives, or undefined when the page may be freed. */
function badPageReason(mem: Memory, pfn: number): string | undefined {
  const p = mem.pages;
  const prof = mem.profile;
  if (p.refcount[pfn] !== 0) return 'nonzero _refcount';
  const word = p.type[pfn];
  if (word !== -1 && !(prof.freeClearsPageType && word >>> 24 >= 0xf0 && word >>> 24 < 0xff))
    return 'nonzero mapcount';
  const m = p.mapping[pfn];
  if (m !== 0) {
    const resets = prof.freeResetsMapping === 'tag' ? (m & 3) !== 0 : (m & 1) !== 0;
    if (!resets) return 'non-NULL mapping';
  }
  if (p.flags[pfn] & mem.freeCheckMask) return 'PAGE_FLAGS_CHECK_AT_FREE flag(s) set';
  return undefined;
}

/** bad_page(): report and leak the page, as the kernel does. */
function badPage(mem: Memory, pfn: number, reason: string): void {
  mem.leaked.add(pfn);
  const text = `BUG: Bad page state in process mops  pfn:${pfn.toString(16).padStart(5, '0')}`;
  mem.warn('bad_page', `${text}\n(${reason})`, pfn);
}

/**
 * free_pages_prepare(): dismantle a compound page, check for a bad page, and reset what the
 * kernel resets: `mapping` (per profile), every flag but hwpoison, the page type (v6.17),
 * `private`. Returns false when a page was bad (the block is then leaked, not freed).
 */
export function freePagesPrepare(mem: Memory, pfn: number, order: number): boolean {
  const p = mem.pages;
  // The common case first: an order-0 page with nothing to reset but its flags.
  const m = p.mapping[pfn];
  const f = p.flags[pfn];
  if (
    order === 0 &&
    p.type[pfn] === -1 &&
    (m === 0 || (m & mem.freeResetMappingBits) !== 0) &&
    p.refcount[pfn] === 0 &&
    !(f & mem.freeCheckMask)
  ) {
    p.flags[pfn] = f & (1 << PG.hwpoison);
    p.mapping[pfn] = 0;
    p.priv[pfn] = 0;
    p.compound[pfn] = 0;
    return true;
  }
  return freePagesPrepareSlow(mem, pfn, order);
}

/** {@link freePagesPrepare} beyond the common case: compound pages, bad pages, types. */
function freePagesPrepareSlow(mem: Memory, pfn: number, order: number): boolean {
  const p = mem.pages;
  let ok = true;
  const n = 1 << order;
  for (let i = n - 1; i >= 0; i--) {
    const q = pfn + i;
    if (i > 0 && p.compound[q] < 0) p.compound[q] = 0;
    const reason = badPageReason(mem, q);
    if (reason) {
      badPage(mem, q, reason);
      ok = false;
    }
  }
  if (!ok) return false;
  for (let i = 0; i < n; i++) {
    const q = pfn + i;
    p.flags[q] &= 1 << PG.hwpoison;
    p.mapping[q] = 0;
    p.priv[q] = 0;
    p.type[q] = -1;
    p.compound[q] = 0;
  }
  return true;
}

/** __free_pages_ok() / free_the_page(): prepare and give the block to the buddy allocator. */
export function freeTheBlock(mem: Memory, pfn: number, order: number): void {
  if (!freePagesPrepare(mem, pfn, order)) return;
  const zone = mem.zoneOf(pfn);
  freeOneBlock(mem, zone, pfn, order, mem.pageblockMigratetype(pfn));
  mem.vmstat.events[EV_PGFREE] += 1 << order;
  if (mem.trace.enabled.mm_page_free) traceFree(mem, pfn, order);
}

function traceFree(mem: Memory, pfn: number, order: number): void {
  mem.trace.fire('mm_page_free', { pfn, order });
}

/**
 * folio_put() / put_page(): drop a reference on the folio holding `pfn`; free it on zero.
 * A put on a zero count is an MmBug.
 */
export function putPage(mem: Memory, pfn: number): void {
  const p = mem.pages;
  const c = p.compound[pfn];
  const folio = c < 0 ? pfn + c : pfn;
  const r = p.refcount[folio];
  if (r > 1) p.refcount[folio] = r - 1;
  else putLastRef(mem, folio, r);
}

/** The end of {@link putPage} when the count was 1 (free the folio) or already 0 (a bug). */
function putLastRef(mem: Memory, folio: number, r: number): void {
  const p = mem.pages;
  if (r <= 0) bug(mem, 'VM_BUG_ON_PAGE(page_ref_count(page) == 0)', folio);
  p.refcount[folio] = 0;
  freeTheBlock(mem, folio, p.flags[folio] & (1 << PG.head) ? p.compound[folio] : 0);
}

/** folio_put(): {@link putPage} on a folio (head) pfn. */
export function folioPut(mem: Memory, folio: number): void {
  if (mem.pages.compound[folio] < 0) bug(mem, 'VM_BUG_ON_FOLIO(folio_test_tail(folio))', folio);
  putPage(mem, folio);
}

/**
 * __free_pages(page, order): for a block from a non-compound high-order allocation. If
 * someone else still holds a reference on the first page, the rest is freed now and the
 * first page later, when that reference goes.
 */
export function freePages(mem: Memory, pfn: number, order: number): void {
  const p = mem.pages;
  const head = (p.flags[pfn] & (1 << PG.head)) !== 0;
  if (p.compound[pfn] < 0) bug(mem, 'VM_BUG_ON_PAGE(PageTail(page))', pfn);
  if (p.refcount[pfn] <= 0) bug(mem, 'VM_BUG_ON_PAGE(page_ref_count(page) == 0)', pfn);
  if (--p.refcount[pfn] === 0) {
    freeTheBlock(mem, pfn, head ? p.compound[pfn] : order);
  } else if (!head) {
    while (order-- > 0) freeTheBlock(mem, pfn + (1 << order), order);
  }
}

/** Blocks of each order in the zone that start a free block of at least pageblock order. */
export function freePagesInBlocks(zone: Zone): number {
  let n = 0;
  for (let o = pageblock_order; o <= MAX_PAGE_ORDER; o++) n += zone.nrFree[o] << o;
  return n;
}

export { WMARK };
