/**
 * Running one schedule: build the scenario, step its tasks with a {@link Chooser}, and check
 * the oracles (invariant checker, warnings, lockdep-lite, MmBug and Deadlock, scenario
 * assertions) after every step.
 * @module
 */

import {
  giveWay,
  hexPfn,
  MopsError,
  type ProfileName,
  relaxesAfter,
  type Task,
  valueKind,
  type Yielded,
  Zone,
} from '@mops/core';
import { type CheckedNode, memoFor, memoKeyOf, newNode } from './memo.js';
import { assertionFailure, classify, EarlySigns, oracles } from './oracles.js';
import { isCpuRelax, livelock, noEnd } from './relax.js';
import { leakingState, printOf, reuseDifference, sameNumbers } from './reuse_probe.js';
import type {
  Chooser,
  ExecuteOptions,
  Execution,
  Failure,
  TaskInfo,
  TraceRow,
} from './run_types.js';
import type { Scenario, ScenarioInstance } from './scenario.js';
import { GraphSnapshot } from './snapshot.js';

export type {
  Chooser,
  ExecuteOptions,
  Execution,
  Failure,
  FailureKind,
  TaskInfo,
  TraceRow,
} from './run_types.js';

/** The task list of an untraced run. */
const NO_TASKS: readonly TaskInfo[] = Object.freeze([]);

function taskInfo(t: Task): TaskInfo {
  return { id: t.id, name: t.name, cpu: t.cpu };
}

interface Pooled {
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
   * run again on the instance restored, to check that runs leave nothing behind that the
   * snapshot misses (see {@link execute}).
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
function prepare(
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
  return new MopsError(
    'E_PLUGIN',
    `scenario ${scenario.name}: ${what}() threw (${why}) before any step ran; fix the scenario`,
    what,
  );
}

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

/**
 * The task that continues without a preemption: `prev` if it may still run (it is among
 * `runnable`), else the lowest id.
 */
export function defaultPick(runnable: readonly Task[], prev: Task | undefined): Task {
  if (prev !== undefined && runnable.includes(prev)) return prev;
  return runnable[0];
}

/**
 * Runs one schedule of `scenario`: setup, then at each step the only runnable task or the
 * one `chooser` picks, checking the oracles after each step; stops at the first failure.
 * The first run of a new reused instance is checked by a second run of its schedule on the
 * instance restored (see {@link ExecuteOptions.reuse}).
 */
export function execute(
  scenario: Scenario,
  variant: string,
  profile: ProfileName,
  chooser: Chooser,
  opts: ExecuteOptions = {},
): Execution {
  const memoKey = memoKeyOf(variant, profile);
  const inst = prepare(scenario, variant, profile, opts.reuse ?? true, memoKey);
  const m = inst.machine;
  const sched = m.sched;
  const mem = m.mem;
  const checkEach = (opts.checkEvery ?? 'step') === 'step';
  const maxSteps = opts.maxSteps ?? 10_000;
  // With a trace: every task of the run, those spawned during it (work items) included.
  const tasks: TaskInfo[] | undefined = opts.trace ? sched.tasks.map(taskInfo) : undefined;
  const trace: TraceRow[] | undefined = tasks ? [] : undefined;
  // The driver callbacks each traced step makes, for its row.
  let calls: string[] = [];
  const hookBefore = mem.onDriverCall;
  if (trace)
    mem.onDriverCall = (cb, pfn, src) =>
      calls.push(`${cb}(${hexPfn(pfn)}${src === undefined ? '' : `, ${hexPfn(src)}`})`);
  const record = (t: Task, point: Yielded, preempted: boolean): void => {
    if (!trace || !tasks) return;
    if (calls.length > 0) {
      trace.push({ task: t.id, point, preempted, calls });
      calls = [];
    } else trace.push({ task: t.id, point, preempted });
    if (!tasks.some((x) => x.id === t.id)) tasks.push(taskInfo(t));
  };
  const decisions: number[] = [];
  const defaultIds: number[] = [];
  const warnBase = mem.warnings.length;
  const lockdepBase = sched.lockdep.reports.length;
  let preemptions = 0;
  let steps = 0;
  let prev: Task | undefined;
  let failure: Failure | undefined;

  // A traced run shows every point, those of a task left alone included (step-by-step mode):
  // the decisions, taken only where two tasks may run, are the same. The oracles still run
  // only where an untraced run's steps end, so the run fails as it does untraced. Its steps
  // are not those of untraced runs, so it keeps out of the memo (and is restored whole).
  const traceAll = opts.trace === true;
  const manualBefore = sched.manual;
  if (traceAll) sched.manual = true;
  const memo =
    (opts.memo ?? true) && checkEach && !traceAll ? memoFor(scenario, memoKey) : undefined;
  let node = memo?.root;
  const seen = traceAll ? new EarlySigns(m, inst, warnBase, lockdepBase) : undefined;
  const pooled = lastPooled.pooled?.inst === inst ? lastPooled.pooled : undefined;
  // The first run of a new pooled instance, to be run again on it restored.
  const probe = pooled?.fresh === true;
  if (pooled) pooled.fresh = false;
  // Whether the run stopped in a step that threw, at maxSteps or in a livelock.
  let cut = false;
  // Whether the last step ended at cpu_relax (see CPU_RELAX), and how many cpu_relax
  // points its task reached since another task last took a step.
  let spun = false;
  let relaxes = 0;
  // The tasks other than the spinner, filled by giveWay().
  const others: Task[] = [];

  try {
    for (;;) {
      const all = sched.pickable();
      if (all.length === 0) break;
      // A task whose step ended at cpu_relax lets another run first, as in core's runAll():
      // when none can, it runs one more round of its loop alone; once a round run alone
      // ends at cpu_relax again, the next would see the same state: the spin cannot end.
      const runq = spun && prev !== undefined ? giveWay(all, prev, relaxes, others) : all;
      if (runq === undefined) {
        failure = livelock(sched, prev as Task, steps);
        cut = true;
        break;
      }
      let t: Task;
      let preempted = false;
      if (runq.length === 1) t = runq[0];
      else {
        t = chooser.choose(runq, prev, decisions.length);
        const dflt = defaultPick(runq, prev);
        // Whether prev may continue: runnable, and (with CPUs shared) not held off its CPU.
        const prevMay = prev !== undefined && dflt === prev;
        decisions.push(t.id);
        defaultIds.push(dflt.id);
        if (prevMay && prev !== t) {
          preemptions++;
          preempted = true;
        }
      }
      steps++;
      let point: Yielded;
      try {
        point = sched.step(t);
      } catch (e) {
        failure = classify(e, steps);
        record(t, { op: 'BUG', note: failure.message }, preempted);
        cut = true;
        break;
      }
      record(t, point, preempted);
      spun = isCpuRelax(point);
      relaxes = relaxesAfter(relaxes, t === prev, spun);
      if (node && memo) {
        let kid = node.kids[t.id];
        if (kid === undefined) {
          kid = newNode();
          node.kids[t.id] = kid;
          memo.size++;
        }
        node = kid;
      }
      chooser.afterStep?.(t, steps);
      prev = t;
      // Untraced, a task alone runs on to its next point where another task may run.
      const stepEnds = !traceAll || sched.liveTasks > 1 || t.state !== 'runnable';
      if (stepEnds) failure = oracles(m, inst, warnBase, lockdepBase, node, checkEach, steps);
      else seen?.look(steps);
      if (failure) break;
      if (steps >= maxSteps) {
        cut = true;
        failure = noEnd(sched, maxSteps);
        break;
      }
    }
    if (!failure && !checkEach)
      failure = oracles(m, inst, warnBase, lockdepBase, undefined, true, steps);
    if (!failure) {
      let bad: readonly string[] | undefined;
      try {
        bad = inst.finish?.();
      } catch (e) {
        // A scenario's final check that throws (an MmBug in its clean-up) is a failure too.
        bad = [e instanceof Error ? `${e.name}: ${e.message.split('\n')[0]}` : String(e)];
      }
      failure = assertionFailure('finish', bad, steps);
    }
  } finally {
    // Also when a step or an oracle threw: the machine goes on being used.
    if (traceAll) sched.manual = manualBefore;
    if (trace) mem.onDriverCall = hookBefore;
  }
  if (failure && seen) failure = seen.attribute(failure);
  // Only a run that ended by itself ends in the state of its node: a step that threw is not
  // in the tree, and a run cut at maxSteps skipped `finish`.
  if (pooled !== undefined && node !== undefined && !cut) pooled.ended = node;
  const e: Execution = {
    decisions,
    defaultIds,
    steps,
    preemptions,
    failure,
    tasks: tasks ?? NO_TASKS,
    trace,
    machine: m,
  };
  if (probe && pooled) probeReuse(scenario, variant, profile, pooled, e, opts);
  return e;
}

/**
 * Runs the schedule of `first`, the first run of the new pooled instance `p`, again on `p`
 * restored, with the same options but every state checked (no memo), and compares the two
 * runs: what they did, how they ended and what they left in the machine and the scenario's
 * `state`. A difference means that a run changes something the snapshot does not restore:
 * the pool is dropped (the next run builds a fresh instance, and is checked again) and
 * `MopsError('E_STATE')` says what to list in `state`. Once per pooled instance.
 */
function probeReuse(
  scenario: Scenario,
  variant: string,
  profile: ProfileName,
  p: Pooled,
  first: Execution,
  opts: ExecuteOptions,
): void {
  const fresh = printOf(first, p.snap);
  const ids = first.decisions;
  const replay: Chooser = {
    choose: (runnable, prev, i) =>
      runnable.find((t) => t.id === ids[i]) ?? defaultPick(runnable, prev),
  };
  const again = execute(scenario, variant, profile, replay, { ...opts, memo: false });
  const difference = reuseDifference(fresh, printOf(again, p.snap));
  if (difference === undefined) return;
  pools.get(scenario)?.delete(memoKeyOf(variant, profile));
  if (lastPooled.pooled === p) lastPooled = { scenario: undefined, key: '', pooled: undefined };
  throw leakingState(scenario, difference);
}
