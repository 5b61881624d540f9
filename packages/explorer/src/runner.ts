/**
 * Running one schedule: build the scenario, step its tasks with a {@link Chooser}, and check
 * the oracles (invariant checker, warnings, lockdep-lite, MmBug and Deadlock, scenario
 * assertions) after every step.
 * @module
 */

import {
  giveWay,
  hexPfn,
  type ProfileName,
  relaxesAfter,
  type Task,
  type Yielded,
} from '@mops/core';
import { besidePooled, dropPooled, type Pooled, pooledOf, prepare } from './instance_pool.js';
import { memoFor, memoKeyOf, newNode } from './memo.js';
import { assertionFailure, EarlySigns, oracles, stepThrew } from './oracles.js';
import { isCpuRelax, livelock, noEnd } from './relax.js';
import { leakingState, printOf, type RunPrint, reuseDifference } from './reuse_probe.js';
import type {
  Chooser,
  ExecuteOptions,
  Execution,
  Failure,
  TaskInfo,
  TraceRow,
} from './run_types.js';
import type { Scenario } from './scenario.js';

export { prepareInstance, restorePooledInstance } from './instance_pool.js';
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
 * The first run of a new reused instance is probed: other schedules, and its own again, on
 * the instance restored and on fresh ones (see {@link ExecuteOptions.reuse}).
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
  const seen = traceAll ? new EarlySigns(m, inst, warnBase) : undefined;
  const pooled = pooledOf(inst);
  // The first run of a new pooled instance, to be run again on it restored.
  const probe = pooled?.fresh === true && !probing;
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
        failure = stepThrew(m, inst, warnBase, e, steps);
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
      if (stepEnds) failure = oracles(m, inst, warnBase, node, checkEach, steps);
      else seen?.look(steps);
      if (failure) break;
      if (steps >= maxSteps) {
        cut = true;
        failure = noEnd(sched, maxSteps);
        break;
      }
    }
    if (!failure && !checkEach) failure = oracles(m, inst, warnBase, undefined, true, steps);
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

/** Whether a probe's own runs are under way. */
let probing = false;

/** `execute` for a probe, without the memo; a new instance it builds is not probed. */
function probeRun(
  scenario: Scenario,
  variant: string,
  profile: ProfileName,
  chooser: Chooser,
  opts: ExecuteOptions,
): Execution {
  const outer = probing;
  probing = true;
  try {
    return execute(scenario, variant, profile, chooser, { ...opts, memo: false });
  } finally {
    probing = outer;
  }
}

/** A chooser that takes the tasks of `ids`, one per decision, as a run took them. */
function replayOf(ids: readonly number[]): Chooser {
  return {
    choose: (runnable, prev, i) =>
      runnable.find((t) => t.id === ids[i]) ?? defaultPick(runnable, prev),
  };
}

/**
 * Two schedules that run the tasks one after another: in the order spawned (the default
 * pick at every step), and the last spawned first (the highest id that may run).
 */
const SERIAL: readonly [string, Chooser][] = [
  ['the tasks one after another, in the order spawned', replayOf([])],
  [
    'the tasks one after another, the last spawned first',
    { choose: (runnable) => runnable.reduce((a, b) => (b.id > a.id ? b : a)) },
  ],
];

/**
 * The print of `chooser`'s run on a new instance from `setup`, made beside the pooled one
 * (see {@link besidePooled}).
 */
function freshPrint(
  scenario: Scenario,
  variant: string,
  profile: ProfileName,
  chooser: Chooser,
  opts: ExecuteOptions,
): RunPrint | undefined {
  const { result, made } = besidePooled(scenario, memoKeyOf(variant, profile), () =>
    probeRun(scenario, variant, profile, chooser, opts),
  );
  return made && printOf(result, made.snap);
}

/**
 * The probe of a new pooled instance `p` after its first run, `first`: two schedules that
 * run the tasks one after another ({@link SERIAL}), each on `p` restored and on a new
 * instance from `setup`, then the schedule of `first` again on `p` restored (which leaves
 * `p` as `first` did); each pair is compared: what the runs did, how they ended and what
 * they left in the machine and the scenario's `state`. A difference means that a run
 * changes something the snapshot does not restore: `MopsError('E_STATE')` says what to
 * list in `state`. When the probe finds one, or cannot finish, the pool is dropped: the
 * next run builds a fresh instance, and probes it. Once per pooled instance.
 */
function probeReuse(
  scenario: Scenario,
  variant: string,
  profile: ProfileName,
  p: Pooled,
  first: Execution,
  opts: ExecuteOptions,
): void {
  try {
    const fresh = printOf(first, p.snap);
    for (const [what, chooser] of SERIAL) {
      const reused = printOf(probeRun(scenario, variant, profile, chooser, opts), p.snap);
      const f = freshPrint(scenario, variant, profile, chooser, opts);
      const d = f && reuseDifference(f, reused);
      if (d !== undefined) throw leakingState(scenario, `a schedule that runs ${what}`, d);
    }
    // Last, so that the instance ends as the first run left it.
    const again = probeRun(scenario, variant, profile, replayOf(first.decisions), opts);
    const difference = reuseDifference(fresh, printOf(again, p.snap));
    if (difference !== undefined) throw leakingState(scenario, 'its first schedule', difference);
  } catch (e) {
    dropPooled(scenario, memoKeyOf(variant, profile), p);
    throw e;
  }
}
