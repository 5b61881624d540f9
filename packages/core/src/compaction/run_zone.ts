/**
 * What the entry points share: the order check, one zone's compaction from control block
 * to result, and whether an allocation should now succeed in a compacted zone.
 * @module
 */

import { zoneWatermarkOk } from '../buddy/page_alloc.js';
import type { Machine } from '../machine.js';
import { checkOrder } from '../memory/constants.js';
import type { Zone } from '../memory/zone.js';
import type { Kctx } from '../page/lock.js';
import type { KernelGen } from '../sched/types.js';
import { CaptureControl, releaseCaptured } from './capture.js';
import { compactZone, freeCompactControl, newCompactControl } from './compact_zone.js';
import { compactionState } from './node_state.js';
import { COMPACT, type CompactControl, type CompactResult } from './types.js';

/** What a zone's compaction returns to the entry points. */
export interface ZoneRun {
  /** compact_zone()'s result (SUCCESS when a block was captured). */
  readonly result: CompactResult;
  /** cc->total_migrate_scanned. */
  readonly migrateScanned: number;
  /** cc->total_free_scanned. */
  readonly freeScanned: number;
  /** The block captured for a direct compaction, or -1. */
  readonly captured: number;
}

/** Raises MopsError for a compaction order outside -1..10 (-1: compact_memory). */
export function checkCompactionOrder(order: number): void {
  checkOrder(order, 'compaction ', -1);
}

/** Runs a zone compaction with a control block of its own, then frees the block. */
export function* runZone(
  k: Kctx,
  m: Machine,
  zone: Zone,
  init: Parameters<typeof newCompactControl>[2],
): KernelGen<ZoneRun> {
  const cc = newCompactControl(k, zone, init);
  try {
    return yield* runZoneWith(k, m, cc);
  } finally {
    freeCompactControl(k, cc);
  }
}

/**
 * Runs compact_zone() on `cc.zone` with the caller's control block, which keeps what
 * compact_zone() does not reset (whole_zone, fast_search_fail, search_order, contended)
 * for the caller's next zone.
 */
export function* runZoneWith(k: Kctx, m: Machine, cc: CompactControl): KernelGen<ZoneRun> {
  const st = compactionState(m);
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
      // Read at every __compact_finished(): kswapd may start while the run goes on.
      get kswapdRunning() {
        return st.kswapdRunning;
      },
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
  }
}

/**
 * After compacting `zone` for an allocation of `order`: whether the allocation should now
 * succeed there (v4.8: the low watermark is met; 6.x: the result is SUCCESS).
 */
export function zoneDone(
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
