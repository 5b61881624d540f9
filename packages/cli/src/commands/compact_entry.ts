/**
 * The entry points of compaction `mops compact` runs after its workload: compact_memory or
 * an order's compaction (`--order`), direct compaction from high-order allocations
 * (`--alloc`), and kcompactd on the machine clock (`--kcompactd`).
 * @module
 */

import {
  __GFP,
  compactMemory,
  compactResultName,
  compactZones,
  GFP,
  kcompactdRun,
  type Machine,
  MopsError,
  PF_KTHREAD,
  showGfpFlags,
} from '@mops/core';
import type { AllocRequest } from '../compact_args.js';
import { COMPACT_MEMORY_MODE, COMPACT_ORDER_MODE } from '../defaults.js';

/**
 * The gfp mask of `--alloc`'s allocations: a hugetlb pool page, as writing nr_hugepages
 * (and compaction_test) asks for one: htlb_alloc_mask()'s GFP_HIGHUSER_MOVABLE, __GFP_COMP,
 * __GFP_NOWARN, __GFP_RETRY_MAYFAIL (v4.8: __GFP_REPEAT) and __GFP_THISNODE. It may sleep
 * (__GFP_DIRECT_RECLAIM), so an allocation the free lists cannot serve enters the slow path
 * and its direct compaction.
 */
export const ALLOC_GFP =
  GFP.HIGHUSER_MOVABLE | __GFP.COMP | __GFP.NOWARN | __GFP.RETRY_MAYFAIL | __GFP.THISNODE;

/** What the compaction step is: the options of `compact` that choose it. */
export interface CompactStep {
  /** `--order`, when given (-1: compact_memory). */
  readonly order?: number;
  /** `--mode`, when given. */
  readonly mode?: string;
  /** `--alloc`. */
  readonly alloc?: AllocRequest;
  /** `--kcompactd`, in milliseconds of machine time. */
  readonly kcompactdMs?: number;
}

/** What the step did, for the report and the JSON summary. */
export interface StepResult {
  /** The order `--order`'s compaction ran for (-1: compact_memory), or null when it did not run. */
  readonly order: number | null;
  /** Its result per populated zone, lowest first (empty when it did not run). */
  readonly zones: { zone: string; result: string }[];
  /** `--alloc`: the allocations made, and how many succeeded. */
  readonly alloc: {
    order: number;
    count: number;
    gfp: string;
    allocated: number;
    failed: number;
  } | null;
  /** `--kcompactd`: the machine time it ran, and the result of each zone run, in order. */
  readonly kcompactd: { seconds: number; runs: string[] } | null;
}

/**
 * Checks the options that choose the step, before the run: `--alloc` and `--kcompactd`
 * take the place of `--order`'s compaction, so `--order` and `--mode` with either are
 * `MopsError('E_USAGE')`.
 */
export function checkStep(step: CompactStep): void {
  const instead = [
    ...(step.alloc ? ['--alloc (direct compaction)'] : []),
    ...(step.kcompactdMs !== undefined ? ['--kcompactd (kcompactd)'] : []),
  ];
  if (instead.length === 0) return;
  for (const [opt, v] of [
    ['--order', step.order],
    ['--mode', step.mode],
  ] as const)
    if (v !== undefined)
      throw new MopsError(
        'E_USAGE',
        `${opt} chooses how compact_memory or an order's compaction runs; ${instead.join(' and ')} compact${instead.length === 1 ? 's' : ''} in its place: leave out ${opt}`,
        opt,
      );
}

/**
 * Checks, on the built machine, that `--alloc`'s allocations could all fit in it:
 * `MopsError('E_USAGE')` for more blocks of the order than its pages make.
 */
export function checkAllocFits(m: Machine, alloc: AllocRequest | undefined): void {
  if (!alloc) return;
  const most = Math.floor(m.mem.nrPages / 2 ** alloc.order);
  if (alloc.count > most)
    throw new MopsError(
      'E_USAGE',
      `--alloc ${alloc.order}x${alloc.count}: this machine's ${m.mem.nrPages} pages make at most ${most} blocks of order ${alloc.order}`,
      '--alloc',
    );
}

/**
 * Runs the step on `m`: `--alloc`'s allocations, then `--kcompactd`'s run, when either is
 * given; else `--order`'s compaction (compact_memory by default), in `--mode` (by default
 * compact_memory's MIGRATE_SYNC, or kcompactd's MIGRATE_SYNC_LIGHT for an order).
 */
export function runStep(m: Machine, step: CompactStep): StepResult {
  if (!step.alloc && step.kcompactdMs === undefined) {
    const order = step.order ?? -1;
    const mode = step.mode ?? (order === -1 ? COMPACT_MEMORY_MODE : COMPACT_ORDER_MODE);
    const results =
      order === -1 && mode === COMPACT_MEMORY_MODE
        ? m.run(() => compactMemory(m))
        : m.run(() => compactZones(m, order, mode));
    const zones = m.mem.populatedZones.map((z, i) => ({
      zone: z.name,
      result: compactResultName(results[i], m.profile),
    }));
    return { order, zones, alloc: null, kcompactd: null };
  }
  let alloc: StepResult['alloc'] = null;
  if (step.alloc) {
    // alloc_pages() from no task: the fast path, then the slow path, whose direct
    // compaction runs as its own task (allocPagesSlowpathCompact's passes: for this movable
    // mask, ASYNC then SYNC_LIGHT for a costly order, SYNC_LIGHT then SYNC_FULL for another).
    let allocated = 0;
    for (let i = 0; i < step.alloc.count; i++)
      if (m.allocPages(ALLOC_GFP, step.alloc.order) >= 0) allocated++;
    alloc = {
      ...step.alloc,
      // As the release's mm_page_alloc tracepoint names it.
      gfp: showGfpFlags(ALLOC_GFP, m.profile),
      allocated,
      failed: step.alloc.count - allocated,
    };
  }
  let kcompactd: StepResult['kcompactd'] = null;
  if (step.kcompactdMs !== undefined) {
    const ms = step.kcompactdMs;
    // kcompactd is a kernel thread of its own, kcompactd0 (kthread_run(kcompactd, pgdat,
    // "kcompactd%d", nid)): its tracepoints print under that name.
    const runs = m.sched.runToEnd(
      m.sched.spawn('kcompactd0', () => kcompactdRun(m, ms), { flags: PF_KTHREAD }),
    );
    kcompactd = { seconds: ms / 1000, runs: runs.map((r) => compactResultName(r, m.profile)) };
  }
  return { order: null, zones: [], alloc, kcompactd };
}

/** The report's lines for the step. */
export function stepLines(r: StepResult): string[] {
  const out: string[] = [];
  if (r.order !== null)
    out.push(`compaction: ${r.zones.map((z) => `${z.zone}=${z.result}`).join(' ')}`);
  if (r.alloc)
    out.push(
      `direct compaction: ${r.alloc.count} allocation${r.alloc.count === 1 ? '' : 's'} of order ${r.alloc.order} (${r.alloc.gfp}): ${r.alloc.allocated} succeeded, ${r.alloc.failed} failed; the blocks allocated stay allocated`,
    );
  if (r.kcompactd) {
    const n = r.kcompactd.runs.length;
    out.push(
      `kcompactd: ${r.kcompactd.seconds} s of machine time, ${n === 0 ? 'no zone compacted' : `${n} zone run${n === 1 ? '' : 's'}: ${r.kcompactd.runs.join(' ')}`}`,
    );
  }
  return out;
}
