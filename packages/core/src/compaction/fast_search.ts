/**
 * The free-list searches of compaction (mm/compaction.c, v5.1 onwards; spec §8.2 a, §8.4):
 * fast_find_migrateblock() picks a migration source block that already holds free pages,
 * fast_isolate_freepages() picks a migration target high in the zone, both by peeking at the
 * MOVABLE free lists instead of walking pageblocks. Each search is bounded by
 * freelist_scan_limit(), which halves after every failure, and rotates the list it read so
 * the next search starts with entries it has not seen.
 * @module
 */

import {
  MIGRATE,
  MIGRATE_TYPES,
  PAGE_ALLOC_COSTLY_ORDER,
  pageblock_nr_pages,
} from '../memory/constants.js';
import type { Memory } from '../memory/mem.js';
import { MIGRATE_MODE } from '../migrate/types.js';
import {
  isolateFreePage,
  isolateFreepagesBlock,
  keepFreeTarget,
  suitableMigrationTarget,
} from './free_scanner.js';
import {
  pageblockEndPfn,
  pageblockPfnToPage,
  pageblockStartPfn,
  zoneCompactState,
} from './state.js';
import { COMPACT_CLUSTER_MAX, type CompactControl, FAST_START_USED } from './types.js';

/** freelist_scan_limit(): 33 entries, halved by every consecutive failed search. */
export function freelistScanLimit(cc: CompactControl): number {
  return (COMPACT_CLUSTER_MAX >>> Math.min(31, cc.fastSearchFail)) + 1;
}

/** The MOVABLE free list of `order` in the zone being compacted. */
function movableList(cc: CompactControl, order: number): number {
  return cc.zone.freeList[order * MIGRATE_TYPES + MIGRATE.MOVABLE];
}

/** update_fast_start_pfn(): remember the lowest block the fast search picked. */
function updateFastStartPfn(cc: CompactControl, pfn: number): void {
  if (cc.fastStartPfn === FAST_START_USED) return;
  if (!cc.fastStartPfn || pfn < cc.fastStartPfn) cc.fastStartPfn = pfn;
}

/** reinit_migrate_pfn(): after a failed search, restart the linear scan at that block once. */
function reinitMigratePfn(cc: CompactControl): number {
  if (!cc.fastStartPfn || cc.fastStartPfn === FAST_START_USED) return cc.migratePfn;
  cc.migratePfn = cc.fastStartPfn;
  cc.fastStartPfn = FAST_START_USED;
  return cc.migratePfn;
}

/**
 * fast_find_migrateblock(): where the migrate scanner starts. For a costly order, look at
 * the MOVABLE free lists of orders `order - 1` down to PAGE_ALLOC_COSTLY_ORDER for a free
 * block low in the zone (the first half of the scan space when the scanner starts, else
 * the first eighth) whose pageblock is not marked skip: migrating the rest of that block
 * frees a large block sooner. Returns the pfn to scan from.
 */
export function fastFindMigrateblock(mem: Memory, cc: CompactControl): number {
  const prof = mem.profile.compaction;
  const zone = cc.zone;
  let pfn = cc.migratePfn;
  // Skip hints are what keeps the fast search from picking the same block again.
  if (!prof.fastSearch || cc.ignoreSkipHint) return pfn;
  // A block that must be finished is not traded for another.
  if (prof.fastMigrateHonoursFinish && cc.finishPageblock) return pfn;
  // Mid-block: a scan restarted after COMPACT_CLUSTER_MAX pages continues where it was.
  if (pfn !== zone.zoneStartPfn && pfn !== pageblockStartPfn(pfn)) return pfn;
  // Small orders: the few pages to migrate do not justify emptying a large block.
  if (cc.order <= PAGE_ALLOC_COSTLY_ORDER) return pfn;
  // Only movable requests may quickly empty a MOVABLE block; the others might pin it.
  if (cc.directCompaction && cc.migratetype !== MIGRATE.MOVABLE) return pfn;

  const limit = freelistScanLimit(cc);
  let distance = (cc.freePfn - cc.migratePfn) >> 1;
  if (cc.migratePfn !== zone.zoneStartPfn) distance >>= 2;
  const highPfn = pageblockStartPfn(cc.migratePfn + distance);
  const lists = mem.pages.lists;
  let nrScanned = 0;
  let found = false;
  for (
    let order = cc.order - 1;
    order >= PAGE_ALLOC_COSTLY_ORDER && !found && nrScanned < limit;
    order--
  ) {
    if (!zone.nrFree[order]) continue;
    const list = movableList(cc, order);
    for (let free = lists.first(list); free !== -1; free = lists.nextOf(free)) {
      if (nrScanned++ >= limit) {
        lists.rotateToBack(list, free);
        break;
      }
      if (free >= highPfn) continue;
      // Skipped recently: leave it (the kernel's list walk cannot reorder it safely).
      if (mem.pageblockSkip(free)) continue;
      lists.rotateToBack(list, free);
      updateFastStartPfn(cc, free);
      pfn = Math.max(pageblockStartPfn(free), zone.zoneStartPfn);
      cc.fastSearchFail = 0;
      found = true;
      if (prof.fastMigrateSetsSkip) mem.setPageblockSkip(free, true);
      break;
    }
  }
  cc.totalMigrateScanned += nrScanned;
  if (!found) {
    cc.fastSearchFail++;
    pfn = reinitMigratePfn(cc);
  }
  return pfn;
}

/**
 * next_search_order(): the round-robin over orders below cc.order. Returns -1 once the
 * search has come back to where it started (and moves that start one order down).
 */
function nextSearchOrder(cc: CompactControl, order: number): number {
  let o = order - 1;
  if (o < 0) o = cc.order - 1;
  if (o === cc.searchOrder) {
    cc.searchOrder--;
    if (cc.searchOrder < 0) cc.searchOrder = cc.order - 1;
    return -1;
  }
  return o;
}

/**
 * fast_isolate_around(): after the fast search isolated a block at `pfn`, take the other
 * free pages of its pageblock too, unless enough targets are held already or this is async
 * direct compaction (which should scan as little as possible).
 */
function fastIsolateAround(mem: Memory, cc: CompactControl, pfn: number, nrIsolated: number): void {
  if (cc.nrFreepages >= cc.nrMigratepages) return;
  if (cc.directCompaction && cc.mode === MIGRATE_MODE.ASYNC) return;
  const zone = cc.zone;
  const start = Math.max(pageblockStartPfn(pfn), zone.zoneStartPfn);
  const end = Math.min(pageblockEndPfn(pfn), zone.zoneEndPfn);
  if (!pageblockPfnToPage(zone, start)) return;
  const around = mem.profile.compaction.fastIsolateAround;
  if (around === 'whole_scanned') {
    const [, reached] = isolateFreepagesBlock(mem, cc, start, end, 1);
    // Full or nearly full: not worth scanning again soon.
    if (reached === end && !cc.noSetSkipHint) mem.setPageblockSkip(start, true);
    return;
  }
  if (around === 'whole_short') isolateFreepagesBlock(mem, cc, start, end, 1);
  else {
    // v6.0: before the isolated block, then after it.
    if (start !== pfn) {
      isolateFreepagesBlock(mem, cc, start, pfn, 1);
      if (cc.nrFreepages >= cc.nrMigratepages) return;
    }
    const after = pfn + nrIsolated;
    if (after < end) isolateFreepagesBlock(mem, cc, after, end, 1);
  }
  if (cc.nrFreepages < cc.nrMigratepages) mem.setPageblockSkip(start, true);
}

/**
 * fast_isolate_freepages(): for a target order > 0, search the MOVABLE free lists of the
 * orders below it (round-robin from cc.searchOrder), last entries first, for a free block in
 * the top quarter of the space between the scanners, settling for the top half. Isolates it
 * and its pageblock's other free pages. When starting a scan and finding nothing, moves the
 * free scanner to the highest block seen. Nothing is isolated for order ≤ 0.
 */
export function fastIsolateFreepages(mem: Memory, cc: CompactControl): void {
  const prof = mem.profile.compaction;
  if (!prof.fastSearch || cc.order <= 0) return;
  const zone = cc.zone;
  const s = zoneCompactState(zone);
  const lists = mem.pages.lists;
  let limit = Math.max(1, freelistScanLimit(cc) >> 1);
  let scanStart = false;
  // Starting the scan: search deeper, and fall back to the highest pfn seen.
  if (cc.freePfn >= s.initFreePfn) {
    limit = pageblock_nr_pages >> 1;
    scanStart = true;
  }
  // Preferred: the top quarter of the scan space; acceptable: the top half.
  const distance = cc.freePfn - cc.migratePfn;
  let lowPfn = pageblockStartPfn(cc.freePfn - (distance >> 2));
  const minPfn = pageblockStartPfn(cc.freePfn - (distance >> 1));
  if (minPfn > lowPfn) lowPfn = minPfn;
  let highest = 0;
  let nrScanned = 0;
  let totalIsolated = 0;
  let nrIsolated = 0;
  let page = -1;
  cc.searchOrder = Math.min(cc.order - 1, cc.searchOrder);
  for (let order = cc.searchOrder; page < 0 && order >= 0; order = nextSearchOrder(cc, order)) {
    if (!zone.nrFree[order]) continue;
    const list = movableList(cc, order);
    let orderScanned = 0;
    let highPfn = 0;
    let free = lists.last(list);
    for (; free !== -1; free = lists.prevOf(free)) {
      orderScanned++;
      nrScanned++;
      if (free >= highest) highest = Math.max(pageblockStartPfn(free), zone.zoneStartPfn);
      if (free >= lowPfn) {
        cc.fastSearchFail = 0;
        cc.searchOrder = order;
        page = free;
        break;
      }
      if (free >= minPfn && free > highPfn) {
        highPfn = free;
        // A candidate shortens the search.
        limit >>= 1;
      }
      if (orderScanned >= limit) break;
    }
    if (page < 0 && highPfn) {
      page = highPfn;
      free = highPfn;
    }
    // The next search starts with the entries this one did not reach.
    if (free !== -1) lists.rotateToFront(list, free);
    if (page >= 0) {
      if (isolateFreePage(mem, page, order)) {
        nrIsolated = 1 << order;
        if (prof.freeScannedCountsBlock) nrScanned += nrIsolated - 1;
        totalIsolated += nrIsolated;
        keepFreeTarget(mem, cc, page, order);
        mem.vmstat.count('compact_isolated', nrIsolated);
      } else {
        // The zone is at its watermark: give up the search.
        order = cc.searchOrder + 1;
        page = -1;
      }
    }
    if (cc.nrFreepages >= cc.nrMigratepages) break;
    if (orderScanned >= limit) limit = Math.max(1, limit >> 1);
  }
  const trace = mem.trace;
  if (prof.fastIsolateTraced && trace.enabled.mm_compaction_fast_isolate_freepages)
    trace.fire('mm_compaction_fast_isolate_freepages', {
      start_pfn: minPfn,
      end_pfn: cc.freePfn,
      nr_scanned: nrScanned,
      nr_taken: totalIsolated,
    });
  if (page < 0) {
    cc.fastSearchFail++;
    if (scanStart) {
      // Use the highest block seen; direct compaction is pessimistic and takes min_pfn.
      // Above min_pfn only, or the scanners would meet early. Nothing seen leaves highest
      // at 0, which a min_pfn of 0 (a zone starting at pfn 0) takes as well.
      if (highest >= minPfn) {
        page = highest;
        cc.freePfn = highest;
      } else if (cc.directCompaction && pageblockPfnToPage(zone, minPfn)) {
        // pfn_valid(min_pfn) and pageblock_pfn_to_page(): not a block of the zone's hole.
        page = minPfn;
        cc.freePfn = minPfn;
        if (prof.fastIsolateTraced && !suitableMigrationTarget(mem, cc, minPfn)) page = -1;
      }
    }
  }
  if (highest && highest >= s.cachedFreePfn) s.cachedFreePfn = highest - pageblock_nr_pages;
  cc.totalFreeScanned += nrScanned;
  if (page >= 0) fastIsolateAround(mem, cc, page, nrIsolated);
}
