/**
 * Memory compaction (mm/compaction.c): both scanners, compact_zone, the entry points,
 * deferral, fragmentation metrics and their debugfs views.
 * @module
 */

export { CaptureControl } from './capture.js';
export * from './compact_zone.js';
export * from './entry.js';
export * from './fast_search.js';
export * from './free_scanner.js';
export * from './kcompactd.js';
export * from './metrics.js';
export * from './migrate_scanner.js';
export * from './node_state.js';
export * from './profile.js';
export * from './state.js';
export * from './sysctl.js';
export * from './types.js';
export * from './views.js';
