/**
 * Compacting a zone through the programmatic API: build a machine, fragment it with
 * movable pages, look at it the way /proc shows it, compact, and look again.
 * @module
 */

import {
  COMPACT_STATUS,
  compactMemory,
  createMachine,
  fragmentationScoreNode,
  fragmentWithFiller,
  procView,
} from '@mops/core';

/** What {@link compactAZone} saw. */
export interface CompactAZoneResult {
  /** /proc/buddyinfo before and after. */
  readonly buddyinfo: { readonly before: string; readonly after: string };
  /** The node's fragmentation score (0..100) before and after. */
  readonly score: { readonly before: number; readonly after: number };
  /** Each zone's compact_result. */
  readonly results: string[];
  /** Pages migrated (pgmigrate_success). */
  readonly migrated: number;
}

/** Fragments a 64 MiB machine with movable filler pages and runs compact_memory on it. */
export function compactAZone(seed = 1): CompactAZoneResult {
  const m = createMachine({ memory: '64M', profile: 'v6.3', seed, contents: false });
  // 90 % of memory in movable pages among a few pinned unmovable ones; then free half.
  fragmentWithFiller(m, { fill: 0.9, free: 0.5 });
  const before = procView(m, 'buddyinfo');
  const scoreBefore = fragmentationScoreNode(m.mem);
  // echo 1 > /proc/sys/vm/compact_memory; compaction runs as a task on the scheduler.
  const results = m.run(() => compactMemory(m)).map((r) => COMPACT_STATUS[r]);
  return {
    buddyinfo: { before, after: procView(m, 'buddyinfo') },
    score: { before: scoreBefore, after: fragmentationScoreNode(m.mem) },
    results,
    migrated: m.mem.vmstat.get('pgmigrate_success'),
  };
}
