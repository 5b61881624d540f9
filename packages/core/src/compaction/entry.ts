/**
 * Entry points of compaction (spec §8.8, compaction-by-profile T12, T13): compact_memory
 * and per-node compaction, direct compaction from the allocator (try_to_compact_pages
 * with priorities ASYNC → SYNC_LIGHT → SYNC_FULL), kcompactd woken by a kswapd stand-in,
 * and proactive compaction on the virtual clock.
 * @module
 */

import { runKswapd } from '../buddy/boost.js';
import { __GFP, ALLOC, GFP, gfpZone } from '../buddy/gfp.js';
import { allocCapturedPage, getPageFromFreelist, zoneWatermarkOk } from '../buddy/page_alloc.js';
import { Clock } from '../clock.js';
import { MopsError } from '../errors.js';
import type { Machine } from '../machine.js';
import { MAX_NR_ZONES, pageblock_order } from '../memory/constants.js';
import type { Zone } from '../memory/zone.js';
import { MIGRATE_MODE } from '../migrate/types.js';
import type { Kctx } from '../page/lock.js';
import { fatalSignalPending } from '../sched/scheduler.js';
import { type KernelGen, PF_MEMALLOC } from '../sched/types.js';
import { CaptureControl, releaseCaptured } from './capture.js';
import {
  compactionSuitable,
  compactZone,
  freeCompactControl,
  newCompactControl,
} from './compact_zone.js';
import { fragmentationScoreNode, proactiveThresholds } from './metrics.js';
import {
  compactionDeferReset,
  compactionDeferred,
  deferCompaction,
  resetIsolationSuitable,
  zoneCompactState,
} from './state.js';
import { CompactionSysctls } from './sysctl.js';
import { COMPACT, COMPACT_PRIO, type CompactPriority, type CompactResult } from './types.js';

/** HPAGE_FRAG_CHECK_INTERVAL_MSEC: kcompactd's proactive check period. */
export const HPAGE_FRAG_CHECK_INTERVAL_MSEC = 500;
const PROACTIVE_PERIOD = Clock.msecsToJiffies(HPAGE_FRAG_CHECK_INTERVAL_MSEC);

/** Per-machine compaction state: sysctls, kcompactd and the kswapd stand-in. */
export class CompactionState {
  /** The sysctls. */
  readonly sysctl: CompactionSysctls;
  /** proactive_compact_trigger: a proactiveness write asked for a check now (6.x). */
  proactiveTrigger = false;
  /** kswapd is running (ends proactive runs with PARTIAL_SKIPPED). */
  kswapdRunning = false;
  /** kcompactd_max_order: the largest order requested by wakeups, 0 when none is pending. */
  kcompactdMaxOrder = 0;
  /**
   * kcompactd_highest_zoneidx: the tightest zone limit requested by wakeups (the lowest);
   * the highest populated zone (pgdat->nr_zones - 1) when none is.
   */
  kcompactdHighestZoneidx: number;
  /** Jiffies of the next proactive check. */
  nextProactiveCheck = 0;

  /** pgdat->nr_zones - 1: the highest populated zone. */
  readonly topZoneidx: number;

  constructor(m: Machine) {
    this.sysctl = new CompactionSysctls(() => this.triggerProactive(m));
    const zones = m.mem.populatedZones;
    this.topZoneidx = zones.length ? zones[zones.length - 1].idx : 0;
    this.kcompactdHighestZoneidx = this.topZoneidx;
  }

  /** compaction_proactiveness_sysctl_handler(): wake kcompactd for a proactive check. */
  private triggerProactive(m: Machine): void {
    if (m.profile.compaction.proactive === 'none' || this.proactiveTrigger) return;
    this.proactiveTrigger = true;
    const trace = m.mem.trace;
    if (m.profile.compaction.proactiveWriteTraced && trace.enabled.mm_compaction_wakeup_kcompactd) {
      trace.fire('mm_compaction_wakeup_kcompactd', {
        nid: 0,
        order: -1,
        highest_zoneidx: this.topZoneidx,
      });
    }
  }
}

const states = new WeakMap<Machine, CompactionState>();

/** The compaction state of a machine. */
export function compactionState(m: Machine): CompactionState {
  let s = states.get(m);
  if (!s) {
    s = new CompactionState(m);
    states.set(m, s);
  }
  return s;
}

function checkOrder(order: number): void {
  if (!Number.isInteger(order) || order < -1 || order > 10)
    throw new MopsError(
      'E_RANGE',
      `compaction order must be an integer -1..10, got ${order}`,
      'order',
    );
}

/** Runs a zone compaction to completion and frees its control block. */
function* runZone(
  k: Kctx,
  m: Machine,
  zone: Zone,
  init: Parameters<typeof newCompactControl>[2],
): KernelGen<{
  result: CompactResult;
  migrateScanned: number;
  freeScanned: number;
  captured: number;
}> {
  const st = compactionState(m);
  const cc = newCompactControl(k, zone, init);
  // compact_zone_order(): direct compaction exposes a capture_control while it runs (6.x).
  const capture =
    cc.directCompaction && m.profile.compaction.capture !== 'none'
      ? new CaptureControl(cc, m.sched, m.mem)
      : undefined;
  if (capture) m.mem.captures.push(capture);
  let handedOver = false;
  try {
    let result = yield* compactZone(k, cc, {
      sysctl: st.sysctl,
      kswapdRunning: st.kswapdRunning,
      capture,
    });
    const captured = capture ? capture.page : -1;
    if (captured >= 0) result = COMPACT.SUCCESS;
    handedOver = true;
    return {
      result,
      migrateScanned: cc.totalMigrateScanned,
      freeScanned: cc.totalFreeScanned,
      captured,
    };
  } finally {
    if (capture) {
      m.mem.captures.splice(m.mem.captures.indexOf(capture), 1);
      // A compaction that threw gives a captured block back rather than lose it.
      if (!handedOver && capture.page >= 0) releaseCaptured(m.mem, capture.page, cc.order);
    }
    freeCompactControl(k, cc);
  }
}

/**
 * compact_node(): every populated zone of the node, order -1 ("compact everything"),
 * MIGRATE_SYNC, skip hints ignored, whole zone (v4.8: after clearing every skip bit).
 * `proactive` runs MIGRATE_SYNC_LIGHT and stops each zone once its score is low enough.
 * v6.17 stops before the next zone when the task has a fatal signal pending (the write
 * to compact_memory fails with -EINTR): the results of the zones done so far are returned.
 */
export function* compactNode(m: Machine, proactive = false): KernelGen<CompactResult[]> {
  const k: Kctx = m;
  const out: CompactResult[] = [];
  for (const zone of m.mem.populatedZones) {
    if (!proactive && m.profile.compaction.compactNodeChecksSignal && fatalSignalPending(m.sched))
      break;
    if (!proactive && m.profile.compaction.compactMemoryClearsSkip)
      resetIsolationSuitable(m.mem, zone);
    const r = yield* runZone(k, m, zone, {
      order: -1,
      mode: proactive ? MIGRATE_MODE.SYNC_LIGHT : MIGRATE_MODE.SYNC,
      gfpMask: GFP.KERNEL,
      ignoreSkipHint: true,
      wholeZone: true,
      proactiveCompaction: proactive,
    });
    out.push(r.result);
    if (proactive && m.profile.compaction.daemonCountsProactive) {
      m.mem.vmstat.count('compact_daemon_migrate_scanned', r.migrateScanned);
      m.mem.vmstat.count('compact_daemon_free_scanned', r.freeScanned);
    }
  }
  return out;
}

/**
 * Writing `value` to /proc/sys/vm/compact_memory: compacts every zone. v6.17 accepts only
 * 1 (anything else is -EINVAL, a MopsError here); earlier profiles take any value. A task
 * with a fatal signal pending gets COMPACT_CONTENDED zones, or in v6.17 none (-EINTR).
 */
export function* compactMemory(m: Machine, value = 1): KernelGen<CompactResult[]> {
  m.mem.assertRunning();
  if (m.profile.compaction.compactMemoryOnlyOne && value !== 1)
    throw new MopsError(
      'E_RANGE',
      `compact_memory accepts only 1 in ${m.profile.name} (-EINVAL), got ${value}`,
      'compact_memory',
    );
  return yield* compactNode(m, false);
}

/** Options of {@link tryToCompactPages}. */
export interface DirectCompactRequest {
  /** gfp mask of the failing allocation. */
  readonly gfp: number;
  /** Its order (> 0). */
  readonly order: number;
  /** Its ALLOC_* flags. */
  readonly allocFlags: number;
  /** Priority (COMPACT_PRIO). */
  readonly prio: CompactPriority;
}

/** gfp_compaction_allowed(): __GFP_IO (v4.8: __GFP_FS and __GFP_IO). */
function gfpCompactionAllowed(m: Machine, gfp: number): boolean {
  if (m.profile.compaction.compactionNeedsFs)
    return (gfp & __GFP.IO) !== 0 && (gfp & __GFP.FS) !== 0;
  return (gfp & __GFP.IO) !== 0;
}

/**
 * try_to_compact_pages(): compact each zone of the zonelist (highest allowed first) at
 * `prio`, skipping deferred zones (except at SYNC_FULL), stopping at the first SUCCESS,
 * deferring zones whose non-async run completed without success. A block captured for the
 * request (6.x) is given back to the buddy allocator: allocate through
 * {@link allocPagesDirectCompact} to receive it.
 */
export function* tryToCompactPages(
  m: Machine,
  req: DirectCompactRequest,
): KernelGen<CompactResult> {
  const r = yield* tryToCompactPagesCapture(m, req);
  if (r.captured >= 0) releaseCaptured(m.mem, r.captured, req.order);
  return r.rc;
}

/** {@link tryToCompactPages} that also returns the block captured for the request (-1 if none). */
function* tryToCompactPagesCapture(
  m: Machine,
  req: DirectCompactRequest,
): KernelGen<{ rc: CompactResult; captured: number }> {
  let captured = -1;
  if (!gfpCompactionAllowed(m, req.gfp)) return { rc: COMPACT.SKIPPED, captured };
  const trace = m.mem.trace;
  if (trace.enabled.mm_compaction_try_to_compact_pages)
    trace.fire('mm_compaction_try_to_compact_pages', {
      order: req.order,
      gfp_mask: req.gfp,
      prio: req.prio,
    });
  const highest = gfpZone(req.gfp);
  const minPrio = m.profile.compaction.hasSyncFull
    ? COMPACT_PRIO.SYNC_FULL
    : COMPACT_PRIO.SYNC_LIGHT;
  let rc: CompactResult = COMPACT.SKIPPED;
  for (let zi = highest; zi >= 0; zi--) {
    const zone = m.mem.node.zones[zi];
    if (!zone.populated) continue;
    // v4.8 consults deferral at every priority; 6.x skips it at SYNC_FULL.
    const consult = !m.profile.compaction.hasSyncFull || req.prio > minPrio;
    if (consult && compactionDeferred(zone, req.order, m.trace)) {
      rc = Math.max(rc, COMPACT.DEFERRED) as CompactResult;
      continue;
    }
    const full = req.prio === COMPACT_PRIO.SYNC_FULL;
    const r = yield* runZone(m, m, zone, {
      order: req.order,
      mode: req.prio === COMPACT_PRIO.ASYNC ? MIGRATE_MODE.ASYNC : MIGRATE_MODE.SYNC_LIGHT,
      gfpMask: req.gfp,
      allocFlags: req.allocFlags,
      highestZoneidx: highest,
      directCompaction: true,
      wholeZone: full,
      ignoreSkipHint: full,
      ignoreBlockSuitable: full,
    });
    rc = Math.max(rc, r.result) as CompactResult;
    captured = r.captured;
    if (zoneDone(m, zone, req.order, r.result, highest, req.allocFlags)) {
      compactionDeferReset(zone, req.order, false, m.trace);
      break;
    }
    if (
      req.prio !== COMPACT_PRIO.ASYNC &&
      (r.result === COMPACT.COMPLETE || r.result === COMPACT.PARTIAL_SKIPPED)
    )
      deferCompaction(zone, req.order, m.trace);
    // Stopped by a fatal signal: no further zones (need_resched() is not modelled).
    if (fatalSignalPending(m.sched)) break;
  }
  return { rc, captured };
}

/**
 * After compacting `zone` for an allocation of `order`: whether the allocation should now
 * succeed there (v4.8: the low watermark is met; 6.x: the result is SUCCESS).
 */
function zoneDone(
  m: Machine,
  zone: Zone,
  order: number,
  result: CompactResult,
  highestZoneidx: number,
  allocFlags: number,
): boolean {
  if (!m.profile.compaction.successByLowWatermark) return result === COMPACT.SUCCESS;
  return zoneWatermarkOk(zone, order, zone.wmarkPages(1), highestZoneidx, allocFlags);
}

/**
 * __alloc_pages_direct_compact(): one direct compaction at `prio`, then an allocation
 * attempt; counts compact_stall, compact_success and compact_fail. Returns the pfn or -1.
 */
export function* allocPagesDirectCompact(m: Machine, req: DirectCompactRequest): KernelGen<number> {
  if (req.order <= 0) return -1;
  const { rc: result, captured } = yield* tryToCompactPagesCapture(m, req);
  const skip = m.profile.compaction.stallCountsDeferred
    ? result === COMPACT.SKIPPED
    : result <= COMPACT.DEFERRED;
  if (skip) {
    if (captured >= 0) releaseCaptured(m.mem, captured, req.order);
    return -1;
  }
  m.mem.vmstat.count('compact_stall');
  const owner = m.mem.owners.register('kernel');
  // A captured block first, else the free lists.
  let pfn = captured;
  if (pfn >= 0) allocCapturedPage(m.mem, pfn, req.order, req.gfp, owner);
  else pfn = getPageFromFreelist(m.mem, req.gfp, req.order, req.allocFlags, owner);
  if (pfn >= 0) {
    const zone = m.mem.zoneOf(pfn);
    zoneCompactState(zone).blockskipFlush = false;
    compactionDeferReset(zone, req.order, true, m.trace);
    m.mem.vmstat.count('compact_success');
    return pfn;
  }
  m.mem.vmstat.count('compact_fail');
  return -1;
}

/**
 * The allocator's slow-path step for direct compaction, tried at ASYNC, then SYNC_LIGHT,
 * then SYNC_FULL priority (v4.8: no SYNC_FULL). It runs as its own task with PF_MEMALLOC,
 * so it needs the scheduler to itself: from inside a task or with other tasks live it
 * does nothing (allocate from a task with {@link allocPagesDirectCompact} instead).
 */
export function installDirectCompaction(m: Machine): void {
  if ((m.mem.slowpath as unknown[]).includes(directHooks.get(m))) return;
  const hook = (gfp: number, order: number, allocFlags: number): number => {
    if (order <= 0 || !(gfp & __GFP.DIRECT_RECLAIM)) return -1;
    if (m.sched.current !== undefined || m.sched.tasks.length > 0) return -1;
    const prios = m.profile.compaction.hasSyncFull
      ? [COMPACT_PRIO.ASYNC, COMPACT_PRIO.SYNC_LIGHT, COMPACT_PRIO.SYNC_FULL]
      : [COMPACT_PRIO.ASYNC, COMPACT_PRIO.SYNC_LIGHT];
    for (const prio of prios) {
      const t = m.sched.spawn(
        'direct-compact',
        () => allocPagesDirectCompact(m, { gfp, order, allocFlags, prio }),
        {
          flags: PF_MEMALLOC,
        },
      );
      const pfn = m.sched.runToEnd(t);
      if (pfn >= 0) return pfn;
    }
    return -1;
  };
  directHooks.set(m, hook);
  m.mem.slowpath.push(hook);
}

const directHooks = new WeakMap<Machine, unknown>();

/**
 * wakeup_kcompactd(): kswapd asks kcompactd to compact for `order` up to zone
 * `highestZoneidx`; kcompactd runs on the next {@link kcompactdRun}. Order 0 asks for
 * nothing. The request keeps the largest order and the lowest zone limit; the wakeup (and
 * its tracepoint) happens only when some zone up to the limit is suitable for compaction.
 */
export function wakeupKcompactd(m: Machine, order: number, highestZoneidx: number): void {
  checkOrder(order);
  if (!Number.isInteger(highestZoneidx) || highestZoneidx < 0 || highestZoneidx >= MAX_NR_ZONES)
    throw new MopsError(
      'E_RANGE',
      `highestZoneidx must be an integer 0..${MAX_NR_ZONES - 1}, got ${highestZoneidx}`,
      'highestZoneidx',
    );
  if (order <= 0) return;
  const st = compactionState(m);
  if (order > st.kcompactdMaxOrder) st.kcompactdMaxOrder = order;
  if (highestZoneidx < st.kcompactdHighestZoneidx) st.kcompactdHighestZoneidx = highestZoneidx;
  if (!kcompactdNodeSuitable(m, st)) return;
  const trace = m.mem.trace;
  if (trace.enabled.mm_compaction_wakeup_kcompactd)
    trace.fire('mm_compaction_wakeup_kcompactd', {
      nid: 0,
      order,
      highest_zoneidx: highestZoneidx,
    });
}

/** kcompactd_node_suitable(): some zone up to the requested limit is worth compacting. */
function kcompactdNodeSuitable(m: Machine, st: CompactionState): boolean {
  const highest = st.kcompactdHighestZoneidx;
  for (let zi = 0; zi <= highest; zi++) {
    const zone = m.mem.node.zones[zi];
    if (!zone.populated) continue;
    if (
      compactionSuitable(m, zone, st.kcompactdMaxOrder, 0, highest, st.sysctl, false, true) ===
      COMPACT.CONTINUE
    )
      return true;
  }
  return false;
}

/**
 * The kswapd stand-in on kcompactd's clock: runs the pass a boosted zone asked for
 * (rmqueue() of a zone marked ZONE_BOOSTED_WATERMARK; see `runKswapd`), then wakes
 * kcompactd for pageblock_order if a pass took back a boost. Returns whether it woke it.
 */
export function kswapdBalance(m: Machine): boolean {
  const mem = m.mem;
  runKswapd(mem, -1);
  const highest = mem.boostKcompactdZoneidx;
  if (highest < 0) return false;
  mem.boostKcompactdZoneidx = -1;
  wakeupKcompactd(m, pageblock_order, highest);
  return true;
}

/** kcompactd_do_work(): compact the zones kswapd asked for, SYNC_LIGHT. */
export function* kcompactdDoWork(m: Machine): KernelGen<CompactResult[]> {
  const st = compactionState(m);
  const order = st.kcompactdMaxOrder;
  const highest = st.kcompactdHighestZoneidx;
  const out: CompactResult[] = [];
  if (order <= 0) return out;
  m.mem.vmstat.count('compact_daemon_wake');
  if (m.trace.enabled.mm_compaction_kcompactd_wake)
    m.trace.fire('mm_compaction_kcompactd_wake', { nid: 0, order, highest_zoneidx: highest });
  const ignoreSkipHint = m.profile.compaction.kcompactdIgnoresSkip;
  // defrag_mode: kcompactd works to the high watermark (in whole pageblocks), else to min.
  const allocFlags = m.mem.defragMode ? ALLOC.WMARK_HIGH : ALLOC.WMARK_MIN;
  for (let zi = 0; zi <= Math.min(highest, MAX_NR_ZONES - 1); zi++) {
    const zone = m.mem.node.zones[zi];
    if (!zone.populated) continue;
    if (compactionDeferred(zone, order, m.trace)) continue;
    if (
      compactionSuitable(m, zone, order, allocFlags, zi, st.sysctl, false, true) !==
      COMPACT.CONTINUE
    )
      continue;
    const r = yield* runZone(m, m, zone, {
      order,
      mode: MIGRATE_MODE.SYNC_LIGHT,
      gfpMask: GFP.KERNEL,
      allocFlags,
      highestZoneidx: highest,
      ignoreSkipHint,
    });
    out.push(r.result);
    if (zoneDone(m, zone, order, r.result, highest, 0))
      compactionDeferReset(zone, order, false, m.trace);
    else if (r.result === COMPACT.PARTIAL_SKIPPED || r.result === COMPACT.COMPLETE)
      deferCompaction(zone, order, m.trace);
    if (m.profile.compaction.daemonScanCounters) {
      m.mem.vmstat.count('compact_daemon_migrate_scanned', r.migrateScanned);
      m.mem.vmstat.count('compact_daemon_free_scanned', r.freeScanned);
    }
  }
  // Done until woken again, but a larger order or a tighter limit asked meanwhile stays.
  if (st.kcompactdMaxOrder <= order) st.kcompactdMaxOrder = 0;
  if (st.kcompactdHighestZoneidx >= highest) st.kcompactdHighestZoneidx = st.topZoneidx;
  return out;
}

/**
 * kcompactd's loop on the virtual clock: advance by `ms`, doing the pending work and a
 * proactive check every 500 ms (deferred 64× after a check that did not lower the node
 * score). Returns the zone results of every run.
 */
export function* kcompactdRun(m: Machine, ms: number): KernelGen<CompactResult[]> {
  const st = compactionState(m);
  const out: CompactResult[] = [];
  const until = m.clock.jiffies + Clock.msecsToJiffies(ms);
  if (st.nextProactiveCheck === 0) st.nextProactiveCheck = m.clock.jiffies + PROACTIVE_PERIOD;
  for (;;) {
    // kswapd, woken by a boosted zone, runs first and may wake kcompactd.
    kswapdBalance(m);
    // A proactiveness write woke kcompactd for a check now.
    if (st.proactiveTrigger) {
      st.nextProactiveCheck = m.clock.jiffies + (yield* proactiveCheck(m, st, out));
      st.proactiveTrigger = false;
    }
    out.push(...(yield* kcompactdDoWork(m)));
    // Back to waiting for a wakeup or the next proactive check.
    if (m.trace.enabled.mm_compaction_kcompactd_sleep)
      m.trace.fire('mm_compaction_kcompactd_sleep', { nid: 0 });
    if (st.nextProactiveCheck > until) break;
    m.clock.jiffies = st.nextProactiveCheck;
    st.nextProactiveCheck = m.clock.jiffies + (yield* proactiveCheck(m, st, out));
  }
  m.clock.jiffies = until;
  return out;
}

/**
 * kcompactd's proactive check: compact the node when its score is above the high
 * threshold. Pushes the zone results on `out`; returns the jiffies to the next check
 * (64 periods when the run did not lower the score).
 */
function* proactiveCheck(m: Machine, st: CompactionState, out: CompactResult[]): KernelGen<number> {
  if (
    m.profile.compaction.proactive === 'none' ||
    st.sysctl.compactionProactiveness === 0 ||
    st.kswapdRunning
  )
    return PROACTIVE_PERIOD;
  const before = fragmentationScoreNode(m.mem);
  if (before <= proactiveThresholds(m.profile, st.sysctl.compactionProactiveness).high)
    return PROACTIVE_PERIOD;
  out.push(...(yield* compactNode(m, true)));
  return fragmentationScoreNode(m.mem) >= before ? PROACTIVE_PERIOD << 6 : PROACTIVE_PERIOD;
}

/** The migrate modes by name, for command-line options. */
export const MIGRATE_MODE_BY_NAME: Readonly<Record<string, number>> = {
  async: MIGRATE_MODE.ASYNC,
  sync_light: MIGRATE_MODE.SYNC_LIGHT,
  'sync-light': MIGRATE_MODE.SYNC_LIGHT,
  sync: MIGRATE_MODE.SYNC,
};

/**
 * Compacts every populated zone for `order` in `mode`, as kcompactd's work item does but
 * without deferral (order -1: as compact_memory, whole zone and skip hints ignored).
 * Raises MopsError naming the value and range for a bad order or mode.
 */
export function* compactZones(
  m: Machine,
  order: number,
  mode: string | number,
): KernelGen<CompactResult[]> {
  checkOrder(order);
  const md = typeof mode === 'number' ? mode : MIGRATE_MODE_BY_NAME[mode];
  if (md !== 0 && md !== 1 && md !== 2)
    throw new MopsError('E_RANGE', `mode must be async, sync_light or sync, got '${mode}'`, 'mode');
  const out: CompactResult[] = [];
  for (const zone of m.mem.populatedZones) {
    const r = yield* runZone(m, m, zone, {
      order,
      mode: md,
      gfpMask: GFP.KERNEL,
      ignoreSkipHint: order === -1,
      wholeZone: order === -1,
      highestZoneidx: zone.idx,
    });
    out.push(r.result);
  }
  return out;
}
