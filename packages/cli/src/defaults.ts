/**
 * The defaults the commands take when an option is left out, shared by the help and the
 * commands (kept apart from them so that `mops --help` loads no emulator).
 * @module
 */

/** `compact --order -1` without `--mode`: compact_memory's own mode, MIGRATE_SYNC. */
export const COMPACT_MEMORY_MODE = 'sync';

/** `compact --order N` (N ≥ 0) without `--mode`: kcompactd's MIGRATE_SYNC_LIGHT. */
export const COMPACT_ORDER_MODE = 'sync_light';

/** `explore` without `--runs`: the schedules a random or PCT run tries, the DFS cap. */
export const EXPLORE_RUNS = 1000;

/**
 * `explore --strategy pct` without `--depth`: the explorer's PCT bug depth (explore()'s
 * default, which its package does not export).
 */
export const EXPLORE_PCT_DEPTH = 3;

/**
 * `explore --strategy dfs` without `--bound`: the explorer's DFS preemption bound
 * (explore()'s default, which its package does not export).
 */
export const EXPLORE_DFS_BOUND = 2;
