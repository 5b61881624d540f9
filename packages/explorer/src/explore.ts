/**
 * The functions behind `mops explore`, `mops replay` and `mops scenarios`. Results are plain
 * JSON-able objects; `failed` maps to exit status 1, and usage mistakes raise
 * `MopsError('E_USAGE')` (exit status 2).
 * @module
 */

import { MopsError, type ProfileName, valueKind } from '@mops/core';
import {
  type ExploreOptions,
  type ExploreResult,
  type FailureInfo,
  type ReplayOptions,
  type ReplayResult,
  type ScenarioInfo,
  STRATEGIES,
  type StrategyName,
  type TraceTable,
} from './explore_types.js';
import { formatReport, replayCommand } from './report.js';
import { sameNumbers } from './reuse_probe.js';
import { type Chooser, type Execution, execute } from './runner.js';
import { listScenarios, resolveScenario, type Scenario } from './scenario.js';
import { decodeSchedule, encodeSchedule } from './schedule.js';
import { inShard, nthSeed, parseShard } from './shards.js';
import { failureSignature, normaliseDecisions, shrinkSchedule } from './shrink.js';
import { DfsExplorer, PctChooser, RandomChooser, ReplayChooser } from './strategies.js';
import { option, usage } from './usage.js';

export * from './explore_types.js';
export { inShard, mergeShardResults, nthSeed, parseShard } from './shards.js';

/** PCT runs made to measure k, with seeds of their own (see {@link pctSteps}). */
const PCT_PILOTS = 16;
const PCT_PILOT_SEED = 0x9c7;
const pctEstimates = new WeakMap<Scenario, Map<string, number>>();

/**
 * PCT's k, the number of steps a run takes, which the change points are drawn within: the
 * longest of the run without preemptions and of 16 PCT runs at `depth` with
 * seeds of their own (drawn within the first's length). A run can take far longer than the
 * one without preemptions (a task spinning on a lock whose holder PCT keeps off the CPU),
 * and no change point could fall in the steps beyond k. The same for every seed, so that a
 * seed names one schedule whatever ran before it (chunks, shards, workers); measured once
 * per scenario, variant, profile and depth in a process.
 * @param scenario the scenario (from resolveScenario)
 * @param variant its variant
 * @param profile the profile it runs under
 * @param depth PCT's bug depth d
 * @returns k, in scheduling steps
 */
export function pctSteps(
  scenario: Scenario,
  variant: string,
  profile: ProfileName,
  depth: number,
): number {
  let byKey = pctEstimates.get(scenario);
  if (byKey === undefined) {
    byKey = new Map();
    pctEstimates.set(scenario, byKey);
  }
  const key = `${variant}\0${profile}\0${depth}`;
  const known = byKey.get(key);
  if (known !== undefined) return known;
  const first = execute(scenario, variant, profile, new ReplayChooser([])).steps;
  let k = first;
  for (let i = 0; i < PCT_PILOTS; i++) {
    const c = new PctChooser(nthSeed(PCT_PILOT_SEED, i), depth, first);
    k = Math.max(k, execute(scenario, variant, profile, c).steps);
  }
  byKey.set(key, k);
  return k;
}

/**
 * A run that passed without a single step ran no task: the scenario spawned none, and its
 * "no failure" would vouch for nothing. E_PLUGIN.
 */
function stepped(scenario: Scenario, e: Execution): void {
  if (e.steps === 0)
    throw new MopsError(
      'E_PLUGIN',
      `scenario ${scenario.name}: a run took no step, so there is nothing to explore: its setup() or start() spawns no task; fix the scenario`,
      'setup',
    );
}

/** The options of {@link explore} and {@link replay}, by kind of value. */
const EXPLORE_OPTIONS = {
  variant: 'string',
  strategy: 'string',
  runs: 'integer',
  seed: 'integer',
  depth: 'integer',
  bound: 'integer',
  shard: 'string',
  profile: 'string',
  shrink: 'boolean',
} as const;
const REPLAY_OPTIONS = { variant: 'string', schedule: 'string', profile: 'string' } as const;

/**
 * `opts` checked against `kinds`: an object, every key an option (a misspelt one would
 * silently leave its default), every string or boolean given as one (integers are checked
 * with their range). `MopsError('E_USAGE')` naming the option otherwise.
 */
function checkOptions(
  opts: unknown,
  kinds: Readonly<Record<string, 'string' | 'integer' | 'boolean'>>,
): void {
  const names = Object.keys(kinds);
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts))
    throw usage(
      `options must be an object of ${names.join(', ')}; got ${valueKind(opts)}`,
      'options',
    );
  for (const [key, v] of Object.entries(opts)) {
    if (!Object.hasOwn(kinds, key))
      throw usage(`unknown option '${key}'; the options are ${names.join(', ')}`, key);
    const kind = kinds[key];
    if (v === undefined || kind === 'integer' || typeof v === kind) continue;
    throw usage(
      `${option(key)} must be ${kind === 'boolean' ? 'true or false' : 'a string'}, got ${valueKind(v)}`,
      key,
    );
  }
}

function intOption(
  name: string,
  v: number | undefined,
  dflt: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v < min || v > max)
    throw usage(
      `${option(name)} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`}, got ${valueKind(v)}`,
      name,
    );
  return v;
}

function failureInfo(e: Execution): FailureInfo | undefined {
  const f = e.failure;
  if (!f) return undefined;
  const info = { kind: f.kind, message: f.message, step: f.step };
  return f.raisedAt === undefined ? info : { ...info, raisedAt: f.raisedAt };
}

/**
 * Explores `name` with a strategy. Stops at the first failure, which it confirms on a fresh
 * instance (see {@link ExploreResult.reproduced}), shrinks (fewer preemptions, then fewer
 * steps), replays with a trace and reports.
 */
export function explore(name: string, opts: ExploreOptions = {}): ExploreResult {
  checkOptions(opts, EXPLORE_OPTIONS);
  const { scenario, variant, profile } = resolveScenario(name, opts.variant, opts.profile);
  const strategy = (opts.strategy ?? scenario.strategy ?? 'random') as StrategyName;
  if (!STRATEGIES.includes(strategy))
    throw usage(`unknown strategy '${opts.strategy}'; choose ${STRATEGIES.join(', ')}`, 'strategy');
  const runs = intOption('runs', opts.runs, 1000, 1);
  const seed0 = intOption('seed', opts.seed, 1, -(2 ** 31), 2 ** 31 - 1);
  const depth = intOption('depth', opts.depth, 3, 1, 64);
  const bound = intOption('bound', opts.bound, 2, 0, 64);
  // An option of another strategy would be silently ignored.
  if (opts.depth !== undefined && strategy !== 'pct')
    throw usage(
      `${option('depth')} is PCT's bug depth; this run's strategy is ${strategy}`,
      'depth',
    );
  if (opts.seed !== undefined && strategy === 'dfs')
    throw usage(
      `${option('seed')} is the first seed of random and PCT runs; DFS takes none (its schedules follow from ${option('bound')})`,
      'seed',
    );
  if (opts.bound !== undefined && strategy !== 'dfs')
    throw usage(
      `${option('bound')} is DFS's preemption bound; this run's strategy is ${strategy}`,
      'bound',
    );
  const shard = opts.shard === undefined ? undefined : parseShard(opts.shard);
  if (shard && shard.count > 1 && strategy === 'dfs')
    throw usage(
      `${option('shard')} splits seeds: use it with strategy random or pct, not dfs`,
      'shard',
    );

  const base = { scenario: scenario.name, variant, profile, strategy };
  let found: { e: Execution; seed?: number } | undefined;
  let schedules = 0;
  let exhausted: boolean | undefined;

  if (strategy === 'dfs') {
    const dfs = new DfsExplorer(bound);
    for (let c = dfs.next(); c !== undefined && schedules < runs; c = dfs.next()) {
      schedules++;
      const e = execute(scenario, variant, profile, c);
      if (e.failure) {
        found = { e };
        break;
      }
      stepped(scenario, e);
      dfs.backtrack(e.decisions.length);
    }
    exhausted = found ? false : dfs.exhausted;
  } else {
    const estimate = strategy === 'pct' ? pctSteps(scenario, variant, profile, depth) : 0;
    for (let k = 0; k < runs; k++) {
      const s = nthSeed(seed0, k);
      if (shard && !inShard(s, shard.index, shard.count)) continue;
      schedules++;
      const c: Chooser =
        strategy === 'pct' ? new PctChooser(s, depth, estimate) : new RandomChooser(s);
      const e = execute(scenario, variant, profile, c);
      if (e.failure) {
        found = { e, seed: s };
        break;
      }
      stepped(scenario, e);
    }
  }

  const extra = {
    ...(strategy === 'pct' ? { depth } : {}),
    ...(strategy === 'dfs' ? { bound, exhausted } : {}),
    ...(opts.shard !== undefined ? { shard: opts.shard } : {}),
    ...(strategy !== 'dfs' ? { firstSeed: seed0, runs } : {}),
  };
  if (!found) return { ...base, failed: false, schedules, ...extra };

  const first = found.e;
  const signature = failureSignature(first);
  // Every schedule the report names is first run as `replay` runs it, traced, on a fresh
  // instance from `setup`: a failure that came from something an earlier run left behind
  // in a reused instance does not show there.
  const onFresh = (d: readonly number[]) =>
    execute(scenario, variant, profile, new ReplayChooser(d), { trace: true, reuse: false });
  let decisions = normaliseDecisions(first);
  const original = onFresh(decisions);
  const reproduced = failureSignature(original) === signature;
  let traced = original;
  let shrinkAttempts = 0;
  let note: string | undefined;
  // Only a shrunk schedule was shrunk from something; its size counted as the traced run
  // counts steps (a task left alone shows every point there).
  let shrunkFrom: { steps: number; preemptions: number } | undefined;
  if (!reproduced) note = NOT_REPRODUCED;
  else if (opts.shrink !== false) {
    const r = shrinkSchedule(scenario, variant, profile, first);
    shrinkAttempts = r.attempts;
    const shrunk = normaliseDecisions(r.execution);
    // A schedule shrinking leaves as it was is reported as found.
    if (!sameNumbers(shrunk, decisions)) {
      const t = onFresh(shrunk);
      if (failureSignature(t) === signature) {
        decisions = shrunk;
        traced = t;
        // "Shrunk from" only a larger size: a schedule of the same size is not smaller.
        if (t.steps !== original.steps || t.preemptions !== original.preemptions)
          shrunkFrom = { steps: original.steps, preemptions: original.preemptions };
      } else note = SHRUNK_NOT_REPRODUCED;
    }
  }
  const schedule = encodeSchedule(scenario.name, decisions);
  const param =
    strategy === 'pct'
      ? `depth ${depth}`
      : strategy === 'dfs'
        ? `preemption bound ${bound}`
        : undefined;
  const report = formatReport(
    {
      scenario: scenario.name,
      variant,
      profile,
      strategy,
      seed: found.seed,
      param,
      schedule,
      shrunkFrom,
      ...(reproduced ? {} : { unreproduced: first.failure }),
      ...(note !== undefined ? { note } : {}),
    },
    traced,
  );
  return {
    ...base,
    failed: true,
    schedules,
    ...extra,
    ...(found.seed !== undefined ? { seed: found.seed } : {}),
    schedule,
    failure: failureInfo(reproduced ? traced : first),
    reproduced,
    ...(note !== undefined ? { note } : {}),
    steps: traced.steps,
    preemptions: traced.preemptions,
    ...(shrunkFrom ? { shrunkFrom } : {}),
    shrinkAttempts,
    report,
    trace: traceOf(traced),
    command: replayCommand({ scenario: scenario.name, variant, profile, schedule }),
  };
}

/** The trace of a traced run, for a result. */
function traceOf(e: Execution): TraceTable {
  return { tasks: e.tasks, rows: e.trace ?? [] };
}

/** Why a failure is reported as not reproduced: {@link ExploreResult.note}. */
const NOT_REPRODUCED =
  'the failure did not reproduce on a fresh instance (built by setup, as `replay` runs the schedule), ' +
  'so it came from something earlier runs left behind. ' +
  'Does the scenario’s `state` list every object its runs change? A run may depend only on the machine, ' +
  '`state` and the schedule, not on a variable in a closure or at module level';

/** Why the reported schedule is the unshrunk one: {@link ExploreResult.note}. */
const SHRUNK_NOT_REPRODUCED =
  'the smallest schedule shrinking found did not fail the same way on a fresh instance (built by setup, ' +
  'as `replay` runs it), so this is the schedule exploring found: runs on the reused instance depended on ' +
  'what earlier runs left behind. Does the scenario’s `state` list every object its runs change?';

/**
 * Replays a schedule string on `name` and reports what happened, with the per-CPU trace.
 * The run is on a fresh instance from the scenario's `setup`, whatever ran before in the
 * process: the same as `mops replay`.
 */
export function replay(name: string, opts: ReplayOptions): ReplayResult {
  checkOptions(opts, REPLAY_OPTIONS);
  const { scenario, variant, profile } = resolveScenario(name, opts.variant, opts.profile);
  if (typeof opts.schedule !== 'string' || opts.schedule.trim() === '')
    throw usage(
      `${option('schedule')} is required (a v1:SCENARIO:… or v2:SCENARIO:… string printed by explore)`,
      'schedule',
    );
  const { decisions } = decodeSchedule(opts.schedule, scenario.name);
  return replayDecisions(scenario, variant, profile, decisions);
}

/** {@link replay} on decoded decisions. */
export function replayDecisions(
  scenario: Scenario,
  variant: string,
  profile: ProfileName,
  decisions: readonly number[],
): ReplayResult {
  const chooser = new ReplayChooser(decisions);
  // A fresh instance: what earlier runs of this process did cannot matter.
  const e = execute(scenario, variant, profile, chooser, { trace: true, reuse: false });
  const diverged = chooser.diverged || (!e.failure && decisions.length > e.decisions.length);
  const schedule = encodeSchedule(scenario.name, normaliseDecisions(e));
  const report = formatReport(
    { scenario: scenario.name, variant, profile, strategy: 'replay', schedule },
    e,
  );
  return {
    scenario: scenario.name,
    variant,
    profile,
    failed: e.failure !== undefined,
    schedule,
    diverged,
    ...(e.failure ? { failure: failureInfo(e) } : {}),
    steps: e.steps,
    preemptions: e.preemptions,
    report,
    trace: traceOf(e),
    command: replayCommand({ scenario: scenario.name, variant, profile, schedule }),
  };
}

/** The registered scenarios, for `mops scenarios`. */
export function scenarios(): ScenarioInfo[] {
  return listScenarios().map((s) => ({
    name: s.name,
    description: s.description,
    variants: [...s.variants],
    profiles: [...s.profiles],
    strategy: s.strategy ?? 'random',
  }));
}
