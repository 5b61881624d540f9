/**
 * What the VM can observe of zsmalloc in each profile (spec §0.2, zsmalloc table;
 * zsmalloc-by-profile §4 and §6). The allocator is the same everywhere; these rules only
 * change the movable_ops callbacks, the free path of a zspage with an isolated sub-page
 * and the layout of the text views. They are keyed by the profile's `movableMarker`,
 * which tells the three movable_ops eras apart.
 * @module
 */

import type { Profile } from '@mops/core';

/** The zsmalloc behaviour of one movable_ops era. */
export interface ZsRules {
  /**
   * When zs_page_isolate refuses: `'empty-or-compacting'` (v4.8: no object in use, or
   * zs_compact holds the zspage), `'never'` (v6.0/v6.3), `'destroyed'` (v6.17).
   */
  readonly isolateRefuses: 'empty-or-compacting' | 'never' | 'destroyed';
  /** Isolation counts the zspage's isolated sub-pages (v4.8–v6.3). */
  readonly countsIsolated: boolean;
  /** The first isolated sub-page takes the zspage off its fullness list (v4.8). */
  readonly isolateTakesOffList: boolean;
  /**
   * zs_page_migrate when objects of the zspage are being accessed: `'EAGAIN'` (v4.8: it
   * spins on the zspage lock while any of them is mapped, then fails with -EAGAIN when the
   * handle of an object that starts in the page is pinned by a mapper or freer waiting for
   * a lock the migration holds), `'wait'` (v6.0/v6.3 spin on the lock), `'EINVAL'` (v6.17
   * write-trylock).
   */
  readonly migrateBusy: 'EAGAIN' | 'wait' | 'EINVAL';
  /** zs_page_migrate fails with -EBUSY on a zspage with no object in use (v4.8). */
  readonly migrateEmptyEbusy: boolean;
  /**
   * putback_page: `'relist'` (v4.8: uncount; the last one relists the zspage and, if
   * empty, schedules the deferred free), `'uncount'` (v6.0/v6.3), `'none'` (v6.17).
   */
  readonly putback: 'relist' | 'uncount' | 'none';
  /** zs_free leaves an emptied zspage with an isolated sub-page alone (v4.8). */
  readonly deferFreeWhileIsolated: boolean;
  /**
   * The callbacks check for a page whose zspage was destroyed (v6.17: isolate refuses it,
   * migrate reports a fake success, putback does nothing); before, they dereference it.
   */
  readonly zspageNullChecks: boolean;
  /** Freeing a zspage calls __ClearPageMovable on each sub-page (v4.8–v6.3). */
  readonly clearMovableOnFree: boolean;
  /** Sub-pages carry the Zsmalloc page type with first_obj_offset in its low bits (v6.17). */
  readonly pageType: boolean;
  /** mm_stat has 7 fields (v4.8) rather than 9. */
  readonly mmStat7: boolean;
  /** debugfs `classes` shows almost_full/almost_empty (v4.8–v6.3) rather than ratio groups. */
  readonly classesAlmost: boolean;
  /**
   * zs_malloc reports an allocation failure as handle 0 (v4.8) rather than as
   * `ERR_PTR(-ENOMEM)` (v6.0 on), which mops returns as `Errno.ENOMEM`.
   */
  readonly mallocFailsWithZero: boolean;
  /**
   * zs_compact returns the pool's running total of compacted pages (v4.8, a plain
   * counter the shrinker subtracts from, raised as each source zspage is freed) rather than
   * this call's count, added to the total when the call ends (5.12 on).
   */
  readonly compactReturnsTotal: boolean;
  /**
   * One zs_compact at a time per pool (v6.17: `compaction_in_progress`, a second concurrent
   * call returns 0 at once); earlier releases let several callers run, serialized per class
   * by the locks they take.
   */
  readonly singleCompactor: boolean;
  /**
   * zs_page_migrate moves the NR_ZSPAGES count to the new page's zone (5.5 on, "fix the
   * migrated zspage statistics"); v4.8 leaves it with the old zone, and the zspage's free
   * later takes it from the new one.
   */
  readonly zoneStatFollows: boolean;
  /**
   * Object accessors hold the zspage lock with preemption off (v4.8–v6.3: zs_map_object
   * is non-preemptible until zs_unmap_object); v6.17's readers may sleep.
   */
  readonly readersAtomic: boolean;
  /**
   * Handles carry a pin (v4.8: HANDLE_PIN_BIT of the handle word, a bit spinlock that
   * zs_map_object and zs_free take and migration only tries); 5.17 replaced it with
   * `pool->migrate_lock`.
   */
  readonly pinsHandles: boolean;
}

const RULES: Readonly<Record<Profile['movableMarker'], ZsRules>> = {
  address_space: {
    isolateRefuses: 'empty-or-compacting',
    countsIsolated: true,
    isolateTakesOffList: true,
    migrateBusy: 'EAGAIN',
    migrateEmptyEbusy: true,
    putback: 'relist',
    deferFreeWhileIsolated: true,
    zspageNullChecks: false,
    clearMovableOnFree: true,
    pageType: false,
    mmStat7: true,
    classesAlmost: true,
    mallocFailsWithZero: true,
    compactReturnsTotal: true,
    singleCompactor: false,
    zoneStatFollows: false,
    readersAtomic: true,
    pinsHandles: true,
  },
  mops: {
    isolateRefuses: 'never',
    countsIsolated: true,
    isolateTakesOffList: false,
    migrateBusy: 'wait',
    migrateEmptyEbusy: false,
    putback: 'uncount',
    deferFreeWhileIsolated: false,
    zspageNullChecks: false,
    clearMovableOnFree: true,
    pageType: false,
    mmStat7: false,
    classesAlmost: true,
    mallocFailsWithZero: false,
    compactReturnsTotal: false,
    singleCompactor: false,
    zoneStatFollows: true,
    readersAtomic: true,
    pinsHandles: false,
  },
  page_type: {
    isolateRefuses: 'destroyed',
    countsIsolated: false,
    isolateTakesOffList: false,
    migrateBusy: 'EINVAL',
    migrateEmptyEbusy: false,
    putback: 'none',
    deferFreeWhileIsolated: false,
    zspageNullChecks: true,
    clearMovableOnFree: false,
    pageType: true,
    mmStat7: false,
    classesAlmost: false,
    mallocFailsWithZero: false,
    compactReturnsTotal: false,
    singleCompactor: true,
    zoneStatFollows: true,
    readersAtomic: false,
    pinsHandles: false,
  },
};

/** The zsmalloc rules of a profile. */
export function zsRules(profile: Profile): ZsRules {
  return RULES[profile.movableMarker];
}
