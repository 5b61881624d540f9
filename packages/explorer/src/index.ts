/**
 * `@mops/explorer`: deterministic race exploration over the scheduling points of mops
 * tasks — random, PCT and preemption-bounded DFS strategies, replayable schedule strings,
 * shrinking, race reports, and the built-in race scenarios of spec §9.
 * @module
 */

import { registerBuiltinScenarios } from './scenarios.js';

export * from './driver.js';
export * from './explore.js';
export * from './migration_entry.js';
export { BUGGY_FIXED, EVERY_PROFILE, fillFreePages, raceMachine } from './race_machine.js';
export * from './refcount_races.js';
export * from './relax.js';
export * from './report.js';
export * from './runner.js';
export * from './scenario.js';
export * from './scenarios.js';
export * from './schedule.js';
export * from './shrink.js';
export * from './snapshot.js';
export * from './strategies.js';
export * from './vm_tasks.js';

registerBuiltinScenarios();
