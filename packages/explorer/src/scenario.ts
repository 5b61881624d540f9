/**
 * Race scenarios: a small machine, a few tasks whose interleaving the explorer chooses, and
 * the assertions that say whether a run went wrong. Built-in scenarios live in
 * `scenarios.ts`; plugins add theirs with {@link registerScenario}.
 * @module
 */

import { type Machine, MopsError, PROFILE_NAMES, type ProfileName, valueKind } from '@mops/core';
import { SCENARIO_NAME_RE as NAME_RE, SCENARIO_NAME } from './names.js';

/** What a scenario's `setup` receives. */
export interface ScenarioContext {
  /** The variant to build (one of {@link Scenario.variants}). */
  readonly variant: string;
  /** The protocol profile of the machine to build. */
  readonly profile: ProfileName;
}

/**
 * One prepared run of a scenario: a machine and the racing tasks, either already spawned on
 * its scheduler by `setup` (not started), or spawned by {@link start}. The explorer steps
 * those tasks and checks the oracles.
 */
export interface ScenarioInstance {
  /** The machine the tasks run on. */
  readonly machine: Machine;
  /**
   * Scenario assertions that must hold after every step (cheap: called once per point).
   * Returns the failed assertions, empty when all hold.
   */
  readonly check?: () => readonly string[];
  /** Scenario assertions on the final state, once every task has finished. */
  readonly finish?: () => readonly string[];
  /**
   * Spawns the racing tasks. When present, `setup` must not spawn them itself, and the
   * explorer may reuse the instance for many schedules: it snapshots the machine and
   * {@link state} before the first `start` and restores them before each later one.
   *
   * A reused instance must run deterministically: what a run does may depend only on the
   * machine, {@link state} and the schedule, never on anything else a run leaves behind
   * (a counter in a closure, a module-level cache). The explorer relies on it: once two
   * runs ended on the same sequence of steps, it restores after the next such run only the
   * words of the machine's buffers those runs changed.
   */
  readonly start?: () => void;
  /**
   * Objects outside the machine that a run mutates (driver bookkeeping, recorded outcomes),
   * restored with the machine when the instance is reused: everything reachable from them
   * (fields, arrays, maps, sets, typed arrays; not what only a closure reaches). A field a
   * run adds is deleted again on an object listed here and on a plain object anywhere; a
   * class instance reached only through them keeps the fields its constructor made. State a
   * driver keeps per machine can instead live in the machine (`memoryExt` from
   * `@mops/core`), as the core's own does (compaction, the movable_ops registry): it is
   * then restored without being listed here.
   *
   * Something a run changes that is neither here nor in the machine is left over for the
   * next run, which may then fail, or pass, because of it. The explorer runs the first
   * schedule of a new instance again on the instance restored, and stops with
   * `MopsError('E_STATE')` when the two runs differ; a leftover that shows only later makes
   * a failure that does not reproduce on a fresh instance, reported as such
   * (`ExploreResult.reproduced` false).
   */
  readonly state?: readonly object[];
  /**
   * The draft protocol this instance's driver and VM follow in place of the profile's
   * release (e.g. `'v3 draft of spec §4.2'`), in a variant that shows where a draft's rule
   * leads. A `protocol_violation` the run raises is then the draft's fault, the driver having
   * done what the draft said: the failure reads `draft protocol fault (DRAFT): …`, without
   * the driver's name in front, and its detail says so first.
   */
  readonly draft?: string;
}

/** A race scenario with its variants (by convention `buggy` and `fixed`). */
export interface Scenario {
  /** Short name used on the command line and in schedule strings: `[a-z0-9][a-z0-9-]*`. */
  readonly name: string;
  /** One line saying what races. */
  readonly description: string;
  /** Variant names; the first is the default. */
  readonly variants: readonly string[];
  /** Profiles the scenario can run on; the first is the default. */
  readonly profiles: readonly ProfileName[];
  /** Spec references (scenario ids, race sections), for reports. */
  readonly refs?: string;
  /**
   * The strategy `explore` uses when the caller names none (default `random`). `pct` suits a
   * race that needs one task to stay preempted for a long stretch of another's steps, which
   * PCT's priorities produce and random choice almost never does.
   */
  readonly strategy?: 'random' | 'pct';
  /**
   * Builds a fresh machine and its instance. Spawns the racing tasks itself unless the
   * instance has a `start`, which then spawns them. Must be deterministic.
   */
  setup(ctx: ScenarioContext): ScenarioInstance;
}

const registry = new Map<string, Scenario>();

/**
 * Adds a scenario to the registry (plugins call this for their driver races). A name in use
 * is replaced only with `replace: true`; otherwise `MopsError('E_PLUGIN')`.
 */
export function registerScenario(scenario: Scenario, opts: { replace?: boolean } = {}): void {
  if (typeof scenario !== 'object' || scenario === null || Array.isArray(scenario))
    throw new MopsError(
      'E_PLUGIN',
      `a scenario must be an object { name, description, variants, profiles, setup }, got ${valueKind(scenario)}`,
      'scenario',
    );
  if (typeof scenario.name !== 'string' || !NAME_RE.test(scenario.name))
    throw new MopsError(
      'E_PLUGIN',
      `scenario name ${typeof scenario.name === 'string' ? `'${scenario.name}'` : valueKind(scenario.name)} must match ${SCENARIO_NAME} (it is part of schedule strings)`,
      'name',
    );
  if (typeof opts !== 'object' || opts === null)
    throw new MopsError(
      'E_PLUGIN',
      `registerScenario(${scenario.name}): options must be an object { replace }, got ${valueKind(opts)}`,
      'options',
    );
  for (const field of ['description', 'refs'] as const) {
    const v: unknown = scenario[field];
    if (typeof v !== 'string' && !(field === 'refs' && v === undefined))
      throw new MopsError(
        'E_PLUGIN',
        `scenario ${scenario.name}: ${field} must be a string, got ${valueKind(v)}`,
        field,
      );
  }
  for (const field of ['variants', 'profiles'] as const) {
    const list: unknown = scenario[field];
    if (!Array.isArray(list) || list.length === 0 || !list.every((x) => typeof x === 'string'))
      throw new MopsError(
        'E_PLUGIN',
        `scenario ${scenario.name}: ${field} must be a non-empty array of names, got ${list === undefined ? 'nothing' : JSON.stringify(list)}`,
        field,
      );
  }
  const unknown = scenario.profiles.filter(
    (p) => !(PROFILE_NAMES as readonly string[]).includes(p),
  );
  if (unknown.length > 0)
    throw new MopsError(
      'E_PLUGIN',
      `scenario ${scenario.name}: unknown profile ${unknown.join(', ')}; profiles are ${PROFILE_NAMES.join(', ')}`,
      'profiles',
    );
  if (typeof scenario.setup !== 'function')
    throw new MopsError('E_PLUGIN', `scenario ${scenario.name}: setup must be a function`, 'setup');
  if (
    scenario.strategy !== undefined &&
    scenario.strategy !== 'random' &&
    scenario.strategy !== 'pct'
  )
    throw new MopsError(
      'E_PLUGIN',
      `scenario ${scenario.name}: strategy must be 'random' or 'pct', got ${valueKind(scenario.strategy)}`,
      'strategy',
    );
  if (registry.has(scenario.name) && !opts.replace)
    throw new MopsError(
      'E_PLUGIN',
      `scenario ${scenario.name} is already registered; pass { replace: true } to replace it`,
      'name',
    );
  registry.set(scenario.name, scenario);
}

/** Removes a scenario from the registry; returns whether it was there. */
export function unregisterScenario(name: string): boolean {
  return registry.delete(name);
}

/** The registered scenario called `name`, or undefined. */
export function findScenario(name: string): Scenario | undefined {
  return registry.get(name);
}

/** Every registered scenario, in registration order. */
export function listScenarios(): readonly Scenario[] {
  return [...registry.values()];
}

/**
 * The scenario called `name`, checking `variant` and `profile` against it (defaults: its
 * first variant and profile). Unknown names or unsupported choices raise
 * `MopsError('E_USAGE')`.
 */
export function resolveScenario(
  name: string,
  variant?: string,
  profile?: string,
): { scenario: Scenario; variant: string; profile: ProfileName } {
  const scenario = registry.get(name);
  if (!scenario)
    throw new MopsError(
      'E_USAGE',
      `unknown scenario ${valueKind(name)}; known: ${[...registry.keys()].join(', ')}`,
      'scenario',
    );
  const v = variant ?? scenario.variants[0];
  if (!scenario.variants.includes(v))
    throw new MopsError(
      'E_USAGE',
      `scenario ${name} has no variant '${v}'; choose one of ${scenario.variants.join(', ')}`,
      'variant',
    );
  const p = profile ?? scenario.profiles[0];
  if (!(scenario.profiles as readonly string[]).includes(p))
    throw new MopsError(
      'E_USAGE',
      `scenario ${name} does not run on profile '${p}'; choose one of ${scenario.profiles.join(', ')}`,
      'profile',
    );
  return { scenario, variant: v, profile: p as ProfileName };
}
