/**
 * The rows of a profile that say how the release prints what it reports: trace lines,
 * dump_page(), assertion texts, GFP flag names and the /proc/vmstat table.
 * @module
 */

import type { VmstatRelease } from './vmstat/releases.js';

/** How a release's output looks (see {@link Profile}). */
export interface FormatProfile {
  /** mm_migrate_pages prints `nr_split` (6.7+: v6.17). */
  readonly migrateTraceNrSplit: boolean;
  /** The kmem page events print the pfn in hex (`pfn=0x%lx`, 5.14+); v4.8 prints `%lu`. */
  readonly kmemPfnHex: boolean;
  /**
   * The `trace` file's context columns: `'4.x'` (`%-5d` pids, four irq-info columns) or
   * `'6.x'` (`%-7d` pids since 5.9, plus the migrate-disable column).
   */
  readonly ftraceLayout: '4.x' | '6.x';
  /**
   * How trace output prints a NULL `%p` (a failed allocation's `mm_page_alloc` page):
   * `'(null)'` (v4.8's vsprintf: the string `(null)` right-aligned in the 16-character
   * pointer width) or `'zeros'` (the 6.x releases: sixteen zero digits).
   */
  readonly nullPointer: '(null)' | 'zeros';
  /**
   * dump_page()'s layout (mm/debug.c): v4.8 `page:%p count:…` without a hex dump; v6.0 and
   * v6.3 `page:%p refcount:…` with the 5.14 `%pGp` fields (v6.3 adds `page_type: %pGt` and
   * the nr_pages_mapped head line); v6.17 __dump_folio.
   */
  readonly dumpPageLayout: 'v4.8' | 'v6.0' | 'v6.3' | 'v6.17';
  /**
   * The assertions' text: folio forms (`VM_BUG_ON_FOLIO(!folio_test_locked(src))`), as the
   * functions read since their folio conversions (folio_get and folio_unlock 5.16,
   * move_to_new_folio 5.19), or, in v4.8, the page forms those lines had
   * (`VM_BUG_ON_PAGE(!PageLocked(page))`).
   */
  readonly folioAsserts: boolean;
  /**
   * The `show_gfp_flags()` name table: `'v4.8'` (the hand-written list, with
   * GFP_TEMPORARY), `'v6.0'` (the hand-written list of v4.14–v6.14: single bits from
   * `__GFP_HIGH` to `__GFP_KSWAPD_RECLAIM`) or `'v6.15'` (single bits in bit order, from
   * `TRACE_GFP_FLAGS`).
   */
  readonly gfpNames: 'v4.8' | 'v6.0' | 'v6.15';
  /**
   * The release's /proc/vmstat name table (vmstat/releases.ts): which items it prints, in
   * which order (compaction-by-profile T14: v4.8 has no compact_daemon_*_scanned or
   * thp_migration_*).
   */
  readonly vmstatNames: VmstatRelease;
}
