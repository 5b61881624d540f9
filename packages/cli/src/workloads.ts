/**
 * The workload names `--workload` accepts (kept apart from the machine builder so that
 * `mops --help` does not load the emulator).
 * @module
 */

/** The workloads `--workload` accepts. */
export const WORKLOADS = ['none', 'churn', 'filler', 'zsmalloc', 'balloon', 'plugin'] as const;
