import { MopsError, type ProfileName } from '@mops/core';
import { describe, expect, it } from 'vitest';
import {
  CONFORMANCE_RULES,
  checkDriverConformance,
  conformanceMachine,
  conformanceProfiles,
  DETAIL_FINDINGS,
  type DriverAdapter,
  distinctFindings,
  driverMachine,
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

describe('a bad adapter, profile or plugin is one error, not the same failure in every rule', () => {
  /** What `fn` throws: a MopsError's code, field and message. */
  const thrown = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(MopsError);
      const { code, field, message } = e as MopsError;
      return { code, field, message };
    }
    throw new Error('did not throw');
  };
  const unknownProfile = {
    code: 'E_CONFIG',
    field: 'profile',
    message: 'profile: "v9.9" is not a profile; choose one of v4.8, v6.0, v6.3, v6.17',
  };

  it('an unknown profile is E_CONFIG, as core says it', () => {
    const v99 = 'v9.9' as ProfileName;
    expect(thrown(() => checkDriverConformance(adapter(), v99))).toEqual(unknownProfile);
    expect(thrown(() => runRule(adapter(), v99, 'isolate'))).toEqual(unknownProfile);
    expect(thrown(() => conformanceMachine(adapter(), v99))).toEqual(unknownProfile);
    expect(thrown(() => driverMachine(adapter(), v99))).toEqual(unknownProfile);
  });

  it.each([
    [
      'no populate',
      { name: 'x', plugin: badDriver({}), populate: undefined },
      'populate',
      "driver adapter x: populate must be a function (machine, n) returning the driver's new pfns, got undefined",
    ],
    [
      'no name',
      { ...adapter(), name: undefined },
      'name',
      'driver adapter: name must be a non-empty string (it names the driver in reports), got undefined',
    ],
    [
      'a release that is not a function',
      { ...adapter(), release: 'yes' },
      'release',
      'driver adapter bad: release must be a function (machine, pfn) when given, got "yes"',
    ],
    [
      'an unknown profile in its list',
      { ...adapter(), profiles: ['v6.3', 'v5.10'] },
      'profiles',
      'driver adapter bad: profiles must be an array of profiles (v4.8, v6.0, v6.3, v6.17) when given, got an array holding "v5.10"',
    ],
    [
      'no plugin',
      { ...adapter(), plugin: null },
      'plugin',
      'driver adapter bad: plugin must be the mops plugin { manifest, register } to check, got null',
    ],
    [
      'nothing',
      null,
      'adapter',
      'the driver adapter must be an object { name, plugin, populate, release? }, got null',
    ],
  ])('an adapter with %s is E_USAGE naming the field', (_, bad, field, message) => {
    const a = bad as unknown as DriverAdapter;
    const want = { code: 'E_USAGE', field, message };
    expect(thrown(() => checkDriverConformance(a, 'v6.3'))).toEqual(want);
    expect(thrown(() => runRule(a, 'v6.3', 'isolate'))).toEqual(want);
    expect(thrown(() => conformanceMachine(a, 'v6.3'))).toEqual(want);
    expect(thrown(() => conformanceProfiles(a))).toEqual(want);
  });

  it("a plugin that is not one is core's E_PLUGIN naming its field", () => {
    const a = { ...adapter(), plugin: {} } as unknown as DriverAdapter;
    expect(thrown(() => checkDriverConformance(a, 'v6.3'))).toMatchObject({
      code: 'E_PLUGIN',
      field: 'manifest',
    });
  });

  it('a plugin that cannot be installed stops the check with its error, as conformanceMachine does', () => {
    const p = badDriver({});
    const throwing = {
      ...adapter(),
      plugin: {
        ...p,
        register() {
          throw new Error('no device');
        },
      },
    };
    const err = thrown(() => conformanceMachine(throwing, 'v6.3'));
    expect(err.code).toBe('E_PLUGIN');
    expect(err.message).toContain('no device');
    expect(thrown(() => checkDriverConformance(throwing, 'v6.3'))).toEqual(err);
    // A profile the plugin does not implement.
    const only63 = {
      ...adapter(),
      plugin: { ...p, manifest: { ...p.manifest, profiles: ['v6.3'] } },
    };
    expect(thrown(() => checkDriverConformance(only63 as DriverAdapter, 'v4.8'))).toMatchObject({
      code: 'E_PLUGIN',
      field: 'profile',
    });
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
