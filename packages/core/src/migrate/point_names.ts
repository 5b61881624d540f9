/**
 * What each release calls the steps of isolation, putback and migration (mm/migrate.c):
 * the names of the VM's scheduling points, as schedule reports and traces show them.
 * @module
 */

/**
 * The kernel functions the VM's movable_ops steps call in one release, by step. A
 * scheduling point of the VM is named after the function that runs at that step; the
 * speculative gets have their own rows (`Profile.isolationGet`, `Profile.pageCacheGet`).
 * Part of `Profile` (`pointNames`).
 *
 * v4.8 and v6.0 work on pages (isolate_movable_page, putback_movable_pages,
 * unmap_and_move / __unmap_and_move; the folio conversion of __unmap_and_move came in
 * 6.1); v6.3 on folios (the folio conversion of isolate_movable_page and
 * putback_movable_pages, migrate_folio_unmap / migrate_folio_move); v6.17 keeps the folio
 * lock and reference around isolate_movable_ops_page, putback_movable_ops_page and
 * migrate_movable_ops_page, with the flag helpers of PG_movable_ops_isolated.
 */
export interface PointNames {
  /**
   * The movability peek before the page lock (spec §3.1 step 3, §5.2 "Pre-lock check"):
   * `__PageMovable` (v4.8, v6.0), `__folio_test_movable` (v6.3), `page_has_movable_ops`
   * (v6.17).
   */
  readonly movableCheck: '__PageMovable' | '__folio_test_movable' | 'page_has_movable_ops';
  /**
   * The page lock taken without sleeping: isolation's lock, migration's lock of the source
   * and of the target (`trylock_page` up to v6.0, then `folio_trylock`).
   */
  readonly trylock: 'trylock_page' | 'folio_trylock';
  /**
   * The sleeping page lock: putback's, migration's when its trylock of the source failed in
   * a mode that may wait, and v4.8's "freed from under us" shortcut (`lock_page` up to
   * v6.0, then `folio_lock`).
   */
  readonly lock: 'lock_page' | 'folio_lock';
  /** The unlock of isolation, putback and migration (`unlock_page` up to v6.0, then `folio_unlock`). */
  readonly unlock: 'unlock_page' | 'folio_unlock';
  /**
   * Putback's drop of the isolation reference, and migration's of the source and the
   * target (`put_page` up to v6.0, then `folio_put`).
   */
  readonly put: 'put_page' | 'folio_put';
  /**
   * The "freed from under us" check at the start of migration (spec §3.4): `page_count`
   * in unmap_and_move() (v4.8, v6.0), `folio_ref_count` in migrate_folio_unmap() (v6.3,
   * v6.17).
   */
  readonly refCount: 'page_count' | 'folio_ref_count';
  /**
   * Putback's clear of the isolated flag (spec §1.5): `__ClearPageIsolated` (v4.8,
   * non-atomic under the page lock), `ClearPageIsolated` (v6.0), `folio_clear_isolated`
   * (v6.3), `ClearPageMovableOpsIsolated` (v6.17).
   */
  readonly clearIsolated:
    | '__ClearPageIsolated'
    | 'ClearPageIsolated'
    | 'folio_clear_isolated'
    | 'ClearPageMovableOpsIsolated';
}

/** v4.8: page helpers throughout; PG_isolated changes non-atomically under the page lock. */
export const POINT_NAMES_V48: PointNames = {
  movableCheck: '__PageMovable',
  trylock: 'trylock_page',
  lock: 'lock_page',
  unlock: 'unlock_page',
  put: 'put_page',
  refCount: 'page_count',
  clearIsolated: '__ClearPageIsolated',
};

/** v6.0: page helpers still; the isolated flag's helpers are atomic. */
export const POINT_NAMES_V60: PointNames = {
  ...POINT_NAMES_V48,
  clearIsolated: 'ClearPageIsolated',
};

/** v6.3: folio helpers in isolation, putback and the batched migration. */
export const POINT_NAMES_V63: PointNames = {
  movableCheck: '__folio_test_movable',
  trylock: 'folio_trylock',
  lock: 'folio_lock',
  unlock: 'folio_unlock',
  put: 'folio_put',
  refCount: 'folio_ref_count',
  clearIsolated: 'folio_clear_isolated',
};

/** v6.17: folio lock and reference, PG_movable_ops and PG_movable_ops_isolated helpers. */
export const POINT_NAMES_V617: PointNames = {
  ...POINT_NAMES_V63,
  movableCheck: 'page_has_movable_ops',
  clearIsolated: 'ClearPageMovableOpsIsolated',
};
