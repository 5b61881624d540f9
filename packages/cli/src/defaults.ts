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
