/**
 * The v4.8 layout of `mm_migrate_pages` (the 6.x layout is registered with the other
 * ftrace formats).
 * @module
 */

import { migrateModeName } from './types.js';

/**
 * v4.8 `mm_migrate_pages`: "nr_succeeded=%lu nr_failed=%lu mode=%s reason=%s", with the
 * release's reason names.
 */
export function formatMigratePagesV48(
  e: { succeeded: number; failed: number; mode: number; reason: number },
  reasons: readonly string[],
): string {
  return `nr_succeeded=${e.succeeded} nr_failed=${e.failed} mode=${migrateModeName(e.mode)} reason=${reasons[e.reason]}`;
}
