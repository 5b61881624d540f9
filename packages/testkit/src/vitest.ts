/**
 * `describeDriverConformance` for vitest.
 * @module
 */

import { describe, expect, it } from 'vitest';
import {
  CONFORMANCE_RULES,
  conformanceProfiles,
  type DriverAdapter,
  distinctFindings,
  formatFinding,
  ruleSkipReason,
  runRule,
} from './conformance.js';

/**
 * Declares the conformance suite for a driver: one `describe` per profile the driver
 * supports, one test per rule, each failing with the rule's distinct findings (a repeated
 * one once, with its count). A rule the adapter cannot be checked by (it lacks the hook
 * the rule needs) is declared skipped, its title saying why.
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
            // Every distinct finding, one per line with its count (the detail shows only
            // the first few).
            expect(distinctFindings(r.findings).map(formatFinding)).toEqual([]);
            expect(r.passed).toBe(true);
          }, 60_000);
        }
      });
    }
  });
}
