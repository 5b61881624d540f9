import { describe, expect, it } from 'vitest';
import {
  CONFORMANCE_RULES,
  checkDriverConformance,
  DETAIL_FINDINGS,
  distinctFindings,
  ruleSkipReason,
  runRule,
  summarizeFindings,
} from '../src/index.js';
import { type Bugs, badDriver } from './bad_driver.js';

const adapter = (bugs: Bugs = {}) => {
  const p = badDriver(bugs);
  return { name: 'bad', plugin: p, populate: p.populate, release: p.release };
};

describe('a rule that exercised nothing does not pass', () => {
  const empty = { ...adapter(), name: 'empty', populate: () => [] };

  it.each(['v4.8', 'v6.3', 'v6.17'] as const)(
    '%s: populate() returning no pages fails every rule, race and compaction included, with the reason',
    (profile) => {
      const why = 'Error: empty: populate() returned no pages';
      const results = checkDriverConformance(empty, profile);
      expect(results.map((r) => r.id)).toEqual(CONFORMANCE_RULES.map((r) => r.id));
      expect(results.filter((r) => r.passed).map((r) => r.id)).toEqual([]);
      expect(Object.fromEntries(results.map((r) => [r.id, r.detail]))).toEqual(
        Object.fromEntries(results.map((r) => [r.id, why])),
      );
      for (const r of results) {
        expect(r.skipped, r.id).toBeUndefined();
        expect(r.findings, r.id).toEqual([why]);
      }
    },
    60_000,
  );

  it.each(['v4.8', 'v6.3', 'v6.17'] as const)(
    '%s: pages never published fail every rule that would migrate them, saying nothing could be isolated',
    (profile) => {
      const results = checkDriverConformance(adapter({ unpublished: true }), profile);
      const failed = Object.fromEntries(results.filter((r) => !r.passed).map((r) => [r.id, r]));
      for (const id of ['isolate', 'migrate', 'putback', 'failure-putback', 'ping-pong', 'race'])
        expect(failed[id]?.findings.join('; '), id).toMatch(
          /could not be isolated|no page could be isolated/,
        );
      expect(failed.migrate?.findings[0]).toBe(
        'no page could be isolated, so the rule checked nothing',
      );
      expect(failed['failure-putback']?.findings[0]).toBe(
        'no page could be isolated, so the rule checked nothing',
      );
      expect(failed.race?.findings).toEqual([
        'no page could be isolated, so the rule checked nothing (50 seeds)',
      ]);
      expect(failed.compaction?.detail).toBe('compaction migrated none of the driver’s pages');
    },
    60_000,
  );

  it.each([
    [undefined, 'undefined'],
    [{ length: 2 }, 'an object'],
    [[1, -1], 'an array holding -1'],
    ['12', 'the string "12"'],
    [['3072', '3073'], 'an array holding the string "3072"'],
  ])('populate() returning %j fails every rule with what it returned', (value, shown) => {
    const odd = { ...adapter(), name: 'odd', populate: () => value as unknown as number[] };
    const why = `Error: odd: populate() must return an array of pfns (non-negative integers), got ${shown}`;
    for (const r of checkDriverConformance(odd, 'v6.3')) expect(r.findings, r.id).toEqual([why]);
  });

  it('an unknown rule id is E_USAGE listing the rules', () => {
    expect(() => runRule(adapter(), 'v6.3', 'nope')).toThrow(
      "unknown conformance rule 'nope'; the rules are isolate, migrate, putback, failure-putback, ping-pong, race, compaction, release-isolated",
    );
  });

  it('release-isolated without a release hook stays skipped, not failed', () => {
    const { release: _, ...noRelease } = empty;
    expect(ruleSkipReason(noRelease, 'release-isolated')).toBeDefined();
    expect(runRule(noRelease, 'v6.3', 'release-isolated')).toMatchObject({
      passed: true,
      skipped: 'the adapter has no release hook',
    });
    expect(runRule(noRelease, 'v6.3', 'race')).toMatchObject({ passed: false });
  });
});

describe("a rule's findings: distinct and capped in the detail, complete in findings", () => {
  it('collapses identical findings with their count, keeping the order each first came', () => {
    const f = ['b', 'a', 'b', 'c', 'b', 'a'];
    expect(distinctFindings(f)).toEqual([
      { finding: 'b', count: 3 },
      { finding: 'a', count: 2 },
      { finding: 'c', count: 1 },
    ]);
    expect(summarizeFindings(f)).toBe('b (×3); a (×2); c');
    expect(summarizeFindings([])).toBe('');
  });

  it('shows the first 3 distinct findings, then how many more', () => {
    expect(DETAIL_FINDINGS).toBe(3);
    const f = ['a', 'b', 'a', 'c', 'd', 'e', 'e'];
    expect(summarizeFindings(f)).toBe('a (×2); b; c; (+2 more)');
    expect(summarizeFindings(f, 1)).toBe('a (×2); (+4 more)');
  });

  const MSG = 'migrate_page returned 1, not 0 or a negative errno; treated as -EINVAL';

  it('race: a violation repeated for every page is shown once, with its count', () => {
    const r = runRule(adapter({ migrateReturnsOne: true }), 'v6.3', 'race');
    expect(r.passed).toBe(false);
    expect(r.detail.split(MSG).length - 1).toBe(1);
    expect(r.findings.length).toBeGreaterThan(1);
    expect(new Set(r.findings).size).toBe(1);
    expect(r.findings[0]).toContain(MSG);
    expect(r.detail).toBe(`${r.findings[0]} (×${r.findings.length})`);
  });

  it.each(['migrate', 'ping-pong', 'compaction'])(
    '%s: the protocol violation comes first, before the findings it leads to',
    (id) => {
      const r = runRule(adapter({ migrateReturnsOne: true }), 'v6.3', id);
      expect(r.findings[0]).toContain(MSG);
      expect(r.detail.startsWith(r.findings[0])).toBe(true);
      // ... and the consequences are still there, after it.
      expect(r.findings.some((x) => !x.includes(MSG))).toBe(true);
    },
  );

  it.each(['migrate', 'ping-pong', 'compaction'])(
    '%s: the detail is short, the findings keep every one',
    (id) => {
      const r = runRule(adapter({ migrateReturnsOne: true }), 'v6.3', id);
      expect(r.passed).toBe(false);
      expect(r.detail.split(MSG).length - 1).toBeLessThanOrEqual(1);
      expect(r.detail.length).toBeLessThan(1000);
      // Every page's migrate_page returned 1: the machine warned once per call.
      expect(r.findings.filter((x) => x.includes(MSG)).length).toBeGreaterThanOrEqual(8);
      const distinct = distinctFindings(r.findings);
      expect(r.detail).toBe(summarizeFindings(r.findings));
      if (distinct.length > DETAIL_FINDINGS)
        expect(r.detail).toMatch(
          new RegExp(`; \\(\\+${distinct.length - DETAIL_FINDINGS} more\\)$`),
        );
    },
  );
});
