/**
 * The movable_ops driver conformance suite: the contract of spec §2 (isolate, migrate,
 * put back, the references and flags each leaves) and, for an adapter with a release hook,
 * the owner-release rules of §4, as executable checks per profile, independent of any test
 * runner.
 * @module
 */

import { type Machine, PROFILE_NAMES, type ProfileName } from '@mops/core';
import { type DriverAdapter, rig, warnings, watchMachines } from './rig.js';
import { RULES, type Rule } from './rules.js';

export type { DriverAdapter } from './rig.js';

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
  /** Why it failed (empty when it passed or was skipped). */
  readonly detail: string;
  /**
   * Set when the rule could not check the driver (the adapter lacks a hook the rule needs):
   * the reason. `passed` is then true although nothing was checked; report it as skipped.
   */
  readonly skipped?: string;
}

/**
 * A machine for checking a driver: the plugin installed and `n` of its pages made. For your
 * own scripted interleavings: spawn tasks on `machine.sched`, set `machine.sched.manual =
 * true`, and step them with `step` / `runUntil` / `runToEnd`.
 */
export function driverMachine(
  adapter: DriverAdapter,
  profile: ProfileName,
  n = 8,
): { machine: Machine; pages: number[] } {
  const r = rig(adapter, profile, n);
  r.m.mem.pages.lists.freeList(r.list);
  return { machine: r.m, pages: r.pages };
}

/** The rules of the suite (id, rule, spec section). */
export const CONFORMANCE_RULES: readonly { id: string; rule: string; section: string }[] =
  RULES.map(({ id, rule, section }) => ({ id, rule, section }));

/** The profiles a driver is checked against: the adapter's list or the plugin's manifest. */
export function conformanceProfiles(adapter: DriverAdapter): ProfileName[] {
  const list = adapter.profiles ?? adapter.plugin.manifest.profiles;
  return PROFILE_NAMES.filter((p) => list.includes(p));
}

function findRule(id: string): Rule {
  const r = RULES.find((x) => x.id === id);
  if (!r) throw new Error(`unknown conformance rule '${id}'`);
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
  const r = findRule(id);
  const skipped = r.skip?.(adapter);
  if (skipped !== undefined)
    return { id: r.id, rule: r.rule, section: r.section, passed: true, detail: '', skipped };
  let detail: string[];
  const lastMachine = watchMachines();
  try {
    detail = r.check(adapter, profile);
  } catch (e) {
    // What the machine reported before the throw (a violation that names the driver's
    // mistake comes before the kernel BUG it leads to), then the throw itself.
    const m = lastMachine();
    detail = [
      ...(m ? warnings(m) : []),
      e instanceof Error ? `${e.name}: ${e.message.split('\n')[0]}` : String(e),
    ];
  }
  return {
    id: r.id,
    rule: r.rule,
    section: r.section,
    passed: detail.length === 0,
    detail: detail.join('; '),
  };
}

/** Runs every rule against one profile. */
export function checkDriverConformance(adapter: DriverAdapter, profile: ProfileName): RuleResult[] {
  return RULES.map((r) => runRule(adapter, profile, r.id));
}
