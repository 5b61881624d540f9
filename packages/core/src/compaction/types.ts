/**
 * compact_control, compact_result and compact_priority (mm/internal.h,
 * include/linux/compaction.h; spec §8.1, §8.5, compaction-by-profile T2, T4).
 * @module
 */

import type { ListId } from '../memory/list.js';
import type { Zone } from '../memory/zone.js';
import type { Profile } from '../profile.js';
import type { Task } from '../sched/task.js';

/** `enum compact_result`, in the kernel's order (callers compare with max()). */
export const COMPACT = {
  NOT_SUITABLE_ZONE: 0,
  SKIPPED: 1,
  DEFERRED: 2,
  NO_SUITABLE_PAGE: 3,
  CONTINUE: 4,
  COMPLETE: 5,
  PARTIAL_SKIPPED: 6,
  CONTENDED: 7,
  /** COMPACT_SUCCESS (v4.8 calls it COMPACT_PARTIAL). */
  SUCCESS: 8,
} as const;
/** A compact_result value. */
export type CompactResult = (typeof COMPACT)[keyof typeof COMPACT];

/** Status strings of the compaction tracepoints, by result (v6.x; v4.8 says "partial" for success). */
export const COMPACT_STATUS: readonly string[] = [
  'not_suitable_zone',
  'skipped',
  'deferred',
  'no_suitable_page',
  'continue',
  'complete',
  'partial_skipped',
  'contended',
  'success',
];

/**
 * A compact_result by the name its release gives it: {@link COMPACT_STATUS}, except that
 * v4.8 calls success `partial` (COMPACT_PARTIAL, renamed COMPACT_SUCCESS in 4.10). Without a
 * profile, the 6.x names.
 * @param result a {@link COMPACT} value, e.g. one of compactMemory's results
 * @param profile the machine's profile (`m.profile`), for the release's name of success
 * @returns the name as the compaction tracepoints print it, e.g. `'complete'`
 */
export function compactResultName(result: number, profile?: Pick<Profile, 'compaction'>): string {
  if (result === COMPACT.SUCCESS && profile) return profile.compaction.successName;
  return COMPACT_STATUS[result];
}

/** `enum compact_priority` (v4.8 has no SYNC_FULL). */
export const COMPACT_PRIO = { SYNC_FULL: 0, SYNC_LIGHT: 1, ASYNC: 2 } as const;
/** A compact_priority value. */
export type CompactPriority = (typeof COMPACT_PRIO)[keyof typeof COMPACT_PRIO];

/** COMPACT_CLUSTER_MAX (= SWAP_CLUSTER_MAX): pages isolated per migrate_pages call. */
export const COMPACT_CLUSTER_MAX = 32;
/** COMPACT_MAX_DEFER_SHIFT. */
export const COMPACT_MAX_DEFER_SHIFT = 6;

/** `struct compact_control`: one compaction run over one zone. */
export interface CompactControl {
  /**
   * The zone being compacted. kcompactd_do_work() compacts zone after zone with one
   * control block, setting this before each compact_zone().
   */
  zone: Zone;
  /** Target order; -1 means "compact everything" (compact_memory, proactive). */
  readonly order: number;
  /** Migration mode (MIGRATE_MODE). */
  mode: number;
  /** gfp mask of the request. */
  readonly gfpMask: number;
  /** Migrate type of the request (gfp_migratetype). */
  migratetype: number;
  /** ALLOC_* flags of the request. */
  readonly allocFlags: number;
  /** Highest zone index the request may use. */
  readonly highestZoneidx: number;
  /** Ignore the pageblock skip hints. */
  readonly ignoreSkipHint: boolean;
  /** Never set skip hints. */
  readonly noSetSkipHint: boolean;
  /** Ignore the migrate type test of free-scanner blocks. */
  readonly ignoreBlockSuitable: boolean;
  /** Direct compaction from the allocator. */
  readonly directCompaction: boolean;
  /** Proactive compaction (kcompactd, fragmentation score). */
  readonly proactiveCompaction: boolean;
  /** Scan the whole zone. */
  wholeZone: boolean;
  /** Lock contention or a fatal signal was seen. */
  contended: boolean;
  /** The task compacting (`current`), whose pending SIGKILL stops the scanners. */
  readonly task: Task | undefined;
  /** Finish scanning the current pageblock (v6.0: `rescan`). */
  finishPageblock: boolean;
  /** Migrate scanner position. */
  migratePfn: number;
  /** Free scanner position. */
  freePfn: number;
  /** Isolated pages to migrate (linked through lru). */
  readonly migratepages: ListId;
  /** Pages on {@link migratepages}. */
  nrMigratepages: number;
  /**
   * Isolated free pages: v4.8–v6.3 one list (`freepages[0]`) of order-0 pages with
   * refcount 1; v6.17 one list per order of whole blocks with refcount 0.
   */
  readonly freepages: ListId[];
  /** Pages on {@link freepages}. */
  nrFreepages: number;
  /** Pages the migrate scanner visited. */
  totalMigrateScanned: number;
  /** Pages the free scanner visited. */
  totalFreeScanned: number;
  /** Consecutive failed free-list searches; shrinks the next search (freelist_scan_limit). */
  fastSearchFail: number;
  /** Order at which fast_isolate_freepages() starts its round-robin search. */
  searchOrder: number;
  /**
   * Lowest pfn fast_find_migrateblock() picked (0: none yet; {@link FAST_START_USED} once
   * the linear scan restarted from it).
   */
  fastStartPfn: number;
}

/** `ULONG_MAX` in cc->fast_start_pfn: the fast start pfn has been used. */
export const FAST_START_USED = Number.MAX_SAFE_INTEGER;

/** fatal_signal_pending(current) for the task running `cc` (see Scheduler.sendSigkill). */
export function fatalPending(cc: CompactControl): boolean {
  return cc.task?.sigkill === true;
}
