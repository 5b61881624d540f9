/**
 * The instances runs are made on: one per scenario, variant and profile, kept between
 * schedules and restored from a snapshot of its machine and `state` before each (a
 * scenario with `start`); or a fresh one from `setup` for every run.
 * @module
 */

import { MopsError, type ProfileName, valueKind, Zone } from '@mops/core';
import { type CheckedNode, memoKeyOf } from './memo.js';
import { sameNumbers } from './reuse_probe.js';
import type { Scenario, ScenarioInstance } from './scenario.js';
import { GraphSnapshot } from './snapshot.js';

/** A pooled instance and its snapshot. */
export interface Pooled {
  readonly inst: ScenarioInstance;
  readonly snap: GraphSnapshot;
  /**
   * Where the last run on this instance ended, when {@link execute} ran it with the memo:
   * the next restore may then write back only what such a run changes. Taken (cleared) by
   * every prepare.
   */
  ended: CheckedNode | undefined;
  /**
   * Whether the instance is as `setup` and the first `start` left it: its first run is then
   * probed, to check that runs leave nothing behind that the snapshot misses (see
   * {@link probeReuse}).
   */
  fresh: boolean;
}

const pools = new WeakMap<Scenario, Map<string, Pooled>>();

/** The pooled instance of the last scenario and key asked for. */
let lastPooled: { scenario: Scenario | undefined; key: string; pooled: Pooled | undefined } = {
  scenario: undefined,
  key: '',
  pooled: undefined,
};

/**
 * A ready instance of `scenario` with its tasks spawned: a reused one restored from its
 * snapshot when the scenario supports it and `reuse` is on, otherwise a fresh one.
 */
export function prepareInstance(
  scenario: Scenario,
  variant: string,
  profile: ProfileName,
  reuse = true,
): ScenarioInstance {
  return prepare(scenario, variant, profile, reuse, memoKeyOf(variant, profile));
}

/** {@link prepareInstance}, with the `variant\0profile` key already made. */
export function prepare(
  scenario: Scenario,
  variant: string,
  profile: ProfileName,
  reuse: boolean,
  key: string,
): ScenarioInstance {
  if (reuse) {
    const c = lastPooled;
    if (c.scenario === scenario && c.key === key && c.pooled) return reset(c.pooled, scenario);
    let pool = pools.get(scenario);
    const hit = pool?.get(key);
    if (hit) {
      lastPooled = { scenario, key, pooled: hit };
      return reset(hit, scenario);
    }
    const inst = setUp(scenario, variant, profile);
    if (inst.start) {
      const m = inst.machine;
      // A zone without pages has nothing a run can change.
      const snap = new GraphSnapshot(
        [m.mem, m.sched, m.clock, m.prng, m, ...(inst.state ?? [])],
        (o) => o instanceof Zone && !o.populated,
        new Set(inst.state ?? []),
      );
      if (!pool) {
        pool = new Map();
        pools.set(scenario, pool);
      }
      const pooled: Pooled = { inst, snap, ended: undefined, fresh: true };
      pool.set(key, pooled);
      lastPooled = { scenario, key, pooled };
      startFirst(scenario, inst);
    }
    return inst;
  }
  const inst = setUp(scenario, variant, profile);
  startFirst(scenario, inst);
  return inst;
}

/**
 * A scenario's `setup`. One that throws cannot be explored: E_PLUGIN naming the scenario
 * (a MopsError it threw, such as E_CONFIG for its machine, is passed on as it is).
 */
function setUp(scenario: Scenario, variant: string, profile: ProfileName): ScenarioInstance {
  let inst: ScenarioInstance;
  try {
    inst = scenario.setup({ variant, profile });
  } catch (e) {
    throw brokenScenario(scenario, 'setup', e);
  }
  checkInstance(scenario, inst);
  return inst;
}

/**
 * What `setup` returned must be a {@link ScenarioInstance}: an object with a machine, the
 * optional callbacks functions and `state` an array of objects. E_PLUGIN naming the field.
 */
function checkInstance(scenario: Scenario, inst: unknown): asserts inst is ScenarioInstance {
  const bad = (field: string, what: string, got: unknown) =>
    new MopsError(
      'E_PLUGIN',
      `scenario ${scenario.name}: setup() must return { machine, start?, check?, finish?, state? }; ${what}, got ${valueKind(got)}; fix the scenario`,
      field,
    );
  if (typeof inst !== 'object' || inst === null) throw bad('setup', 'not an object', inst);
  const o = inst as Record<string, unknown>;
  const m = o.machine as { sched?: unknown; mem?: unknown } | undefined;
  if (typeof m !== 'object' || m === null || typeof m.sched !== 'object' || !m.mem)
    throw bad('machine', 'machine is not a mops Machine (createMachine)', o.machine);
  for (const f of ['start', 'check', 'finish'])
    if (o[f] !== undefined && typeof o[f] !== 'function')
      throw bad(f, `${f} is not a function`, o[f]);
  const state = o.state;
  if (
    state !== undefined &&
    (!Array.isArray(state) || state.some((x) => typeof x !== 'object' || x === null))
  )
    throw bad('state', 'state is not an array of objects', state);
}

/** The first `start` of an instance: one that throws is E_PLUGIN, as for {@link setUp}. */
function startFirst(scenario: Scenario, inst: ScenarioInstance): void {
  try {
    inst.start?.();
  } catch (e) {
    throw brokenScenario(scenario, 'start', e);
  }
}

function brokenScenario(scenario: Scenario, what: string, e: unknown): MopsError {
  if (e instanceof MopsError) return e;
  const why = e instanceof Error ? `${e.name}: ${e.message.split('\n')[0]}` : String(e);
  const when = aside
    ? 'on a fresh instance built to check the reused one against (setup and start must work every time they are called: replay calls them too)'
    : 'before any step ran';
  return new MopsError(
    'E_PLUGIN',
    `scenario ${scenario.name}: ${what}() threw (${why}) ${when}; fix the scenario`,
    what,
  );
}

/** Whether {@link besidePooled} is building an instance beside the pooled one. */
let aside = false;

/**
 * Restores a pooled instance and starts its tasks. Runs are deterministic, so a run that
 * ended where an earlier one did changed the same objects and the same words of the
 * machine's buffers: the second run ending at a node records them, the third is checked
 * against them (a `MopsError('E_STATE')` when they differ), and the restore after any
 * later run ending there writes back only those.
 */
function reset(p: Pooled, scenario: Scenario): ScenarioInstance {
  p.fresh = false;
  restorePooled(p, scenario);
  p.inst.start?.();
  return p.inst;
}

/** The restore of {@link reset}. */
function restorePooled(p: Pooled, scenario: Scenario): void {
  const end = p.ended;
  p.ended = undefined;
  if (end === undefined) p.snap.restore();
  else if (end.ends === 3)
    p.snap.restoreChanged(end.slots as Int32Array, end.changed as Int32Array);
  else {
    const n = ++end.ends;
    const now = n > 1 ? p.snap.changedRuns() : undefined;
    const slots = n > 1 ? p.snap.changedSlots() : undefined;
    p.snap.restore();
    if (n === 2) {
      end.changed = now;
      end.slots = slots;
    }
    // The third run ending here: check once that it changed what the second did.
    else if (
      n === 3 &&
      !(
        sameNumbers(now as Int32Array, end.changed as Int32Array) &&
        sameNumbers(slots as Int32Array, end.slots as Int32Array)
      )
    ) {
      // Start over at this node: the machine itself was restored whole.
      end.ends = 0;
      end.changed = undefined;
      end.slots = undefined;
      throw nondeterministic(scenario);
    }
  }
}

/**
 * @internal For tests: restores the pooled instance of `scenario` as the next run would,
 * without starting its tasks; returns its snapshot (undefined when nothing is pooled).
 */
export function restorePooledInstance(
  scenario: Scenario,
  variant: string,
  profile: ProfileName,
): GraphSnapshot | undefined {
  const p = pools.get(scenario)?.get(memoKeyOf(variant, profile));
  if (!p) return undefined;
  restorePooled(p, scenario);
  return p.snap;
}

function nondeterministic(scenario: Scenario): MopsError {
  return new MopsError(
    'E_STATE',
    `scenario ${scenario.name}: two runs that ended on the same steps left the machine in different states; ` +
      'a run must depend only on the machine, the scenario state and the schedule ' +
      '(and a run’s machine must not be changed afterwards)',
    'scenario',
  );
}

const NONE = { scenario: undefined, key: '', pooled: undefined };

/** The pooled instance `inst` is, when it is the one last prepared. */
export function pooledOf(inst: ScenarioInstance): Pooled | undefined {
  return lastPooled.pooled?.inst === inst ? lastPooled.pooled : undefined;
}

/** Drops `p` from the pool: the next run of its scenario and key builds a new instance. */
export function dropPooled(scenario: Scenario, key: string, p: Pooled): void {
  pools.get(scenario)?.delete(key);
  if (lastPooled.pooled === p) lastPooled = NONE;
}

/**
 * Runs `fn` with the pooled instance of `scenario` and `key` set aside, so that a run `fn`
 * makes builds a new instance from `setup`; afterwards the set-aside one is pooled again,
 * as it was. It is restored first: `setup` then finds whatever the instances share (an
 * object at module level listed in `state`) as the first did.
 * @returns what `fn` returned, and the new instance it pooled
 */
export function besidePooled<T>(
  scenario: Scenario,
  key: string,
  fn: () => T,
): { result: T; made: Pooled | undefined } {
  const pool = pools.get(scenario);
  const kept = pool?.get(key);
  const last = lastPooled;
  if (kept) {
    kept.ended = undefined;
    kept.snap.restore();
  }
  pool?.delete(key);
  lastPooled = NONE;
  const outer = aside;
  aside = true;
  try {
    const result = fn();
    return { result, made: pools.get(scenario)?.get(key) };
  } finally {
    aside = outer;
    if (kept) pools.get(scenario)?.set(key, kept);
    else pools.get(scenario)?.delete(key);
    lastPooled = last;
  }
}
