/**
 * Page capture (6.x): while a direct compaction runs, a block freed by its own task that
 * reaches the requested order is taken out of the buddy allocator for that task, so
 * nothing else can allocate it first (mm/compaction.c compact_zone_order(),
 * mm/page_alloc.c compaction_capture()). v4.8 has no capture.
 * @module
 */

import { freeOneBlock } from '../buddy/free_page.js';
import { MIGRATE, pageblock_order } from '../memory/constants.js';
import type { FreeCapture, Memory } from '../memory/mem.js';
import type { Zone } from '../memory/zone.js';
import type { Scheduler } from '../sched/scheduler.js';
import type { CompactControl } from './types.js';

/** struct capture_control: the compaction and the block it captured (-1 while none). */
export class CaptureControl implements FreeCapture {
  /** The captured block's first pfn, or -1. */
  page = -1;
  /**
   * Offers are taken only while compact_zone runs; while it releases its targets, only in
   * v6.17 and only for blocks of an order the per-CPU lists do not take.
   */
  open = true;

  constructor(
    /** The compaction. */
    readonly cc: CompactControl,
    private readonly sched: Scheduler,
    private readonly mem: Memory,
  ) {}

  offer(zone: Zone, pfn: number, order: number, mt: number): boolean {
    const cc = this.cc;
    // task_capc(): the compacting task's own frees, in its zone, one block at most.
    if (!this.open || this.page >= 0 || zone !== cc.zone || order !== cc.order) return false;
    if (this.sched.current !== cc.task) return false;
    // Do not pollute CMA or isolated regions.
    if (mt === MIGRATE.CMA || mt === MIGRATE.ISOLATE) return false;
    // Nor a movable pageblock with a small block (v6.17: unless the request is movable).
    const rule = this.mem.profile.compaction.capture;
    if (
      order < pageblock_order &&
      mt === MIGRATE.MOVABLE &&
      (rule !== 'movable_request' || cc.migratetype !== MIGRATE.MOVABLE)
    )
      return false;
    if (
      rule === 'movable_request' &&
      mt !== cc.migratetype &&
      this.mem.trace.enabled.mm_page_alloc_extfrag
    )
      this.mem.trace.fire('mm_page_alloc_extfrag', {
        pfn,
        alloc_order: cc.order,
        fallback_order: order,
        alloc_migratetype: cc.migratetype,
        fallback_migratetype: mt,
        change_ownership: 0,
      });
    this.page = pfn;
    return true;
  }
}

/**
 * A captured block nobody takes goes back to the free lists as it was (already counted as
 * freed when its pages were).
 */
export function releaseCaptured(mem: Memory, pfn: number, order: number): void {
  freeOneBlock(mem, mem.zoneOf(pfn), pfn, order, mem.pageblockMigratetype(pfn));
}
