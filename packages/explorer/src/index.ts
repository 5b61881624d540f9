/**
 * `@mops/explorer`: deterministic race exploration.
 * @module
 */

/** Version of the explorer's schedule encoding. */
export const SCHEDULE_VERSION = 1;
