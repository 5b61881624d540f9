/**
 * Entry points of compaction (spec §8.8, compaction-by-profile T12, T13): compact_memory
 * and per-node compaction, and direct compaction from the allocator (try_to_compact_pages,
 * and the passes of the allocator's slow path). kcompactd is in `kcompactd.ts`.
 * @module
 */

import { __GFP, checkGfp, GFP, gfpMigratetype, gfpZone } from '../buddy/gfp.js';
import { allocCapturedPage, getPageFromFreelist, traceAlloc } from '../buddy/page_alloc.js';
import { checkMachine, MopsError, valueKind } from '../errors.js';
import type { Machine } from '../machine.js';
import { checkOrder, MIGRATE, PAGE_ALLOC_COSTLY_ORDER } from '../memory/constants.js';
import { MIGRATE_MODE, MIGRATE_MODE_BY_NAME } from '../migrate/types.js';
import type { Kctx } from '../page/lock.js';
import { fatalSignalPending } from '../sched/scheduler.js';
import { type KernelGen, PF_MEMALLOC } from '../sched/types.js';
import { releaseCaptured } from './capture.js';
import { checkCompactionOrder, runZone, zoneDone } from './run_zone.js';
import {
  compactionDeferReset,
  compactionDeferred,
  deferCompaction,
  resetIsolationSuitable,
  zoneCompactState,
} from './state.js';
import { COMPACT, COMPACT_PRIO, type CompactPriority, type CompactResult } from './types.js';

/**
 * compact_node(): every populated zone of the node, order -1 ("compact everything"),
 * MIGRATE_SYNC, skip hints ignored, whole zone (v4.8: after clearing every skip bit).
 * `proactive` runs MIGRATE_SYNC_LIGHT and stops each zone once its score is low enough.
 * v6.17 stops before the next zone when the task has a fatal signal pending (the write
 * to compact_memory fails with -EINTR): the results of the zones done so far are returned.
 * v4.8 has no proactive compaction: `proactive` there is MopsError('E_USAGE').
 * @param m the machine; the run sleeps on locks, so call it with `yield*` from a task
 * @param proactive run as kcompactd's proactive pass rather than as compact_memory
 * @returns the {@link COMPACT} result of each populated zone, lowest zone first
 * @throws {@link MopsError} `E_USAGE` for `proactive` in v4.8
 */
export function* compactNode(m: Machine, proactive = false): KernelGen<CompactResult[]> {
  checkMachine(m, 'compact_node');
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
 * A generator: `m.run(() => compactMemory(m))`.
 * @param m the machine (not `m.mem`)
 * @param value the number written to the file (default 1)
 * @returns the {@link COMPACT} result of each populated zone, lowest zone first (name them
 *   with `compactResultName`)
 * @throws {@link MopsError} `E_USAGE` when `m` is not a machine; `E_HALTED` on a halted
 *   machine; `E_RANGE` for a `value` other than 1 in v6.17
 */
export function* compactMemory(m: Machine, value = 1): KernelGen<CompactResult[]> {
  checkMachine(m, 'compact_memory');
  m.mem.assertRunning();
  if (m.profile.compaction.compactMemoryOnlyOne && value !== 1)
    throw new MopsError(
      'E_RANGE',
      `compact_memory accepts only 1 in ${m.profile.name} (-EINVAL), got ${valueKind(value)}`,
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

/**
 * Checks a direct-compaction request from outside: an object whose gfp is a modelled mask
 * (see checkGfp), order an integer 0..MAX_PAGE_ORDER, allocFlags a non-negative integer and
 * prio a COMPACT_PRIO the release has (v4.8 has no SYNC_FULL). E_RANGE (E_USAGE for a
 * missing request) naming the field.
 */
function checkRequest(m: Machine, req: DirectCompactRequest): void {
  checkMachine(m, 'direct compaction');
  if (typeof req !== 'object' || req === null)
    throw new MopsError(
      'E_USAGE',
      `direct compaction takes a request { gfp, order, allocFlags, prio }, got ${valueKind(req)}`,
      'req',
    );
  checkGfp(m.mem, req.gfp);
  const range = (field: string, v: unknown, lo: number, hi: number, what = '') => {
    if (!Number.isInteger(v) || (v as number) < lo || (v as number) > hi)
      throw new MopsError(
        'E_RANGE',
        `direct compaction: ${field} must be an integer ${lo}..${hi}${what}, got ${valueKind(v)}`,
        field,
      );
  };
  checkOrder(req.order, 'direct compaction: ');
  range('allocFlags', req.allocFlags, 0, 0x7fffffff);
  const hasFull = m.profile.compaction.hasSyncFull;
  range(
    'prio',
    req.prio,
    hasFull ? COMPACT_PRIO.SYNC_FULL : COMPACT_PRIO.SYNC_LIGHT,
    COMPACT_PRIO.ASYNC,
    hasFull
      ? ' (COMPACT_PRIO: SYNC_FULL 0, SYNC_LIGHT 1, ASYNC 2)'
      : ` (COMPACT_PRIO: SYNC_LIGHT 1, ASYNC 2; ${m.profile.name} has no SYNC_FULL)`,
  );
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
 * {@link allocPagesDirectCompact} to receive it. It runs with the calling task's flags; its
 * kernel caller, __alloc_pages_direct_compact() ({@link allocPagesDirectCompact}), sets
 * PF_MEMALLOC around it, so that migration gives up on a locked page instead of sleeping.
 * @param m the machine; the run sleeps on locks, so call it with `yield*` from a task
 * @param req the failing allocation (gfp, order, ALLOC_* flags) and the priority
 * @returns the highest {@link COMPACT} result over the zones tried; SKIPPED when the gfp
 *   mask does not allow compaction (no __GFP_IO; v4.8: also __GFP_FS)
 * @throws {@link MopsError} `E_USAGE` for a missing request; `E_RANGE` naming a field out
 *   of range (a prio the release lacks: v4.8 has no SYNC_FULL)
 */
export function* tryToCompactPages(
  m: Machine,
  req: DirectCompactRequest,
): KernelGen<CompactResult> {
  checkRequest(m, req);
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
 * __alloc_pages_direct_compact(): one direct compaction at `prio`, then an allocation
 * attempt; counts compact_stall, compact_success and compact_fail. The page it allocates is
 * traced (mm_page_alloc) last, as __alloc_pages() traces what its slow path returns.
 * @param m the machine; the run sleeps on locks, so call it with `yield*` from a task
 * @param req the allocation (gfp, order > 0, ALLOC_* flags) and the compaction priority
 * @returns the allocated pfn (the block captured for it, in 6.x, or one from the free
 *   lists), or -1 when compaction was skipped or deferred or the allocation still failed
 * @throws {@link MopsError} `E_USAGE` for a missing request; `E_RANGE` naming a field out
 *   of range
 */
export function* allocPagesDirectCompact(m: Machine, req: DirectCompactRequest): KernelGen<number> {
  checkRequest(m, req);
  return (yield* directCompact(m, req)).pfn;
}

/**
 * {@link allocPagesDirectCompact} on a checked request, with try_to_compact_pages()'s
 * result as well.
 */
function* directCompact(
  m: Machine,
  req: DirectCompactRequest,
): KernelGen<{ pfn: number; result: CompactResult }> {
  if (req.order <= 0) return { pfn: -1, result: COMPACT.SKIPPED };
  const { rc: result, captured } = yield* withMemalloc(m, tryToCompactPagesCapture(m, req));
  const skip = m.profile.compaction.stallCountsDeferred
    ? result === COMPACT.SKIPPED
    : result <= COMPACT.DEFERRED;
  if (skip) {
    if (captured >= 0) releaseCaptured(m.mem, captured, req.order);
    return { pfn: -1, result };
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
    // __alloc_pages() traces the allocation when the slow path returns it.
    traceAlloc(m.mem, pfn, req.order, req.gfp);
    return { pfn, result };
  }
  m.mem.vmstat.count('compact_fail');
  return { pfn: -1, result };
}

/**
 * Runs `body` with PF_MEMALLOC set on the current task, as __alloc_pages_direct_compact()
 * wraps try_to_compact_pages(): migration for direct compaction never sleeps on a page
 * lock. After it, in 6.x, memalloc_noreclaim_restore() gives the flag back as the task had
 * it; v4.8 clears it, so a task that had it loses it
 * (`CompactionProfile.directCompactClearsMemalloc`).
 */
function* withMemalloc<T>(m: Machine, body: KernelGen<T>): KernelGen<T> {
  const task = m.sched.current;
  if (task === undefined) return yield* body;
  const had = m.profile.compaction.directCompactClearsMemalloc ? 0 : task.flags & PF_MEMALLOC;
  task.flags |= PF_MEMALLOC;
  try {
    return yield* body;
  } finally {
    task.flags = (task.flags & ~PF_MEMALLOC) | had;
  }
}

/** Whether the current task has PF_MEMALLOC: it is compacting or reclaiming already. */
function inMemalloc(m: Machine): boolean {
  return ((m.sched.current?.flags ?? 0) & PF_MEMALLOC) !== 0;
}

/** The failing allocation of {@link allocPagesSlowpathCompact}: gfp, order, ALLOC_* flags. */
export type SlowpathCompactRequest = Omit<DirectCompactRequest, 'prio'>;

/**
 * The direct compactions __alloc_pages_slowpath() makes for a failing allocation, in the
 * task that allocates, each through {@link allocPagesDirectCompact}:
 * 1. before any reclaim, one at INIT_COMPACT_PRIORITY (ASYNC) for a costly order (above
 *    PAGE_ALLOC_COSTLY_ORDER) and, in 6.x, for a non-movable order > 0
 *    (`CompactionProfile.initialCompactUnmovable`). After it a costly __GFP_NORETRY
 *    allocation (a THP fault) gives up if it was DEFERRED (6.x: or SKIPPED,
 *    `noretryGivesUpOnSkipped`), else stays at ASYNC;
 * 2. the retry loop's, at DEF_COMPACT_PRIORITY (SYNC_LIGHT) unless step 1 kept ASYNC.
 *    __GFP_NORETRY stops after it, and so does a costly order without
 *    __GFP_RETRY_MAYFAIL (v4.8: __GFP_REPEAT);
 * 3. 6.x: one more pass for each priority should_compact_retry() raises it to: SYNC_FULL
 *    (MIN_COMPACT_PRIORITY) for a small order; a costly order stops at SYNC_LIGHT
 *    (MIN_COMPACT_COSTLY_PRIORITY). v4.8 raises none: its should_compact_retry() (with the
 *    4.8-only "prevent premature OOM killer invocation for high order request") ignores
 *    the result, never retries a costly order, and retries a small one at SYNC_LIGHT while
 *    reclaim makes progress and a zone meets its order-0 min watermark.
 * mops has no reclaim: each pass runs as if the reclaim before it had made progress (the
 * kernel asks should_compact_retry() only then), and a pass is never repeated at the same
 * priority. So 6.x's raise after a pass that failed or withdrew (COMPLETE, DEFERRED,
 * CONTENDED, PARTIAL_SKIPPED) is as the kernel's, but a SKIPPED pass (too few free pages)
 * ends the loop, where the kernel repeats it while compaction_zonelist_suitable() says
 * reclaim could help, and a pass that succeeded while the allocation after it failed (a
 * race) raises the priority at once, where the kernel first repeats it, up to
 * MAX_COMPACT_RETRIES times (a quarter of that for a costly order); v4.8's small orders get
 * their SYNC_LIGHT pass once.
 * A PF_MEMALLOC task (one compacting or reclaiming already) makes no pass in the retry loop
 * (the slow path's recursion guard), nor the first one unless it asked with
 * __GFP_NOMEMALLOC (gfp_pfmemalloc_allowed()); v4.8's clears the flag
 * (`directCompactClearsMemalloc`), so such a task goes on into the retry loop. Nothing is
 * tried for order 0 or without __GFP_DIRECT_RECLAIM, and in 6.x a task with a fatal signal
 * pending gets no pass after the retry loop's first (should_compact_retry()).
 * @param m the machine; the passes sleep on locks, so call it with `yield*` from a task
 * @param req the failing allocation (gfp, order, ALLOC_* flags)
 * @returns the allocated pfn, or -1
 * @throws {@link MopsError} `E_USAGE` for a missing request; `E_RANGE` naming a field out
 *   of range
 */
export function* allocPagesSlowpathCompact(
  m: Machine,
  req: SlowpathCompactRequest,
): KernelGen<number> {
  checkRequest(m, { ...req, prio: COMPACT_PRIO.ASYNC });
  const { gfp, order } = req;
  if (order <= 0 || !(gfp & __GFP.DIRECT_RECLAIM)) return -1;
  const c = m.profile.compaction;
  const costly = order > PAGE_ALLOC_COSTLY_ORDER;
  const noretry = (gfp & __GFP.NORETRY) !== 0;
  // gfp_pfmemalloc_allowed(): a PF_MEMALLOC task may use the reserves, and so skips the
  // first pass, unless it asked with __GFP_NOMEMALLOC (mops has no __GFP_MEMALLOC).
  const reserves = inMemalloc(m) && !(gfp & __GFP.NOMEMALLOC);
  let prio: CompactPriority = COMPACT_PRIO.SYNC_LIGHT;
  if (
    !reserves &&
    (costly || (c.initialCompactUnmovable && gfpMigratetype(gfp) !== MIGRATE.MOVABLE))
  ) {
    const first = yield* directCompact(m, { ...req, prio: COMPACT_PRIO.ASYNC });
    if (first.pfn >= 0) return first.pfn;
    if (costly && noretry) {
      const r = first.result;
      if (r === COMPACT.DEFERRED || (c.noretryGivesUpOnSkipped && r === COMPACT.SKIPPED)) return -1;
      prio = COMPACT_PRIO.ASYNC;
    }
  }
  const min = costly || !c.hasSyncFull ? COMPACT_PRIO.SYNC_LIGHT : COMPACT_PRIO.SYNC_FULL;
  for (;;) {
    // The retry loop's recursion guard: a PF_MEMALLOC task neither reclaims nor compacts.
    if (inMemalloc(m)) return -1;
    const pass = yield* directCompact(m, { ...req, prio });
    if (pass.pfn >= 0) return pass.pfn;
    if (noretry || (costly && !(gfp & __GFP.RETRY_MAYFAIL))) return -1;
    // 6.x's should_compact_retry() gives a task with a fatal signal pending no further pass
    // (v4.8 has none to give: its loop makes one pass).
    if (pass.result === COMPACT.SKIPPED || prio <= min || fatalSignalPending(m.sched)) return -1;
    prio = (prio - 1) as CompactPriority;
  }
}

/**
 * The allocator's slow-path step for direct compaction: {@link allocPagesSlowpathCompact}'s
 * passes. They all run in one task, `direct-compact`, as __alloc_pages_slowpath() runs
 * them in the allocating task; that task needs the scheduler
 * to itself: from inside a task or with other tasks live the step does nothing (allocate
 * from a task with {@link allocPagesDirectCompact} instead). {@link createMachine}
 * installs it; a second call does nothing.
 * @param m the machine whose allocation slow path gets the step
 */
export function installDirectCompaction(m: Machine): void {
  if (m.mem.slowpath.some((f) => DIRECT_HOOK in f)) return;
  const hook = (gfp: number, order: number, allocFlags: number): number => {
    if (order <= 0 || !(gfp & __GFP.DIRECT_RECLAIM)) return -1;
    if (m.sched.current !== undefined || m.sched.tasks.length > 0) return -1;
    const t = m.sched.spawn('direct-compact', () =>
      allocPagesSlowpathCompact(m, { gfp, order, allocFlags }),
    );
    const pfn = m.sched.runToEnd(t);
    // A failure is traced after this step: as the task, like the rest of the allocation.
    if (pfn < 0) m.mem.allocTraceAs = (fire) => m.sched.asTask(t, fire);
    return pfn;
  };
  m.mem.slowpath.push(Object.assign(hook, { [DIRECT_HOOK]: true }));
}

/** Marks the direct-compaction hook among a machine's slow-path steps. */
const DIRECT_HOOK = Symbol('direct compaction');

/**
 * Compacts every populated zone for `order` in `mode`, as kcompactd's work item does but
 * without deferral (order -1: as compact_memory, whole zone and skip hints ignored).
 * A generator: `m.run(() => compactZones(m, 9, 'sync_light'))`.
 * @param m the machine
 * @param order the order to compact for, -1..MAX_PAGE_ORDER (-1: everything)
 * @param mode the migrate mode: `'async'`, `'sync_light'` (`'sync-light'`), `'sync'`, or a
 *   {@link MIGRATE_MODE} value
 * @returns the {@link COMPACT} result of each populated zone, lowest zone first
 * @throws {@link MopsError} `E_RANGE` naming the value and range for a bad order or mode
 */
export function* compactZones(
  m: Machine,
  order: number,
  mode: string | number,
): KernelGen<CompactResult[]> {
  checkMachine(m, 'compactZones');
  checkCompactionOrder(order);
  const md = typeof mode === 'number' ? mode : MIGRATE_MODE_BY_NAME[mode];
  if (md !== 0 && md !== 1 && md !== 2)
    throw new MopsError(
      'E_RANGE',
      `mode must be async, sync_light or sync, got ${valueKind(mode)}`,
      'mode',
    );
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
