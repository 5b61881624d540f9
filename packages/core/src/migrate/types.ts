/**
 * The movable_operations contract (include/linux/migrate.h; spec §2): callbacks, modes,
 * isolation modes, migration reasons.
 * @module
 */

import type { KernelGen } from '../sched/types.js';

/**
 * `enum migrate_mode` (spec §2.2). SYNC_NO_COPY ("do not copy the contents", for device
 * migration) is a mode of v6.0 and v6.3 only (`Profile.hasSyncNoCopy`: 4.14 to 6.10):
 * compaction never uses it, and the balloon's and zsmalloc's migrate_page refuse it with
 * -EINVAL.
 */
export const MIGRATE_MODE = { ASYNC: 0, SYNC_LIGHT: 1, SYNC: 2, SYNC_NO_COPY: 3 } as const;
/** A migrate mode value. */
export type MigrateMode = (typeof MIGRATE_MODE)[keyof typeof MIGRATE_MODE];
/**
 * Mode names as the tracepoints print them: include/trace/events/migrate.h lists the first
 * three only, so MIGRATE_SYNC_NO_COPY prints as its value, `0x3` ({@link migrateModeName}).
 */
export const MIGRATE_MODE_NAMES: readonly string[] = [
  'MIGRATE_ASYNC',
  'MIGRATE_SYNC_LIGHT',
  'MIGRATE_SYNC',
];

/** A mode as `__print_symbolic(mode, MIGRATE_MODE)` prints it: its name, or its value in hex. */
export function migrateModeName(mode: number): string {
  return MIGRATE_MODE_NAMES[mode] ?? `0x${mode.toString(16)}`;
}

/**
 * The migrate modes by name, for command-line options (`@mops/core/migrate-types`: the
 * command line's help lists them without loading the machine).
 */
export const MIGRATE_MODE_BY_NAME: Readonly<Record<string, MigrateMode>> = {
  async: MIGRATE_MODE.ASYNC,
  sync_light: MIGRATE_MODE.SYNC_LIGHT,
  'sync-light': MIGRATE_MODE.SYNC_LIGHT,
  sync: MIGRATE_MODE.SYNC,
};

/** `isolate_mode_t` bits (spec §2.3). */
export const ISOLATE = { ASYNC_MIGRATE: 0x4, UNEVICTABLE: 0x8 } as const;

/**
 * `enum migrate_reason` (include/linux/migrate_mode.h), 6.x values. v4.8 ends at 6,
 * `MR_CMA`; `MR_DAMON` exists from 6.11 (v6.17 here). `Profile.migrateReasons` names the
 * values of each release.
 */
export const MR = {
  COMPACTION: 0,
  MEMORY_FAILURE: 1,
  MEMORY_HOTPLUG: 2,
  SYSCALL: 3,
  MEMPOLICY_MBIND: 4,
  NUMA_MISPLACED: 5,
  CONTIG_RANGE: 6,
  LONGTERM_PIN: 7,
  DEMOTION: 8,
  DAMON: 9,
} as const;
/** Reason names as `mm_migrate_pages` prints them (v6.0 / v6.3). */
export const MR_NAMES: readonly string[] = [
  'compaction',
  'memory_failure',
  'memory_hotplug',
  'syscall_or_cpuset',
  'mempolicy_mbind',
  'numa_misplaced',
  'contig_range',
  'longterm_pin',
  'demotion',
];

/** MIGRATEPAGE_SUCCESS. */
export const MIGRATEPAGE_SUCCESS = 0;

/** A callback's result, either plain (atomic) or from a generator (interleavable). */
export type MaybeGen<T> = T | KernelGen<T>;

/**
 * `struct movable_operations`: what a driver supplies for its movable pages. Each callback
 * may be a plain function (it then runs atomically) or a generator function (it yields
 * scheduling points, so the explorer can interleave other tasks inside it).
 * Pages are pfns.
 */
export interface MovableOperations {
  /**
   * isolate_page(page, mode): called with the page locked and the VM's isolation reference
   * held. Return true if the page can be moved now. After true the VM owns `page->lru`.
   * Never set the isolated flag yourself.
   * @param page the page the VM wants to isolate
   * @param mode the `isolate_mode_t` bits ({@link ISOLATE}), e.g. ISOLATE_ASYNC_MIGRATE when
   *   compaction runs in a mode other than MIGRATE_SYNC
   * @returns true to let the VM isolate the page; false to refuse (the VM unlocks it and
   *   drops its reference)
   */
  isolatePage(page: number, mode: number): MaybeGen<boolean>;
  /**
   * migrate_page(dst, src, mode): both pages locked by the VM; `dst` has one reference (the
   * VM's). Copy, make `dst` your movable page with your own reference, unpublish `src`
   * (in v4.8–v6.3 also `__ClearPageMovable(src)`), drop your `src` references, return 0.
   * -EAGAIN: retry later; any other negative errno: this attempt failed (final in v4.8 and
   * v6.0; from v6.3 a SYNC_LIGHT or SYNC migration asks once more, see `mode`).
   * @param dst the free target page get_new_folio supplied (order 0, locked, refcount 1)
   * @param src the isolated page to move away from (locked)
   * @param mode the {@link MIGRATE_MODE} of this attempt: ASYNC (never waits on locks),
   *   SYNC_LIGHT or SYNC. In v4.8 and v6.0 every attempt has the migration's mode. From
   *   v6.3 a SYNC_LIGHT or SYNC migration first tries all its pages in a batch at ASYNC
   *   (migrate_pages_sync()), then each page that did not move, alone, in its own mode: a
   *   page refused at ASYNC is asked for again at SYNC_LIGHT or SYNC
   * @returns MIGRATEPAGE_SUCCESS (0); `Errno.EAGAIN` (-11) to be retried; another
   *   negative errno to fail this attempt (after the last, `src` goes back to you through
   *   putback_page)
   */
  migratePage(dst: number, src: number, mode: number): MaybeGen<number>;
  /**
   * putback_page(page): called with the page locked; re-insert it into your structures.
   * Not called for a page you released while the VM held it isolated (v4.8–v6.3:
   * `__ClearPageMovable` under the page lock, then your references dropped, as its
   * documentation says): the VM notices and frees it. v6.17 has no release: the
   * page stays yours, and putback_page is called for it as for any other.
   * @param page an isolated page the VM did not migrate, given back to its owner
   */
  putbackPage(page: number): MaybeGen<void>;
}

/**
 * The v4.8 form: an address_space of the driver's pseudo filesystem whose a_ops carry the
 * three callbacks; `page->mapping` points at it.
 */
export interface AddressSpace {
  /** Name of the pseudo filesystem (e.g. `'balloon-kvm'`, `'zsmalloc'`). */
  readonly name: string;
  /** `address_space_operations` with the movable callbacks. */
  readonly a_ops: Partial<MovableOperations>;
}

/** NR_MAX_BATCHED_MIGRATION: base pages per batch (HPAGE_PMD_NR). */
export const NR_MAX_BATCHED_MIGRATION = 512;
/** NR_MAX_MIGRATE_PAGES_RETRY. */
export const NR_MAX_MIGRATE_PAGES_RETRY = 10;
/** NR_MAX_MIGRATE_ASYNC_RETRY. */
export const NR_MAX_MIGRATE_ASYNC_RETRY = 3;
/** NR_MAX_MIGRATE_SYNC_RETRY. */
export const NR_MAX_MIGRATE_SYNC_RETRY = 7;

/**
 * get_new_folio: a free target page with refcount 1 for `src`, or -1 (NULL).
 * @param src the page about to be migrated
 * @returns the target pfn (refcount 1, not locked), or -1 when there is none (migrate_pages
 *   then stops with -ENOMEM)
 */
export type NewFolio = (src: number) => number;
/**
 * put_new_folio: give back an unused target. Without it the VM drops it with folio_put.
 * @param dst a target {@link NewFolio} returned that the migration did not use
 */
export type PutNewFolio = (dst: number) => void;

/** What migrate_pages reports (`*nr_succeeded` plus the statistics behind the counters). */
export interface MigrateResult {
  /** The return value: pages (folios) not migrated, or a negative errno. */
  readonly rc: number;
  /** Base pages migrated (counted in pgmigrate_success). */
  readonly nrSucceeded: number;
  /** Base pages counted in pgmigrate_fail. */
  readonly nrFailedPages: number;
}
