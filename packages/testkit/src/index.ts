/**
 * `@mops/testkit`: the movable_ops driver conformance suite (runner-independent, and as
 * vitest tests) for plugin authors.
 * @module @mops/testkit
 */

export * from './conformance.js';
export { describeDriverConformance } from './vitest.js';
