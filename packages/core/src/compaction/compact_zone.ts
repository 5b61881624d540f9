/**
 * compact_zone(): suitability, the main loop of both scanners and migrate_pages, the
 * finishing rules and the results (mm/compaction.c; spec §8.2, §8.5,
 * compaction-by-profile T3, T4, T9).
 * @module
 */

import { freePagesInBlocks } from '../buddy/free_page.js';
import { ALLOC, gfpMigratetype } from '../buddy/gfp.js';
import { zoneWatermarkOk } from '../buddy/page_alloc.js';
import { canSteal, findFallback } from '../buddy/rmqueue.js';
import {
  MAX_PAGE_ORDER,
  MIGRATE_TYPES,
  PAGE_ALLOC_COSTLY_ORDER,
  pageblock_nr_pages,
  pageblock_order,
} from '../memory/constants.js';
import { WMARK, type Zone } from '../memory/zone.js';
import { migratePages } from '../migrate/migrate.js';
import { putbackMovablePages } from '../migrate/putback.js';
import { MIGRATE_MODE, MR } from '../migrate/types.js';
import type { Kctx } from '../page/lock.js';
import type { KernelGen } from '../sched/types.js';
import type { CaptureControl } from './capture.js';
import { compactionAlloc, compactionFree, releaseFreepages } from './free_scanner.js';
import { fragmentationIndex, fragmentationScoreZone, proactiveThresholds } from './metrics.js';
import { ISOLATE_RESULT, isolateMigratepages } from './migrate_scanner.js';
import type { CompactionProfile } from './profile.js';
import {
  compactionRestarting,
  pageblockStartPfn,
  resetCachedPositions,
  resetIsolationSuitable,
  zoneCompactState,
} from './state.js';
import type { CompactionSysctls } from './sysctl.js';
import { COMPACT, type CompactControl, type CompactResult, fatalPending } from './types.js';

/** compact_gap(order): 2 << order, uncapped in every profile. */
export function compactGap(order: number): number {
  return 2 << order;
}

function traceSuitable(
  k: Kctx,
  zone: Zone,
  order: number,
  ret: number,
  event: 'mm_compaction_suitable' | 'mm_compaction_finished',
): void {
  const t = k.mem.trace;
  if (t.enabled[event]) t.fire(event, { nid: zone.nid, idx: zone.idx, order, ret });
}

/**
 * compaction_suitable(): SUCCESS when the allocation would already succeed, SKIPPED when
 * order-0 free pages are below the watermark plus compact_gap, or when (costly orders)
 * the fragmentation index says a failure would be due to lack of memory.
 */
export function compactionSuitable(
  k: Kctx,
  zone: Zone,
  order: number,
  allocFlags: number,
  highestZoneidx: number,
  sysctl: CompactionSysctls,
  async = false,
  kcompactd = false,
): CompactResult {
  const mem = k.mem;
  const era = mem.profile.compaction.suitability;
  const traced = era !== '6.17';
  if (order === -1) {
    if (traced) traceSuitable(k, zone, order, COMPACT.CONTINUE, 'mm_compaction_suitable');
    return COMPACT.CONTINUE;
  }
  let ret: CompactResult;
  const mark = zone.wmarkPages(era === 'v4.8' ? WMARK.LOW : allocFlags & ALLOC.WMARK_MASK);
  // defrag_mode: kcompactd counts only the free pages in whole free pageblocks.
  const free = kcompactd && mem.defragMode ? freePagesInBlocks(zone) : zone.nrFreePages;
  if (zoneWatermarkOk(zone, order, mark, highestZoneidx, allocFlags, free)) {
    if (!traced) return COMPACT.SUCCESS;
    ret = COMPACT.SUCCESS;
  } else {
    const costly = order > PAGE_ALLOC_COSTLY_ORDER;
    // v6.17, async costly orders without ALLOC_CMA: the request's watermark + compact_gap
    // without CMA pages (mops has none), tested first and untraced.
    if (
      era === '6.17' &&
      async &&
      costly &&
      !(allocFlags & ALLOC.CMA) &&
      !zoneWatermarkOk(zone, 0, mark + compactGap(order), highestZoneidx, 0)
    )
      return COMPACT.SKIPPED;
    ret = suitableGate(zone, order, mark, highestZoneidx, allocFlags, era)
      ? COMPACT.CONTINUE
      : COMPACT.SKIPPED;
  }
  if (ret === COMPACT.CONTINUE && suitabilityReadsExtfrag(era, order)) {
    const idx = fragmentationIndex(zone, order);
    if (idx >= 0 && idx <= sysctl.extfragThreshold) ret = COMPACT.NOT_SUITABLE_ZONE;
  }
  traceSuitable(k, zone, order, ret, 'mm_compaction_suitable');
  return ret === COMPACT.NOT_SUITABLE_ZONE ? COMPACT.SKIPPED : ret;
}

/**
 * The order-0 gate of compaction_suitable(): enough free pages for the free scanner to
 * isolate migration targets (`mark` is the request's watermark).
 */
function suitableGate(
  zone: Zone,
  order: number,
  mark: number,
  highestZoneidx: number,
  allocFlags: number,
  era: 'v4.8' | '6.0' | '6.17',
): boolean {
  const gap = compactGap(order);
  if (era === 'v4.8')
    return zoneWatermarkOk(zone, 0, zone.watermark[WMARK.LOW] + gap, highestZoneidx, allocFlags);
  const costly = order > PAGE_ALLOC_COSTLY_ORDER;
  const base =
    era === '6.17'
      ? mark + (costly ? zone.wmarkPages(WMARK.LOW) - zone.wmarkPages(WMARK.MIN) : 0)
      : zone.wmarkPages(costly ? WMARK.LOW : WMARK.MIN);
  return zoneWatermarkOk(zone, 0, base + gap, highestZoneidx, ALLOC.CMA);
}

/** compact_scanners_met(). */
export function scannersMet(cc: CompactControl): boolean {
  return cc.freePfn >> pageblock_order <= cc.migratePfn >> pageblock_order;
}

/** __compact_finished() (6.x order; v4.8 tests contention first). */
function compactFinishedInner(
  k: Kctx,
  cc: CompactControl,
  kswapdRunning: boolean,
  sysctl: CompactionSysctls,
): CompactResult {
  const zone = cc.zone;
  const contended = cc.contended || fatalPending(cc);
  if (k.mem.profile.compaction.contendedFirst && contended) return COMPACT.CONTENDED;
  if (scannersMet(cc)) {
    resetCachedPositions(zone);
    if (cc.directCompaction) zoneCompactState(zone).blockskipFlush = true;
    return cc.wholeZone ? COMPACT.COMPLETE : COMPACT.PARTIAL_SKIPPED;
  }
  let ret: CompactResult = COMPACT.NO_SUITABLE_PAGE;
  if (cc.proactiveCompaction) {
    if (kswapdRunning) return COMPACT.PARTIAL_SKIPPED;
    const score = fragmentationScoreZone(zone, k.mem.profile);
    const low = proactiveThresholds(k.mem.profile, sysctl.compactionProactiveness).low;
    ret = score > low ? COMPACT.CONTINUE : COMPACT.SUCCESS;
    return contended ? COMPACT.CONTENDED : ret;
  }
  if (cc.order === -1) return COMPACT.CONTINUE;
  if (k.mem.profile.compaction.finishedNeedsWatermark) {
    if (!zoneWatermarkOk(zone, cc.order, zone.wmarkPages(1), cc.highestZoneidx, cc.allocFlags))
      return COMPACT.CONTINUE;
  } else if (cc.migratePfn % pageblock_nr_pages !== 0) return COMPACT.CONTINUE;
  // defrag_mode: every compactor but direct compaction targets the high watermark in whole
  // free pageblocks (which can be taken without polluting), without the free-list test.
  if (k.mem.defragMode && !cc.directCompaction)
    return zoneWatermarkOk(
      zone,
      cc.order,
      zone.wmarkPages(WMARK.HIGH),
      cc.highestZoneidx,
      cc.allocFlags,
      freePagesInBlocks(zone),
    )
      ? COMPACT.SUCCESS
      : COMPACT.CONTINUE;
  for (let order = cc.order; order <= MAX_PAGE_ORDER; order++) {
    if (zone.nrFreeList[order * MIGRATE_TYPES + cc.migratetype] > 0) return COMPACT.SUCCESS;
    // find_suitable_fallback(…, only_stealable = true).
    if (
      cc.migratetype < 3 &&
      canSteal(order, cc.migratetype) &&
      findFallback(zone, order, cc.migratetype) !== -1
    )
      return COMPACT.SUCCESS;
  }
  return contended ? COMPACT.CONTENDED : ret;
}

/** compact_finished(): with its tracepoint; NO_SUITABLE_PAGE means CONTINUE. */
export function compactFinished(
  k: Kctx,
  cc: CompactControl,
  kswapdRunning: boolean,
  sysctl: CompactionSysctls,
): CompactResult {
  const ret = compactFinishedInner(k, cc, kswapdRunning, sysctl);
  traceSuitable(k, cc.zone, cc.order, ret, 'mm_compaction_finished');
  return ret === COMPACT.NO_SUITABLE_PAGE ? COMPACT.CONTINUE : ret;
}

/** Options of {@link compactZone}. */
export interface CompactZoneOptions {
  /** The compaction sysctls of the machine. */
  readonly sysctl: CompactionSysctls;
  /**
   * Whether a kswapd stand-in is running (ends proactive runs). Read before every
   * compact_finished(): a getter sees kswapd start during the run.
   */
  readonly kswapdRunning?: boolean;
  /** The capture_control of a direct compaction (6.x). */
  readonly capture?: CaptureControl;
}

/**
 * compact_zone(): run both scanners over the zone, migrating what the migrate scanner
 * isolates to free pages the free scanner isolates, until a finishing rule fires.
 */
export function* compactZone(
  k: Kctx,
  cc: CompactControl,
  opts: CompactZoneOptions,
): KernelGen<CompactResult> {
  const { mem } = k;
  const zone = cc.zone;
  const prof = mem.profile.compaction;
  const lists = mem.pages.lists;
  const startPfn = zone.zoneStartPfn;
  const endPfn = zone.zoneEndPfn;
  const sync = cc.mode !== MIGRATE_MODE.ASYNC ? 1 : 0;
  const s = zoneCompactState(zone);
  cc.totalMigrateScanned = 0;
  cc.totalFreeScanned = 0;
  cc.nrMigratepages = 0;
  cc.nrFreepages = 0;
  cc.fastStartPfn = 0;
  cc.migratetype = gfpMigratetype(cc.gfpMask);
  let ret = compactionSuitable(
    k,
    zone,
    cc.order,
    cc.allocFlags,
    cc.highestZoneidx,
    opts.sysctl,
    cc.mode === MIGRATE_MODE.ASYNC,
    !cc.directCompaction,
  );
  if (ret === COMPACT.SUCCESS || ret === COMPACT.SKIPPED) return ret;
  if (compactionRestarting(zone, cc.order) && (!prof.wholeZoneFlag || s.blockskipFlush))
    resetIsolationSuitable(mem, zone);

  if (cc.wholeZone && prof.wholeZoneFlag) {
    cc.migratePfn = startPfn;
    cc.freePfn = pageblockStartPfn(endPfn - 1);
  } else {
    cc.migratePfn = s.cachedMigratePfn[sync];
    cc.freePfn = s.cachedFreePfn;
    if (cc.freePfn < startPfn || cc.freePfn >= endPfn) {
      cc.freePfn = pageblockStartPfn(endPfn - 1);
      s.cachedFreePfn = cc.freePfn;
    }
    if (cc.migratePfn < startPfn || cc.migratePfn >= endPfn) {
      cc.migratePfn = startPfn;
      s.cachedMigratePfn[0] = s.cachedMigratePfn[1] = startPfn;
    }
    // whole_zone: v4.8 when the migrate scanner starts at the zone start; 6.x when it starts
    // at or below compact_init_migrate_pfn (0 until the skip hints are first reset).
    if (prof.wholeZoneFlag ? cc.migratePfn <= s.initMigratePfn : cc.migratePfn === startPfn)
      cc.wholeZone = true;
  }
  let lastMigratedPfn = 0;
  let updateCached =
    prof.syncCachedFollowsAsync && !sync && s.cachedMigratePfn[0] === s.cachedMigratePfn[1];
  const trace = mem.trace;
  if (trace.enabled.mm_compaction_begin)
    trace.fire('mm_compaction_begin', {
      zone_start: startPfn,
      migrate_pfn: cc.migratePfn,
      free_pfn: cc.freePfn,
      zone_end: endPfn,
      sync,
    });

  const getNew = (): number => compactionAlloc(mem, cc, 0);
  const putNew = (dst: number): void => compactionFree(mem, cc, dst, 0);

  loop: for (;;) {
    ret = compactFinished(k, cc, opts.kswapdRunning ?? false, opts.sysctl);
    if (ret !== COMPACT.CONTINUE) break;
    const iterationStart = cc.migratePfn;
    // Finish a block migrated from in the previous iteration (6.0 `rescan`, 6.3+
    // `finish_pageblock`). last_migrated_pfn starts at 0 and is cleared back to 0, so an
    // iteration starting in pageblock 0 finishes that block too.
    cc.finishPageblock =
      !prof.scannersV48 && pageblockStartPfn(lastMigratedPfn) === pageblockStartPfn(iterationStart);
    // ISOLATE_NONE goes straight to check_drain: past the capture check from v6.3 on.
    let isolatedNone = false;
    for (;;) {
      const iso = yield* isolateMigratepages(k, cc, opts.sysctl.compactUnevictableAllowed === 1);
      if (iso === ISOLATE_RESULT.ABORT) {
        ret = COMPACT.CONTENDED;
        yield* putbackMovablePages(k, cc.migratepages);
        cc.nrMigratepages = 0;
        break loop;
      }
      if (iso === ISOLATE_RESULT.NONE) {
        if (updateCached) s.cachedMigratePfn[1] = s.cachedMigratePfn[0];
        isolatedNone = true;
        break;
      }
      updateCached = false;
      lastMigratedPfn = prof.lastMigratedIsIterationStart
        ? iterationStart
        : Math.max(startPfn, pageblockStartPfn(cc.migratePfn - 1));
      const nrMigrate = cc.nrMigratepages;
      const r = yield* migratePages(k, cc.migratepages, getNew, putNew, cc.mode, MR.COMPACTION);
      if (trace.enabled.mm_compaction_migratepages) {
        // v4.8: the return value, or on an error the pages still on the list.
        const failed = mem.profile.tracepointsV6
          ? nrMigrate - r.nrSucceeded
          : r.rc >= 0
            ? r.rc
            : lists.count(cc.migratepages);
        trace.fire('mm_compaction_migratepages', {
          nr_migrated: nrMigrate - failed,
          nr_failed: failed,
        });
      }
      cc.nrMigratepages = 0;
      if (r.rc !== 0) {
        yield* putbackMovablePages(k, cc.migratepages);
        if (r.rc === -12 && !scannersMet(cc)) {
          ret = COMPACT.CONTENDED;
          break loop;
        }
        if (prof.onMigrateFailure === 'skip_order_block') {
          if (cc.directCompaction && cc.mode === MIGRATE_MODE.ASYNC && cc.order > 0) {
            const size = 1 << cc.order;
            cc.migratePfn = (cc.migratePfn + size - 1) & ~(size - 1);
            lastMigratedPfn = 0;
          }
        } else if (
          !cc.finishPageblock &&
          cc.mode < MIGRATE_MODE.SYNC &&
          // T3: v6.3 rescans for direct compaction; v6.17 for any compactor honouring skip
          // hints, and only when migrate_pfn is not pageblock-aligned.
          (prof.onMigrateFailure === 'finish_direct'
            ? cc.directCompaction
            : !cc.ignoreSkipHint && cc.migratePfn % pageblock_nr_pages !== 0)
        ) {
          cc.finishPageblock = true;
          if (cc.order === pageblock_order) lastMigratedPfn = 0;
          continue;
        }
      }
      break;
    }
    // Stop if a page has been captured (6.x direct compaction): v6.3 on, after a
    // migrate_pages() call; v6.0 checks after check_drain, which ISOLATE_NONE reaches too.
    // (mops has nothing to drain: the order of the two does not matter otherwise.)
    if (
      (!isolatedNone || prof.captureAfterDrain) &&
      opts.capture !== undefined &&
      opts.capture.page >= 0
    ) {
      ret = COMPACT.SUCCESS;
      break;
    }
    // check_drain: mops has no per-CPU lists; freed pages merged already (spec §0.2).
    if (cc.order > 0 && lastMigratedPfn) {
      const size = 1 << cc.order;
      if (lastMigratedPfn < (cc.migratePfn & ~(size - 1))) lastMigratedPfn = 0;
    }
  }
  // Give unused targets back and let the free scanner restart from where they were. Up to
  // v6.3 they are order-0 pages freed through the per-CPU lists, out of capture's reach;
  // v6.17 frees whole blocks, and one of an order the per-CPU lists do not take reaches
  // __free_one_page(), where capture can still take what it merges into.
  if (opts.capture) opts.capture.open = false;
  if (cc.nrFreepages > 0 || cc.freepages.some((l) => !lists.isEmpty(l))) {
    const high = releaseFreepages(mem, cc, opts.capture);
    if (high) {
      const freePfn = pageblockStartPfn(high);
      if (freePfn > s.cachedFreePfn) s.cachedFreePfn = freePfn;
    }
  }
  // v4.8 counts the scanned pages as the scanners go.
  if (!prof.scannersV48) {
    mem.vmstat.count('compact_migrate_scanned', cc.totalMigrateScanned);
    mem.vmstat.count('compact_free_scanned', cc.totalFreeScanned);
  }
  if (trace.enabled.mm_compaction_end)
    trace.fire('mm_compaction_end', {
      zone_start: startPfn,
      migrate_pfn: cc.migratePfn,
      free_pfn: cc.freePfn,
      zone_end: endPfn,
      sync,
      status: ret,
    });
  return ret;
}

/** A compact_control for `zone` with the kernel's defaults; override what the caller sets. */
export function newCompactControl(
  k: Kctx,
  zone: Zone,
  init: Partial<CompactControl> & { order: number; mode: number },
): CompactControl {
  const lists = k.mem.pages.lists;
  const perOrder = k.mem.profile.compaction.freeStore === 'per_order';
  const freepages: number[] = [];
  for (let i = 0; i < (perOrder ? MAX_PAGE_ORDER + 1 : 1); i++) freepages.push(lists.newList());
  // Every field in one literal, in one order, and `init` written into it key by key: a
  // spread would give each caller's key order its own hidden class, which V8 collects with
  // the last control block, throwing away the scanners' compiled code with it.
  const cc: CompactControl = {
    zone,
    order: init.order,
    mode: init.mode,
    gfpMask: 0,
    migratetype: 0,
    allocFlags: 0,
    highestZoneidx: zone.idx,
    ignoreSkipHint: false,
    noSetSkipHint: false,
    ignoreBlockSuitable: false,
    directCompaction: false,
    proactiveCompaction: false,
    wholeZone: false,
    contended: false,
    task: k.sched.current,
    finishPageblock: false,
    migratePfn: 0,
    freePfn: 0,
    migratepages: lists.newList(),
    nrMigratepages: 0,
    freepages,
    nrFreepages: 0,
    totalMigrateScanned: 0,
    totalFreeScanned: 0,
    fastSearchFail: 0,
    searchOrder: Math.max(init.order, 0),
    fastStartPfn: 0,
  };
  const fields = cc as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(init)) fields[key] = value;
  return cc;
}

/** Returns a compact_control's lists to the machine (after compactZone). */
export function freeCompactControl(k: Kctx, cc: CompactControl): void {
  const lists = k.mem.pages.lists;
  lists.freeList(cc.migratepages);
  for (const l of cc.freepages) lists.freeList(l);
}

/**
 * Whether compaction_suitable() asks the fragmentation index (vm.extfrag_threshold) about
 * a request of `order`: above PAGE_ALLOC_COSTLY_ORDER, or at any order in v4.8.
 * @param era the profile's `compaction.suitability`
 * @param order the request's order
 */
export function suitabilityReadsExtfrag(
  era: CompactionProfile['suitability'],
  order: number,
): boolean {
  return era === 'v4.8' || order > PAGE_ALLOC_COSTLY_ORDER;
}
