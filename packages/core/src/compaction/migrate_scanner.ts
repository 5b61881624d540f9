/**
 * The migrate scanner: isolate_migratepages() and isolate_migratepages_block()
 * (mm/compaction.c; spec §8.3, compaction-by-profile T5, T6). mops has no LRU lists: the
 * scanner isolates movable_ops pages and skips everything else as the kernel's
 * non-LRU branch does.
 * @module
 */

import { MIGRATE, pageblock_nr_pages, pageblock_order } from '../memory/constants.js';
import type { Memory } from '../memory/mem.js';
import { ISOLATE_PENDING } from '../migrate/callbacks.js';
import {
  ISOLATE_AS_TASK,
  isolatedOk,
  isolateMovablePage,
  isolateMovablePageFast,
  isolateMovablePageResume,
} from '../migrate/isolate.js';
import { page_has_movable_ops } from '../migrate/movable.js';
import { putbackMovablePages } from '../migrate/putback.js';
import { ISOLATE, MIGRATE_MODE } from '../migrate/types.js';
import { ISOLATED, PG, PGTY } from '../page/flags.js';
import type { Kctx } from '../page/lock.js';
import { Deadlock } from '../sched/deadlock.js';
import type { KernelGen } from '../sched/types.js';
import { NS } from '../vmstat/vmstat.js';
import { fastFindMigrateblock } from './fast_search.js';
import {
  pageblockEndPfn,
  pageblockPfnToPage,
  pageblockSkipPersistent,
  pageblockStartPfn,
  zoneCompactState,
} from './state.js';
import { COMPACT_CLUSTER_MAX, type CompactControl, fatalPending } from './types.js';

/** `isolate_migrate_t`. */
export const ISOLATE_RESULT = { ABORT: 0, NONE: 1, SUCCESS: 2 } as const;

/** isolation_suitable(): the block's skip hint, unless ignored. */
export function isolationSuitable(mem: Memory, cc: CompactControl, pfn: number): boolean {
  return cc.ignoreSkipHint || !mem.pageblockSkip(pfn);
}

/** update_cached_migrate(): move the cached migrate positions past a scanned block. */
function updateCachedMigrate(cc: CompactControl, pfn: number): void {
  if (!cc.noSetSkipHint) raiseCachedMigrate(cc, pageblockEndPfn(pfn));
}

/** Raise the async (and, for a sync compaction, the sync) cached migrate position to `pfn`. */
function raiseCachedMigrate(cc: CompactControl, pfn: number): void {
  const s = zoneCompactState(cc.zone);
  if (pfn > s.cachedMigratePfn[0]) s.cachedMigratePfn[0] = pfn;
  if (cc.mode !== MIGRATE_MODE.ASYNC && pfn > s.cachedMigratePfn[1]) s.cachedMigratePfn[1] = pfn;
}

/** suitable_migration_source(). */
function suitableMigrationSource(mem: Memory, cc: CompactControl, pfn: number): boolean {
  if (pageblockSkipPersistent(mem, pfn)) return false;
  const mt = mem.pageblockMigratetype(pfn);
  const movableBlock = mt === MIGRATE.MOVABLE || mt === MIGRATE.CMA;
  if (mem.profile.compaction.asyncSource === 'any_async')
    return cc.mode !== MIGRATE_MODE.ASYNC || movableBlock;
  if (cc.mode !== MIGRATE_MODE.ASYNC || !cc.directCompaction) return true;
  return cc.migratetype === MIGRATE.MOVABLE ? movableBlock : mt === cc.migratetype;
}

/**
 * skip_isolation_on_order() (v6.17): a compound page of this order cannot help a target of
 * `target` (-1: compact everything), or is a whole pageblock.
 */
function skipIsolationOnOrder(order: number, target: number): boolean {
  return (target !== -1 && order >= target) || order >= pageblock_order;
}

/** block_end_pfn(pfn, order): the end of the order-aligned block holding pfn. */
function orderBlockEnd(pfn: number, order: number): number {
  const size = 1 << Math.max(order, 0);
  return (pfn + size) & ~(size - 1);
}

/**
 * isolate_migratepages_block(): scan [lowPfn, endPfn) isolating movable_ops pages onto
 * cc.migratepages, up to COMPACT_CLUSTER_MAX. Returns true to abort (a fatal signal).
 */
export function* isolateMigratepagesBlock(
  k: Kctx,
  cc: CompactControl,
  lowPfn: number,
  endPfn: number,
  mode: number,
): KernelGen<boolean> {
  const { mem, sched } = k;
  const p = mem.pages;
  const prof = mem.profile.compaction;
  const startPfn = lowPfn;
  const lists = p.lists;
  let nrScanned = 0;
  let nrIsolated = 0;
  let validBlock = -1;
  const skipOnFailure = cc.directCompaction && cc.mode === MIGRATE_MODE.ASYNC;
  const countSkipped = prof.countSkippedAsScanned;
  const type = p.type;
  const priv = p.priv;
  let nextSkipPfn = skipOnFailure ? orderBlockEnd(lowPfn, cc.order) : 0;
  if (mem.profile.movableCountedIsolated && (yield* throttleIsolation(k, cc))) return true;
  cc.migratePfn = lowPfn;
  for (; lowPfn < endPfn; lowPfn++) {
    if (skipOnFailure && lowPfn >= nextSkipPfn) {
      if (nrIsolated) break;
      nextSkipPfn = orderBlockEnd(lowPfn, cc.order);
    }
    // Every COMPACT_CLUSTER_MAX pfns: drop the LRU lock and give up on a fatal signal.
    if (lowPfn % COMPACT_CLUSTER_MAX === 0 && fatalPending(cc)) {
      cc.contended = true;
      if (prof.contendedFirst) break;
      // fatal_pending: -EINTR, past the skip hint and the tracepoint.
      cc.totalMigrateScanned += nrScanned;
      if (nrIsolated) mem.vmstat.count('compact_isolated', nrIsolated);
      cc.migratePfn = lowPfn;
      return true;
    }
    nrScanned++;
    if (validBlock < 0) {
      // v4.8: the first pfn scanned (the caller tested the block's hint).
      if (prof.scannersV48) validBlock = lowPfn;
      else if (
        lowPfn % pageblock_nr_pages === 0 ||
        (prof.skipCheckAtZoneStart && lowPfn === cc.zone.zoneStartPfn)
      ) {
        if (!isolationSuitable(mem, cc, lowPfn)) {
          lowPfn = endPfn;
          break;
        }
        validBlock = lowPfn;
      }
    }
    if (type[lowPfn] >>> 24 === PGTY.buddy) {
      // Skip free pages by their order (read without the zone lock).
      const order = priv[lowPfn];
      if (order > 0 && order <= 10) {
        if (countSkipped) nrScanned += (1 << order) - 1;
        lowPfn += (1 << order) - 1;
      }
      continue;
    }
    let failed = true;
    if (p.flags[lowPfn] & (1 << PG.head)) {
      const order = p.compound[lowPfn];
      if (!prof.compoundSkipByOrder || skipIsolationOnOrder(order, cc.order)) {
        if (countSkipped) nrScanned += (1 << order) - 1;
        lowPfn += (1 << order) - 1;
      }
      // v6.17: a smaller compound page goes the LRU way, which mops does not model (no LRU
      // folios; its drivers publish order-0 pages): it fails here, and its tail pages after
      // it, one by one.
    } else if (!(p.flags[lowPfn] & (1 << PG.lru)) && p.compound[lowPfn] >= 0) {
      // A non-LRU page: isolate it if the lockless peek says movable and not isolated;
      // the isolation function settles any race under the page lock.
      if (page_has_movable_ops(mem, lowPfn) && !(p.flags[lowPfn] & ISOLATED)) {
        if (sched.preemptible) yield { op: 'isolate_movable_page', pfn: lowPfn };
        let r = isolateMovablePageFast(k, lowPfn, mode);
        if (r === ISOLATE_AS_TASK) r = yield* isolateMovablePage(k, lowPfn, mode);
        else if (r === ISOLATE_PENDING) r = yield* isolateMovablePageResume(k, lowPfn);
        if (isolatedOk(r)) {
          lists.addHead(cc.migratepages, lowPfn);
          cc.nrMigratepages++;
          nrIsolated++;
          failed = false;
          if (
            cc.nrMigratepages >= COMPACT_CLUSTER_MAX &&
            (prof.scannersV48 || (!cc.finishPageblock && !cc.contended))
          ) {
            lowPfn++;
            break;
          }
        }
      }
    }
    if (!failed || !skipOnFailure) continue;
    // Async direct compaction: a failure means this cc->order block cannot become free;
    // release what was isolated in it and skip to the next one.
    if (nrIsolated) {
      acctIsolated(mem, cc);
      yield* putbackMovablePages(k, cc.migratepages);
      cc.nrMigratepages = 0;
      nrIsolated = 0;
    }
    if (lowPfn < nextSkipPfn) {
      lowPfn = nextSkipPfn - 1;
      nextSkipPfn += 1 << Math.max(cc.order, 0);
    }
  }
  if (lowPfn > endPfn) lowPfn = endPfn;
  if (prof.scannersV48) {
    // update_pageblock_skip(): only a block scanned to its end without isolating anything.
    if (lowPfn === endPfn && !nrIsolated && !cc.ignoreSkipHint && validBlock >= 0) {
      mem.setPageblockSkip(validBlock, true);
      raiseCachedMigrate(cc, validBlock);
    }
  } else if (lowPfn === endPfn && (!nrIsolated || cc.finishPageblock)) {
    // Also after giving up a block marked skip (no valid page then, so no new mark): the
    // cached positions still move past it.
    const setSkip = !cc.noSetSkipHint && (!cc.ignoreSkipHint || prof.setsSkipWhenIgnoring);
    if (setSkip && validBlock >= 0) mem.setPageblockSkip(validBlock, true);
    if (setSkip) updateCachedMigrate(cc, lowPfn);
  }
  const trace = mem.trace;
  if (trace.enabled.mm_compaction_isolate_migratepages)
    trace.fire('mm_compaction_isolate_migratepages', {
      start_pfn: startPfn,
      end_pfn: lowPfn,
      nr_scanned: nrScanned,
      nr_taken: nrIsolated,
    });
  cc.totalMigrateScanned += nrScanned;
  if (prof.scannersV48) mem.vmstat.count('compact_migrate_scanned', nrScanned);
  if (nrIsolated) mem.vmstat.count('compact_isolated', nrIsolated);
  cc.migratePfn = lowPfn;
  // v4.8: isolate_migratepages() aborts on cc->contended.
  return prof.contendedFirst && cc.contended;
}

/**
 * acct_isolated() (v4.8): every page on cc->migratepages counts in NR_ISOLATED_ANON +
 * page_is_file_cache(), i.e. nr_isolated_file for movable_ops pages (not swap-backed);
 * migrate_pages() and putback_movable_pages() subtract them again. 6.x: LRU pages only,
 * which mops does not model.
 */
function acctIsolated(mem: Memory, cc: CompactControl): void {
  if (!mem.profile.movableCountedIsolated) return;
  const lists = mem.pages.lists;
  for (let pfn = lists.first(cc.migratepages); pfn !== -1; pfn = lists.nextOf(pfn))
    if (!mem.countedIsolated.has(pfn)) {
      mem.countedIsolated.add(pfn);
      mem.vmstat.node[NS.nr_isolated_file]++;
    }
}

/**
 * too_many_isolated() (v4.8): more pages isolated than half the LRU pages of the node
 * (counters read as the kernel reads them, negative as 0). mops has no LRU pages, so any
 * isolated page counted by another compactor throttles.
 */
function tooManyIsolated(mem: Memory): boolean {
  const n = mem.vmstat.node;
  const v = (i: number): number => Math.max(0, n[i]);
  const lru =
    v(NS.nr_inactive_file) + v(NS.nr_inactive_anon) + v(NS.nr_active_file) + v(NS.nr_active_anon);
  return v(NS.nr_isolated_file) + v(NS.nr_isolated_anon) > Math.floor(lru / 2);
}

/**
 * The throttle at the start of v4.8's isolate_migratepages_block(): while too many pages
 * are isolated, async compaction gives up and sync compaction waits (congestion_wait(HZ/10):
 * a scheduling point here; the virtual clock does not move), giving up on a fatal signal.
 * True to abort. A task alone cannot see the count fall: that is a hang, reported as a
 * Deadlock.
 */
function* throttleIsolation(k: Kctx, cc: CompactControl): KernelGen<boolean> {
  while (tooManyIsolated(k.mem)) {
    if (cc.mode === MIGRATE_MODE.ASYNC) return true;
    if (!k.sched.preemptible)
      throw new Deadlock(
        'too_many_isolated: compaction waits for isolated pages to come back, and no other task can return them',
      );
    yield { op: 'congestion_wait', note: 'too many pages isolated' };
    if (fatalPending(cc)) return true;
  }
  return false;
}

/** isolate_migratepages(): find the next suitable block from cc.migratePfn and scan it. */
export function* isolateMigratepages(
  k: Kctx,
  cc: CompactControl,
  unevictableAllowed: boolean,
): KernelGen<number> {
  const { mem } = k;
  const zone = cc.zone;
  const mode =
    (cc.mode !== MIGRATE_MODE.SYNC ? ISOLATE.ASYNC_MIGRATE : 0) |
    (unevictableAllowed ? ISOLATE.UNEVICTABLE : 0);
  // v4.8 records where the scanner restarts only when it does not abort.
  const before = cc.migratePfn;
  // Start where the last scan stopped, or at a block the free-list search picked.
  let lowPfn = fastFindMigrateblock(mem, cc);
  let blockStart = Math.max(pageblockStartPfn(lowPfn), zone.zoneStartPfn);
  // The search only picks blocks not marked skip (v6.0/v6.3 then mark them): do not test
  // that block's hint again.
  let fastFindBlock = lowPfn !== cc.migratePfn && !cc.fastSearchFail;
  const prof = mem.profile.compaction;
  let blockEnd = pageblockEndPfn(lowPfn);
  for (
    ;
    blockEnd <= cc.freePfn;
    fastFindBlock = false,
      cc.migratePfn = lowPfn = blockEnd,
      blockStart = blockEnd,
      blockEnd += pageblock_nr_pages
  ) {
    if (blockEnd > zone.zoneEndPfn) break;
    // pageblock_pfn_to_page(): a hole (no memmap) is passed over, unscanned and untraced.
    // v6.17's skip_offline_sections() (6.5) jumps over a whole offline section at once, to
    // min(next online section, free_pfn): where this walk ends too, as mops's holes end a
    // zone's span and a free_pfn inside one is a pageblock start or below the migrate pfn.
    if (!pageblockPfnToPage(zone, blockStart)) continue;
    // v4.8 tests the hint of every block it enters, even mid-block.
    const aligned =
      prof.scannersV48 ||
      lowPfn % pageblock_nr_pages === 0 ||
      (prof.skipCheckAtZoneStart && lowPfn === zone.zoneStartPfn);
    if (aligned && !fastFindBlock && !isolationSuitable(mem, cc, blockStart)) continue;
    if (!suitableMigrationSource(mem, cc, blockStart)) {
      if (!prof.scannersV48) updateCachedMigrate(cc, blockEnd);
      continue;
    }
    if (yield* isolateMigratepagesBlock(k, cc, lowPfn, blockEnd, mode)) {
      acctIsolated(mem, cc);
      if (prof.scannersV48) cc.migratePfn = before;
      return ISOLATE_RESULT.ABORT;
    }
    break;
  }
  acctIsolated(mem, cc);
  return cc.nrMigratepages ? ISOLATE_RESULT.SUCCESS : ISOLATE_RESULT.NONE;
}
