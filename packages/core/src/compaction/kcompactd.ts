/**
 * kcompactd (mm/compaction.c; spec §8.8): woken by the kswapd stand-in for an order and a
 * zone limit, it compacts SYNC_LIGHT; on the virtual clock it also runs the proactive check
 * every 500 ms.
 * @module
 */

import { runKswapd } from '../buddy/boost.js';
import { ALLOC, GFP } from '../buddy/gfp.js';
import { Clock } from '../clock.js';
import { checkMachine, MopsError, valueKind } from '../errors.js';
import type { Machine } from '../machine.js';
import { MAX_NR_ZONES } from '../memory/constants.js';
import { MIGRATE_MODE } from '../migrate/types.js';
import type { KernelGen } from '../sched/types.js';
import { compactionSuitable, freeCompactControl, newCompactControl } from './compact_zone.js';
import { compactNode } from './entry.js';
import { fragmentationScoreNode, proactiveThresholds } from './metrics.js';
import { type CompactionState, compactionState, kcompactdWaitTimed } from './node_state.js';
import { checkCompactionOrder, runZoneWith, zoneDone } from './run_zone.js';
import {
  compactionDeferReset,
  compactionDeferred,
  deferCompaction,
  resetNodeIsolationSuitable,
} from './state.js';
import { COMPACT, type CompactControl, type CompactResult } from './types.js';

/** HPAGE_FRAG_CHECK_INTERVAL_MSEC: kcompactd's proactive check period. */
export const HPAGE_FRAG_CHECK_INTERVAL_MSEC = 500;
const PROACTIVE_PERIOD = Clock.msecsToJiffies(HPAGE_FRAG_CHECK_INTERVAL_MSEC);

/**
 * wakeup_kcompactd(): kswapd asks kcompactd to compact for `order` up to zone
 * `highestZoneidx`. Order 0 asks for nothing. The request keeps the largest order and the
 * lowest zone limit, recorded first; the wakeup (and its tracepoint) happens only when
 * kcompactd sleeps (a second request before it ran finds it awake: no event) and some zone
 * up to the limit is suitable for compaction, and kcompactd then runs on the next
 * {@link kcompactdRun}. A request recorded without a wakeup stays pending: see
 * {@link kcompactdRun} for when kcompactd finds it.
 * @param m the machine
 * @param order the order kswapd failed to make available (0: no request)
 * @param highestZoneidx the highest zone index the request may use (`ZONE.NORMAL` and
 *   below)
 * @throws {@link MopsError} `E_RANGE` for an order outside -1..MAX_PAGE_ORDER or a zone
 *   index outside 0..MAX_NR_ZONES-1
 */
export function wakeupKcompactd(m: Machine, order: number, highestZoneidx: number): void {
  checkCompactionOrder(order);
  if (!Number.isInteger(highestZoneidx) || highestZoneidx < 0 || highestZoneidx >= MAX_NR_ZONES)
    throw new MopsError(
      'E_RANGE',
      `highestZoneidx must be an integer 0..${MAX_NR_ZONES - 1}, got ${valueKind(highestZoneidx)}`,
      'highestZoneidx',
    );
  if (order <= 0) return;
  const st = compactionState(m);
  if (order > st.kcompactdMaxOrder) st.kcompactdMaxOrder = order;
  if (highestZoneidx < st.kcompactdHighestZoneidx) st.kcompactdHighestZoneidx = highestZoneidx;
  // wq_has_sleeper(): kcompactd already woken, or at work, is not on its wait queue: nothing
  // to wake. It finds the request when it next goes back to its wait.
  if (st.kcompactdWoken || !st.kcompactdAsleep) return;
  if (!kcompactdNodeSuitable(m, st)) return;
  const trace = m.mem.trace;
  if (trace.enabled.mm_compaction_wakeup_kcompactd)
    trace.fire('mm_compaction_wakeup_kcompactd', {
      nid: 0,
      order,
      highest_zoneidx: highestZoneidx,
    });
  st.kcompactdWoken = true;
}

/**
 * kcompactd_node_suitable(): some zone up to the requested limit is worth compacting, judged
 * at the watermark kcompactd_do_work() will work to.
 */
function kcompactdNodeSuitable(m: Machine, st: CompactionState): boolean {
  const highest = st.kcompactdHighestZoneidx;
  const allocFlags = kcompactdAllocFlags(m);
  const order = st.kcompactdMaxOrder;
  for (let zi = 0; zi <= highest; zi++) {
    const zone = m.mem.node.zones[zi];
    if (!zone.populated) continue;
    if (
      compactionSuitable(m, zone, order, allocFlags, highest, st.sysctl, false, true) ===
      COMPACT.CONTINUE
    )
      return true;
  }
  return false;
}

/** kcompactd's alloc_flags: the high watermark (in whole pageblocks) under defrag_mode, else min. */
function kcompactdAllocFlags(m: Machine): number {
  return m.mem.defragMode ? ALLOC.WMARK_HIGH : ALLOC.WMARK_MIN;
}

/**
 * Lets the allocator call wakeup_kcompactd() at once (`Memory.wakeupKcompactd`), as
 * wakeup_kswapd() does for a balanced node when the allocation cannot reclaim: the event
 * prints in the allocating task, at its time. {@link createMachine} installs it.
 * @param m the machine
 */
export function installKcompactdWakeup(m: Machine): void {
  m.mem.wakeupKcompactd = (order, highestZoneidx) => wakeupKcompactd(m, order, highestZoneidx);
}

/**
 * The kswapd stand-in on kcompactd's clock: runs the pass a wakeup asked for and has not run
 * yet (rmqueue() of a zone marked ZONE_BOOSTED_WATERMARK; see `runKswapd`); after a pass,
 * kswapd goes to sleep, resetting the skip hints of the zones whose last full compaction
 * asked for it (reset_isolation_suitable()); then it makes the
 * wakeup_kcompactd() calls waiting since the allocations (`Memory.kcompactdWakeups`), in
 * the order they were asked for: pageblock_order after a pass that took back a boost, and
 * the order a pass was woken for (an allocation that went to the slow path) before kswapd
 * sleeps. (An allocation that cannot reclaim asks kcompactd itself, at once, on a balanced
 * node: `Memory.wakeupKcompactd`, installed by {@link installKcompactdWakeup}.)
 * @param m the machine
 * @returns whether it asked kcompactd for work
 */
export function kswapdBalance(m: Machine): boolean {
  checkMachine(m, 'kswapdBalance');
  const mem = m.mem;
  runKswapd(mem);
  if (mem.kswapdToSleep) {
    // kswapd_try_to_sleep(): the node is balanced, so compaction's recent failures are
    // forgotten (reset_isolation_suitable()) before kcompactd is asked for work.
    mem.kswapdToSleep = false;
    resetNodeIsolationSuitable(mem);
  }
  const w = mem.kcompactdWakeups;
  if (w.length === 0) return false;
  const calls = w.splice(0);
  // kswapd's own calls: its tracepoints print under kswapd0.
  m.sched.asKthread('kswapd0', () => {
    for (let i = 0; i < calls.length; i += 2) wakeupKcompactd(m, calls[i], calls[i + 1]);
  });
  return true;
}

/**
 * kcompactd_do_work(): compact the zones kswapd asked for, SYNC_LIGHT, with one
 * compact_control for all of them: what compact_zone() does not reset (whole_zone once
 * set, fast_search_fail, search_order) carries over from one zone to the next.
 * @param m the machine; the run sleeps on locks, so call it with `yield*` from a task
 * @returns the {@link COMPACT} result of each zone compacted (none when nothing was asked)
 */
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
  const allocFlags = kcompactdAllocFlags(m);
  let cc: CompactControl | undefined;
  try {
    for (let zi = 0; zi <= Math.min(highest, MAX_NR_ZONES - 1); zi++) {
      const zone = m.mem.node.zones[zi];
      if (!zone.populated) continue;
      if (compactionDeferred(zone, order, m.trace)) continue;
      if (
        compactionSuitable(m, zone, order, allocFlags, zi, st.sysctl, false, true) !==
        COMPACT.CONTINUE
      )
        continue;
      cc ??= newCompactControl(m, zone, {
        order,
        mode: MIGRATE_MODE.SYNC_LIGHT,
        gfpMask: GFP.KERNEL,
        allocFlags,
        highestZoneidx: highest,
        ignoreSkipHint,
      });
      cc.zone = zone;
      const r = yield* runZoneWith(m, m, cc);
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
  } finally {
    if (cc) freeCompactControl(m, cc);
  }
  // Done until woken again, but a larger order or a tighter limit asked meanwhile stays.
  if (st.kcompactdMaxOrder <= order) st.kcompactdMaxOrder = 0;
  if (st.kcompactdHighestZoneidx >= highest) st.kcompactdHighestZoneidx = st.topZoneidx;
  return out;
}

/**
 * kcompactd's loop on the virtual clock: advance by `ms`, doing the work a wakeup asked for
 * and a proactive check every 500 ms (deferred 64× after a check that did not lower the node
 * score; a work item starts a fresh 500 ms period). Returns the zone results of every run.
 *
 * kcompactd() sleeps until woken or, in 6.x with proactiveness above 0, until its timeout;
 * its wait ends early, or without sleeping, whenever kcompactd_work_requested() holds (a
 * request is pending). So a request wakeup_kcompactd() recorded without waking it runs only
 * when a later wakeup comes, when the timeout finds it (in place of that proactive check),
 * when kcompactd goes back to its wait after a work item or a proactive pass; v4.8 (no
 * timeout) and 6.x with proactiveness 0 wait for the wakeup. mm_compaction_kcompactd_sleep
 * fires each time kcompactd goes back to its wait: kcompactd asleep since boot or since the
 * last call fires nothing until something wakes it.
 * @param m the machine; the runs sleep on locks, so call it with `yield*` from a task
 * @param ms how long to advance the machine clock, in milliseconds (≥ 0)
 * @returns the {@link COMPACT} result of every zone run, in order
 * @throws {@link MopsError} `E_RANGE` for `ms` negative, not a number, or beyond the clock
 */
export function* kcompactdRun(m: Machine, ms: number): KernelGen<CompactResult[]> {
  checkMachine(m, 'kcompactdRun');
  const until =
    typeof ms === 'number' && ms >= 0 ? m.clock.jiffies + Clock.msecsToJiffies(ms) : Number.NaN;
  if (!Number.isSafeInteger(until))
    throw new MopsError(
      'E_RANGE',
      `kcompactdRun: ms must be a number of milliseconds ≥ 0 that the clock can reach (2^53 jiffies), got ${valueKind(ms)}`,
      'ms',
    );
  const st = compactionState(m);
  const out: CompactResult[] = [];
  if (st.nextProactiveCheck === 0) st.nextProactiveCheck = m.clock.jiffies + PROACTIVE_PERIOD;
  st.kcompactdTimed ??= kcompactdWaitTimed(m, st);
  // Whether kcompactd's wait ended with a request pending.
  let requested = false;
  for (;;) {
    // kswapd, woken by a boosted zone, runs first; it and the allocations may wake kcompactd.
    kswapdBalance(m);
    if (st.kcompactdWoken) {
      st.kcompactdWoken = false;
      st.kcompactdAsleep = false;
      requested = true;
    }
    // A proactiveness write woke kcompactd for a check now (its wait skips the work item
    // while the trigger is set, even with a request pending); going back to its wait after
    // it, kcompactd finds any pending request at once.
    if (st.proactiveTrigger) {
      st.kcompactdAsleep = false;
      st.nextProactiveCheck = m.clock.jiffies + (yield* proactiveCheck(m, st, out));
      st.proactiveTrigger = false;
      requested = false;
    }
    if (requested && st.kcompactdMaxOrder > 0) {
      out.push(...(yield* kcompactdDoWork(m)));
      // After a work item kcompactd sleeps a whole period again: a 64× deferral left by an
      // unproductive proactive run is dropped, as the zones have changed since.
      st.nextProactiveCheck = m.clock.jiffies + PROACTIVE_PERIOD;
    }
    requested = false;
    // Back to its wait, which a pending request ends at once (kcompactd_work_requested()):
    // one made while kcompactd was awake (after a work item, a proactive pass, a triggered
    // one) woke no one, and is served now.
    if (!st.kcompactdAsleep && st.kcompactdMaxOrder > 0) {
      wakesAtOnce(m, st);
      requested = true;
      continue;
    }
    // Back to waiting for a wakeup or the next proactive check.
    goToSleep(m, st);
    if (st.nextProactiveCheck > until) break;
    m.clock.jiffies = st.nextProactiveCheck;
    if (!st.kcompactdTimed) {
      // No timeout: kcompactd sleeps on; only kswapd runs on this clock.
      st.nextProactiveCheck = m.clock.jiffies + PROACTIVE_PERIOD;
      continue;
    }
    st.kcompactdAsleep = false;
    // The timeout finds a request recorded without a wakeup: kcompactd does that work
    // instead of the proactive check.
    if (st.kcompactdMaxOrder > 0) {
      requested = true;
      continue;
    }
    st.nextProactiveCheck = m.clock.jiffies + (yield* proactiveCheck(m, st, out));
  }
  m.clock.jiffies = until;
  return out;
}

/** kcompactd goes back to its wait, unless it is there already: the sleep tracepoint. */
function goToSleep(m: Machine, st: CompactionState): void {
  if (st.kcompactdAsleep) return;
  st.kcompactdAsleep = true;
  st.kcompactdTimed = kcompactdWaitTimed(m, st);
  traceSleep(m);
}

function traceSleep(m: Machine): void {
  if (m.trace.enabled.mm_compaction_kcompactd_sleep)
    m.trace.fire('mm_compaction_kcompactd_sleep', { nid: 0 });
}

/** kcompactd goes back to its wait with a request pending: the wait ends at once. */
function wakesAtOnce(m: Machine, st: CompactionState): void {
  if (!st.kcompactdAsleep) traceSleep(m);
  st.kcompactdAsleep = false;
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
