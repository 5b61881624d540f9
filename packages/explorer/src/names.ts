/**
 * The form of a scenario name, shared by the registry and the schedule strings that carry
 * it (internal: not exported from the package).
 * @module
 */

/** The pattern of a scenario name, as messages show it. */
export const SCENARIO_NAME = '[a-z0-9][a-z0-9-]*';

/** A whole scenario name. */
export const SCENARIO_NAME_RE = new RegExp(`^${SCENARIO_NAME}$`);
