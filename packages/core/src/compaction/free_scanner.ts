/**
 * The free scanner and the migration-target callbacks: isolate_freepages(),
 * isolate_freepages_block(), __isolate_free_page(), compaction_alloc(), compaction_free(),
 * and the release of unused targets (mm/compaction.c, mm/page_alloc.c; spec §8.4,
 * compaction-by-profile T7, T8).
 * @module
 */

import { delFromFreeList } from '../buddy/free_area.js';
import { freePagesPrepare, freeTheBlock } from '../buddy/free_page.js';
import { ALLOC } from '../buddy/gfp.js';
import { zoneWatermarkOk } from '../buddy/page_alloc.js';
import { moveFreepagesBlock } from '../buddy/rmqueue.js';
import {
  MAX_PAGE_ORDER,
  MIGRATE,
  MIGRATE_PCPTYPES,
  PAGE_ALLOC_COSTLY_ORDER,
  pageblock_nr_pages,
  pageblock_order,
} from '../memory/constants.js';
import type { Memory } from '../memory/mem.js';
import { MIGRATE_MODE } from '../migrate/types.js';
import { OWNER_SHIFT, PG, PGTY } from '../page/flags.js';
import type { CaptureControl } from './capture.js';
import { fastIsolateFreepages } from './fast_search.js';
import { isolationSuitable } from './migrate_scanner.js';
import {
  pageblockEndPfn,
  pageblockPfnToPage,
  pageblockStartPfn,
  zoneCompactState,
} from './state.js';
import { COMPACT_CLUSTER_MAX, type CompactControl, fatalPending } from './types.js';

/** suitable_migration_target(): judge a block by its first page, then its type. */
export function suitableMigrationTarget(mem: Memory, cc: CompactControl, pfn: number): boolean {
  const p = mem.pages;
  const limit =
    mem.profile.compaction.freeStore === 'per_order' && cc.order > 0 ? cc.order : pageblock_order;
  if (p.type[pfn] >>> 24 === PGTY.buddy && p.priv[pfn] >= limit) return false;
  if (cc.ignoreBlockSuitable) return true;
  const mt = mem.pageblockMigratetype(pfn);
  return mt === MIGRATE.MOVABLE || mt === MIGRATE.CMA;
}

/**
 * __isolate_free_page(): take a free block out of the buddy allocator if the zone stays
 * above its (unboosted) min watermark (v4.8: low) plus the block; a block of at least half
 * a pageblock turns its pageblocks MOVABLE. Returns the pages taken, or 0.
 */
export function isolateFreePage(mem: Memory, pfn: number, order: number): number {
  const zone = mem.zoneOf(pfn);
  const mt = mem.pageblockMigratetype(pfn);
  if (mt !== MIGRATE.ISOLATE) {
    const low = mem.profile.compaction.isolateFreeLowWmark;
    const mark = zone.watermark[low ? 1 : 0] + (1 << order);
    if (!zoneWatermarkOk(zone, 0, mark, 0, low ? 0 : ALLOC.CMA)) return 0;
  }
  delFromFreeList(mem, zone, pfn);
  if (order >= pageblock_order - 1) {
    const moves = mem.profile.compaction.isolateFreeMovesFreepages;
    for (let q = pfn; q < pfn + (1 << order); q += pageblock_nr_pages) {
      const bmt = mem.pageblockMigratetype(q);
      if (bmt >= MIGRATE_PCPTYPES) continue;
      // v6.17: the rest of an order-8 block's pageblock goes to the MOVABLE lists too.
      if (moves && moveFreepagesBlock(mem, zone, q, MIGRATE.MOVABLE) === undefined) continue;
      mem.setPageblockMigratetype(q, MIGRATE.MOVABLE);
    }
  }
  return 1 << order;
}

/**
 * An isolated free block of `order` at `pfn` joins cc->freepages (its order kept in
 * `private`): the one list (v4.8–v6.3) or the list of its order (v6.17).
 */
export function keepFreeTarget(mem: Memory, cc: CompactControl, pfn: number, order: number): void {
  mem.pages.priv[pfn] = order;
  const perOrder = mem.profile.compaction.freeStore === 'per_order';
  mem.pages.lists.addTail(cc.freepages[perOrder ? order : 0], pfn);
  cc.nrFreepages += 1 << order;
}

/**
 * isolate_freepages_block(): isolate free blocks in [start, end) with the given stride until
 * enough targets are held. Returns [pages isolated, pfn reached].
 */
export function isolateFreepagesBlock(
  mem: Memory,
  cc: CompactControl,
  start: number,
  end: number,
  stride: number,
): [number, number] {
  const p = mem.pages;
  const prof = mem.profile.compaction;
  let nrScanned = 0;
  let total = 0;
  let pfn = start;
  for (; pfn < end; pfn += stride) {
    // compact_unlock_should_abort(): every SWAP_CLUSTER_MAX pfns, stop on a fatal signal.
    if (pfn % COMPACT_CLUSTER_MAX === 0 && fatalPending(cc)) {
      cc.contended = true;
      break;
    }
    nrScanned++;
    if (p.flags[pfn] & (1 << PG.head)) {
      const order = p.compound[pfn];
      // A compound page reaching past `end` is not jumped over where the jump is kept
      // within the range: the scan goes on through its tails (none of them free).
      if (!prof.freeCompoundJumpWithinBlock || pfn + (1 << order) <= end) {
        if (prof.countSkippedAsScanned) nrScanned += (1 << order) - 1;
        pfn += (1 << order) - 1;
      }
      continue;
    }
    if (p.type[pfn] >>> 24 !== PGTY.buddy) continue;
    const order = p.priv[pfn];
    const isolated = isolateFreePage(mem, pfn, order);
    if (!isolated) break;
    keepFreeTarget(mem, cc, pfn, order);
    if (prof.freeScannedCountsBlock) nrScanned += isolated - 1;
    total += isolated;
    if (cc.nrMigratepages <= cc.nrFreepages) {
      pfn += isolated;
      break;
    }
    pfn += isolated - 1;
  }
  if (pfn > end) pfn = end;
  const trace = mem.trace;
  if (trace.enabled.mm_compaction_isolate_freepages)
    trace.fire('mm_compaction_isolate_freepages', {
      start_pfn: start,
      end_pfn: pfn,
      nr_scanned: nrScanned,
      nr_taken: total,
    });
  cc.totalFreeScanned += nrScanned;
  if (prof.scannersV48) mem.vmstat.count('compact_free_scanned', nrScanned);
  if (total) mem.vmstat.count('compact_isolated', total);
  return [total, pfn];
}

/**
 * split_map_pages() (v4.8–v6.3): make each isolated block allocated and split it into
 * order-0 pages with refcount 1, each added at the head of the list, so the list hands out
 * the highest pfns first.
 */
function splitMapPages(mem: Memory, cc: CompactControl): void {
  const p = mem.pages;
  const lists = p.lists;
  const list = cc.freepages[0];
  const tmp = lists.newList();
  const owner = mem.owners.register('compaction') << OWNER_SHIFT;
  for (let pfn = lists.first(list); pfn !== -1; pfn = lists.first(list)) {
    lists.del(pfn);
    const order = p.priv[pfn];
    p.priv[pfn] = 0;
    for (let i = 0; i < 1 << order; i++) {
      p.refcount[pfn + i] = 1;
      p.flags[pfn + i] = owner;
      lists.addHead(tmp, pfn + i);
    }
  }
  lists.spliceHead(tmp, list);
  lists.freeList(tmp);
}

/**
 * isolate_freepages(): migration targets, from the free-list search (fast_isolate_freepages)
 * or else the linear free scanner, from cc.freePfn down to the migrate scanner.
 */
export function isolateFreepages(mem: Memory, cc: CompactControl): void {
  // A short search of the free lists first; the linear scan only if it found nothing.
  fastIsolateFreepages(mem, cc);
  if (cc.nrFreepages === 0) isolateFreepagesLinear(mem, cc);
  if (mem.profile.compaction.freeStore === 'split_list') splitMapPages(mem, cc);
}

/** The linear part of isolate_freepages(): pageblocks from cc.freePfn down. */
function isolateFreepagesLinear(mem: Memory, cc: CompactControl): void {
  const zone = cc.zone;
  let isolateStart = cc.freePfn;
  let blockStart = pageblockStartPfn(isolateStart);
  let blockEnd = Math.min(blockStart + pageblock_nr_pages, zone.zoneEndPfn);
  const lowPfn = pageblockEndPfn(cc.migratePfn);
  const v48 = mem.profile.compaction.scannersV48;
  let stride = cc.mode === MIGRATE_MODE.ASYNC && !v48 ? COMPACT_CLUSTER_MAX : 1;
  const s = zoneCompactState(zone);
  for (
    ;
    blockStart >= lowPfn;
    blockEnd = blockStart, blockStart -= pageblock_nr_pages, isolateStart = blockStart
  ) {
    if (blockStart < zone.zoneStartPfn) break;
    // pageblock_pfn_to_page(): a hole (no memmap) is passed over first, even when block
    // suitability is ignored (v6.17's skip_offline_sections_reverse() lands on the same block).
    if (!pageblockPfnToPage(zone, blockStart)) continue;
    if (!suitableMigrationTarget(mem, cc, blockStart)) continue;
    if (!isolationSuitable(mem, cc, blockStart)) continue;
    const firstScanned = isolateStart;
    const [nrIsolated, reached] = isolateFreepagesBlock(mem, cc, isolateStart, blockEnd, stride);
    isolateStart = reached;
    if (
      reached === blockEnd &&
      !cc.noSetSkipHint &&
      (!cc.ignoreSkipHint || mem.profile.compaction.setsSkipWhenIgnoring) &&
      !(v48 && nrIsolated)
    ) {
      // update_pageblock_skip(): the whole block was scanned (v4.8: and nothing isolated;
      // the cached position is the first pfn it scanned).
      mem.setPageblockSkip(blockStart, true);
      const next = v48
        ? firstScanned
        : mem.profile.compaction.freeStore === 'per_order'
          ? blockStart - pageblock_nr_pages
          : blockStart;
      if (next < s.cachedFreePfn) s.cachedFreePfn = next;
    }
    if (cc.nrFreepages >= cc.nrMigratepages) {
      if (isolateStart >= blockEnd) isolateStart = blockStart - pageblock_nr_pages;
      break;
    }
    if (isolateStart < blockEnd) break;
    // 6.x: after a block that gave nothing, the next is scanned at a growing stride; v4.8's
    // isolate_freepages_block() visits every pfn.
    if (!v48) stride = nrIsolated ? 1 : Math.min(COMPACT_CLUSTER_MAX, stride << 1);
  }
  cc.freePfn = isolateStart;
}

/** post_alloc_hook() for a target handed out in v6.17: refcount 1, owner 'compaction'. */
function prepTarget(mem: Memory, pfn: number): void {
  mem.pages.refcount[pfn] = 1;
  mem.pages.flags[pfn] = mem.owners.register('compaction') << OWNER_SHIFT;
  mem.pages.priv[pfn] = 0;
}

/** compaction_alloc(src): a migration target, isolating more free pages if needed; -1 if none. */
export function compactionAlloc(mem: Memory, cc: CompactControl, order = 0): number {
  const lists = mem.pages.lists;
  if (mem.profile.compaction.freeStore === 'split_list') {
    const list = cc.freepages[0];
    if (lists.isEmpty(list)) {
      // v4.8 isolates no more once contended.
      if (!(cc.contended && mem.profile.compaction.contendedFirst)) isolateFreepages(mem, cc);
      if (lists.isEmpty(list)) return -1;
    }
    const dst = lists.first(list);
    lists.del(dst);
    cc.nrFreepages--;
    return dst;
  }
  let k = order;
  while (k <= MAX_PAGE_ORDER && lists.isEmpty(cc.freepages[k])) k++;
  if (k > MAX_PAGE_ORDER) {
    isolateFreepages(mem, cc);
    k = order;
    while (k <= MAX_PAGE_ORDER && lists.isEmpty(cc.freepages[k])) k++;
    if (k > MAX_PAGE_ORDER) return -1;
  }
  const dst = lists.first(cc.freepages[k]);
  lists.del(dst);
  // Split: the upper halves go back on the lower lists; the lowest pfn is handed out.
  while (k > order) {
    k--;
    mem.pages.priv[dst + (1 << k)] = k;
    lists.addHead(cc.freepages[k], dst + (1 << k));
  }
  prepTarget(mem, dst);
  cc.nrFreepages -= 1 << order;
  cc.nrMigratepages -= 1 << order;
  return dst;
}

/** compaction_free(dst): an unused target goes back to the compaction free list. */
export function compactionFree(mem: Memory, cc: CompactControl, dst: number, order = 0): void {
  const lists = mem.pages.lists;
  if (mem.profile.compaction.freeStore === 'split_list') {
    lists.addHead(cc.freepages[0], dst);
    cc.nrFreepages++;
    return;
  }
  if (--mem.pages.refcount[dst] === 0) {
    freePagesPrepare(mem, dst, order);
    mem.pages.priv[dst] = order;
    lists.addHead(cc.freepages[order], dst);
    cc.nrFreepages += 1 << order;
  }
  cc.nrMigratepages += 1 << order;
}

/**
 * release_freepages() / release_free_list(): give every unused target back to the buddy
 * allocator. Returns the highest pfn released (0 if none). With `capture` (a direct
 * compaction), a block of an order the per-CPU lists do not take (only v6.17's per-order
 * targets have one) is offered to it; the capture is closed afterwards.
 */
export function releaseFreepages(
  mem: Memory,
  cc: CompactControl,
  capture?: CaptureControl,
): number {
  const lists = mem.pages.lists;
  const p = mem.pages;
  let high = 0;
  for (let k = 0; k < cc.freepages.length; k++) {
    const list = cc.freepages[k];
    for (let pfn = lists.first(list); pfn !== -1; pfn = lists.first(list)) {
      lists.del(pfn);
      if (pfn > high) high = pfn;
      const order = mem.profile.compaction.freeStore === 'per_order' ? p.priv[pfn] : 0;
      p.priv[pfn] = 0;
      p.refcount[pfn] = 0;
      // pcp_allowed_order(): such a block goes to the per-CPU lists, not past capture.
      if (capture) capture.open = order > PAGE_ALLOC_COSTLY_ORDER && order !== pageblock_order;
      freeTheBlock(mem, pfn, order);
    }
  }
  if (capture) capture.open = false;
  cc.nrFreepages = 0;
  return high;
}
