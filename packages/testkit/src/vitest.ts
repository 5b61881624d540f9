/**
 * `describeDriverConformance` for vitest.
 * @module
 */

import { describe, expect, it } from 'vitest';
import {
  CONFORMANCE_RULES,
  conformanceProfiles,
  type DriverAdapter,
  ruleSkipReason,
  runRule,
} from './conformance.js';

/**
 * Declares the conformance suite for a driver: one `describe` per profile the driver
 * supports, one test per rule, each failing with the rule's findings. A rule the adapter
 * cannot be checked by (it lacks the hook the rule needs) is declared skipped, its title
 * saying why.
 */
export function describeDriverConformance(adapter: DriverAdapter): void {
  describe(`${adapter.name}: movable_ops driver conformance`, () => {
    for (const profile of conformanceProfiles(adapter)) {
      describe(profile, () => {
        for (const rule of CONFORMANCE_RULES) {
          const why = ruleSkipReason(adapter, rule.id);
          if (why !== undefined) {
            it.skip(`${rule.id}: not checked — ${why}`, () => {});
            continue;
          }
          // The race rule runs 50 seeded machines: more than vitest's default 5 s on a
          // busy machine.
          it(`${rule.id} (${rule.section}): ${rule.rule}`, () => {
            const r = runRule(adapter, profile, rule.id);
            expect(r.detail).toBe('');
            expect(r.passed).toBe(true);
          }, 60_000);
        }
      });
    }
  });
}
