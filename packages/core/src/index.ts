/**
 * `@mops/core`: the emulated mm — physical memory as struct-of-arrays pages, the buddy
 * allocator, page primitives, tasks and locks, counters and tracepoints.
 * @module @mops/core
 */

import 'reflect-metadata';

export {
  container,
  type DependencyContainer,
  inject,
  injectAll,
  injectable,
  Lifecycle,
  scoped,
} from 'tsyringe';
export * from './buddy/boost.js';
export * from './buddy/free_area.js';
export * from './buddy/free_page.js';
export * from './buddy/gfp.js';
export * from './buddy/init.js';
export * from './buddy/page_alloc.js';
export type { BuddyProfile, HighatomicProfile } from './buddy/profile.js';
export * from './buddy/rmqueue.js';
export * from './buddy/sysctl.js';
export * from './clock.js';
export * from './compaction/index.js';
export * from './debug/dump_page.js';
export * from './debug/invariants.js';
export * from './errors.js';
export * from './machine.js';
export * from './memory/constants.js';
export * from './memory/layout.js';
export * from './memory/list.js';
export * from './memory/mem.js';
export * from './memory/pages.js';
export * from './memory/pfn_set.js';
export * from './memory/zone.js';
export * from './migrate/index.js';
export * from './module_target.js';
export * from './page/flags.js';
export * from './page/lock.js';
export * from './page/page.js';
export * from './page/refcount.js';
export * from './plugin.js';
export * from './proc/index.js';
export * from './profile.js';
export type { FormatProfile } from './profile_formats.js';
export * from './sched/index.js';
export * from './trace/index.js';
export * from './vmstat/items.js';
export * from './vmstat/releases.js';
export * from './vmstat/vmstat.js';
export * from './workload/checkerboard.js';
export * from './workload/churn.js';
export * from './workload/compaction_test.js';
export * from './workload/movable_filler.js';
