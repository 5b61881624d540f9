/**
 * The movable_ops driver conformance suite: the contract of spec §2 (isolate, migrate,
 * put back, the references and flags each leaves) and, for an adapter with a release hook,
 * the owner-release rules of §4, as executable checks per profile, independent of any test
 * runner.
 * @module
 */

import {
  getProfile,
  type Machine,
  MopsError,
  NO_PAGE_CONTENTS,
  PROFILE_NAMES,
  type ProfileName,
  validatePlugin,
  valueKind,
} from '@mops/core';
import { type DriverAdapter, rig, suiteMachine, warnings, watchMachines } from './rig.js';
import { RULES, type Rule } from './rules.js';

export type { DriverAdapter } from './rig.js';
export { populateResultProblem } from './rig.js';

/** One rule's outcome. */
export interface RuleResult {
  /** Short rule id, e.g. `migrate` (see {@link CONFORMANCE_RULES}). */
  readonly id: string;
  /** What the rule requires. */
  readonly rule: string;
  /** The spec section it comes from. */
  readonly section: string;
  /** Whether the driver satisfied it. */
  readonly passed: boolean;
  /**
   * Why it failed, for a table cell (empty when it passed or was skipped): the first
   * {@link DETAIL_FINDINGS} distinct findings, each repeated one with its count, then how
   * many more there are ({@link summarizeFindings}). The whole list is in `findings`.
   */
  readonly detail: string;
  /**
   * Everything the rule found wrong, in the order found, repeats included (empty when it
   * passed or was skipped); {@link distinctFindings} collapses the repeats.
   */
  readonly findings: readonly string[];
  /**
   * Set when the rule could not check the driver (the adapter lacks a hook the rule needs):
   * the reason. `passed` is then true although nothing was checked; report it as skipped.
   */
  readonly skipped?: string;
}

/** One distinct finding of a rule and how many times the rule reported it. */
export interface DistinctFinding {
  readonly finding: string;
  readonly count: number;
}

/** The distinct findings of `findings`, in the order each first came, with their counts. */
export function distinctFindings(findings: readonly string[]): DistinctFinding[] {
  const counts = new Map<string, number>();
  for (const f of findings) counts.set(f, (counts.get(f) ?? 0) + 1);
  return [...counts].map(([finding, count]) => ({ finding, count }));
}

/** A distinct finding as text: the finding, then `(×count)` when it was repeated. */
export function formatFinding({ finding, count }: DistinctFinding): string {
  return count > 1 ? `${finding} (×${count})` : finding;
}

/** How many distinct findings {@link RuleResult.detail} shows. */
export const DETAIL_FINDINGS = 3;

/**
 * Findings for one line (a table cell): the first `max` distinct ones
 * ({@link formatFinding}), then `(+N more)` for the N distinct ones left out; joined by
 * `; `.
 */
export function summarizeFindings(findings: readonly string[], max = DETAIL_FINDINGS): string {
  const distinct = distinctFindings(findings);
  const shown = distinct.slice(0, max).map(formatFinding);
  if (distinct.length > max) shown.push(`(+${distinct.length - max} more)`);
  return shown.join('; ');
}

/**
 * Checks that `adapter` is a {@link DriverAdapter}: `MopsError('E_USAGE')` naming the field
 * that is missing or of the wrong type, and the plugin's own `MopsError('E_PLUGIN')` when
 * it is not a plugin. Every rule would otherwise report the same TypeError.
 */
function checkAdapter(adapter: DriverAdapter): void {
  if (typeof adapter !== 'object' || adapter === null || Array.isArray(adapter))
    throw new MopsError(
      'E_USAGE',
      `the driver adapter must be an object { name, plugin, populate, release? }, got ${valueKind(adapter)}`,
      'adapter',
    );
  const a = adapter as Partial<Record<keyof DriverAdapter, unknown>>;
  const fail = (field: keyof DriverAdapter, what: string, got = valueKind(a[field])): never => {
    const whose = typeof a.name === 'string' && a.name !== '' ? ` ${a.name}` : '';
    throw new MopsError('E_USAGE', `driver adapter${whose}: ${field} ${what}, got ${got}`, field);
  };
  if (typeof a.name !== 'string' || a.name === '')
    fail('name', 'must be a non-empty string (it names the driver in reports)');
  if (typeof a.plugin !== 'object' || a.plugin === null)
    fail('plugin', 'must be the mops plugin { manifest, register } to check');
  validatePlugin(a.plugin, adapter.name);
  if (typeof a.populate !== 'function')
    fail('populate', "must be a function (machine, n) returning the driver's new pfns");
  if (a.release !== undefined && typeof a.release !== 'function')
    fail('release', 'must be a function (machine, pfn) when given');
  if (a.machine !== undefined && (typeof a.machine !== 'object' || a.machine === null))
    fail('machine', 'must be an object of machine options when given');
  if (a.profiles !== undefined) {
    const list = a.profiles;
    const known = PROFILE_NAMES as readonly unknown[];
    const bad = Array.isArray(list) ? list.findIndex((p) => !known.includes(p)) : -2;
    if (bad !== -1)
      fail(
        'profiles',
        `must be an array of profiles (${PROFILE_NAMES.join(', ')}) when given`,
        bad >= 0 ? `an array holding ${valueKind((list as unknown[])[bad])}` : undefined,
      );
  }
}

/**
 * `adapter` and `profile` checked before a rule runs ({@link checkAdapter}; an unknown
 * profile is core's `MopsError('E_CONFIG')`), so a mistake in either is one error, not the
 * same failure in every rule.
 */
function checkArguments(adapter: DriverAdapter, profile: ProfileName): void {
  checkAdapter(adapter);
  getProfile(profile);
}

/**
 * A machine for checking a driver: the plugin installed and `n` of its pages made, with
 * page contents as the suite's machines have them (see {@link DriverAdapter.machine}). For your
 * own scripted interleavings: spawn tasks on `machine.sched`, set `machine.sched.manual =
 * true`, and step them with `step` / `runUntil` / `runToEnd`.
 */
export function driverMachine(
  adapter: DriverAdapter,
  profile: ProfileName,
  n = 8,
): { machine: Machine; pages: number[] } {
  checkArguments(adapter, profile);
  const r = rig(adapter, profile, n);
  r.m.mem.pages.lists.freeList(r.list);
  return { machine: r.m, pages: r.pages };
}

/**
 * The machine every rule of `profile` starts from: the suite's machine with the plugin
 * installed and none of its pages made yet. Throws what installing the plugin throws (a
 * `register` that throws: `MopsError('E_PLUGIN')`), which every rule would otherwise report,
 * and, before that, a malformed adapter (`MopsError('E_USAGE')` naming the field) or an
 * unknown profile (`MopsError('E_CONFIG')`, as core's).
 */
export function conformanceMachine(adapter: DriverAdapter, profile: ProfileName): Machine {
  checkArguments(adapter, profile);
  return suiteMachine(adapter, profile);
}

/**
 * The rules of the suite (id, rule, spec section), by id:
 * - `isolate` (§2.1, §3.1): isolate_page accepts every page the driver published and left
 *   at rest, under the page lock; it leaves the lock to the VM, drops no reference and
 *   never touches the isolated flag;
 * - `migrate` (§2.1, §2.5): a successful migrate_page makes dst the driver's movable page
 *   with its own reference, copies the contents, takes dst into its structures and lets go
 *   of src;
 * - `putback` (§2.1, §3.2): putback_page takes the page back: every page can be isolated
 *   again and holds no extra reference;
 * - `failure-putback` (§3.2, §3.5): pages that could not migrate (-ENOMEM) go back to the
 *   driver intact;
 * - `ping-pong` (§2.5, §3.6): pages migrated twice in a row stay the driver's, leak no
 *   reference on a target, and every src returns to the buddy allocator;
 * - `race` (§3.1, §9, S07): two compactors racing over the driver's pages under the seeded
 *   random scheduler keep every invariant, for 50 seeds;
 * - `compaction` (§8.8): compact_memory migrates the driver's pages and leaves every
 *   invariant intact;
 * - `release-isolated` (§4, S19, S21): the owner releasing pages the VM holds isolated
 *   (v4.8–v6.3 `__ClearPageMovable` under the page lock; v6.17 keeping movable_ops and
 *   faking success): each ends in the buddy allocator, the isolated flag untouched; run
 *   when the adapter has a `release` hook.
 *
 * `runRule` takes an id; its result's `rule` is the rule's full text, as here under
 * `rule` (`mops check-plugin` prints the id, the sections and the verdict).
 */
export const CONFORMANCE_RULES: readonly { id: string; rule: string; section: string }[] =
  RULES.map(({ id, rule, section }) => ({ id, rule, section }));

/** The profiles a driver is checked against: the adapter's list or the plugin's manifest. */
export function conformanceProfiles(adapter: DriverAdapter): ProfileName[] {
  checkAdapter(adapter);
  const list = adapter.profiles ?? adapter.plugin.manifest.profiles;
  return PROFILE_NAMES.filter((p) => list.includes(p));
}

function findRule(id: string): Rule {
  const r = RULES.find((x) => x.id === id);
  if (!r)
    throw new MopsError(
      'E_USAGE',
      `unknown conformance rule '${id}'; the rules are ${RULES.map((x) => x.id).join(', ')}`,
      'id',
    );
  return r;
}

/**
 * Why rule `id` cannot check `adapter` (e.g. `release-isolated` without a `release` hook),
 * or undefined when it can.
 */
export function ruleSkipReason(adapter: DriverAdapter, id: string): string | undefined {
  return findRule(id).skip?.(adapter);
}

/**
 * Runs one rule; a thrown error counts as a failure with its message. A rule that cannot
 * check the adapter is not run: it comes back passed, with `skipped` giving the reason.
 */
export function runRule(adapter: DriverAdapter, profile: ProfileName, id: string): RuleResult {
  checkArguments(adapter, profile);
  return runCheckedRule(adapter, profile, findRule(id));
}

/** {@link runRule} for arguments already checked. */
function runCheckedRule(adapter: DriverAdapter, profile: ProfileName, r: Rule): RuleResult {
  const skipped = r.skip?.(adapter);
  if (skipped !== undefined)
    return {
      id: r.id,
      rule: r.rule,
      section: r.section,
      passed: true,
      detail: '',
      findings: [],
      skipped,
    };
  let findings: string[];
  const lastMachine = watchMachines();
  try {
    findings = r.check(adapter, profile);
  } catch (e) {
    // What the machine reported before the throw (a violation that names the driver's
    // mistake comes before the kernel BUG it leads to), then the throw itself.
    const m = lastMachine();
    findings = [
      ...(m ? warnings(m) : []),
      e instanceof Error ? `${e.name}: ${e.message.split('\n')[0]}` : String(e),
    ];
  }
  findings = withContentsHint(adapter, findings);
  return {
    id: r.id,
    rule: r.rule,
    section: r.section,
    passed: findings.length === 0,
    detail: summarizeFindings(findings),
    findings,
  };
}

/** What the core says of page contents used on a machine built without them. */

/**
 * `findings` with the cause first when the driver used page contents its manifest did not
 * ask for: the suite, like `mops`, builds a machine with page contents only for a plugin
 * whose manifest says `needsContents: true`, so the driver's uses of them throw (in
 * populate) or are protocol violations (in its callbacks).
 */
function withContentsHint(adapter: DriverAdapter, findings: string[]): string[] {
  if (
    adapter.plugin.manifest.needsContents === true ||
    !findings.some((f) => f.includes(NO_PAGE_CONTENTS))
  )
    return findings;
  return [
    `${adapter.name} uses page contents, but the manifest of plugin ${adapter.plugin.manifest.name} does not say needsContents: true, so its machine has none: add needsContents: true to the manifest`,
    ...findings,
  ];
}

/**
 * Runs every rule against one profile. The adapter, the profile and installing the plugin
 * are checked first ({@link conformanceMachine}): a mistake there throws, once.
 */
export function checkDriverConformance(adapter: DriverAdapter, profile: ProfileName): RuleResult[] {
  conformanceMachine(adapter, profile);
  return RULES.map((r) => runCheckedRule(adapter, profile, r));
}
