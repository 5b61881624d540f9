/**
 * The form of a scenario name, shared by the registry and the schedule strings that carry
 * it (internal: not exported from the package).
 * @module
 */

/** A scenario name: `[a-z0-9][a-z0-9-]*`. */
export const SCENARIO_NAME_RE = /^[a-z0-9][a-z0-9-]*$/;
