/**
 * The runner's types: the strategy interface, failures, traces and executions.
 * @module
 */

import type { Machine, Scheduler, Task, Yielded } from '@mops/core';

/**
 * Picks the task to run at a scheduling decision (more than one task may run). Strategies
 * implement this; the runner records the ids chosen.
 */
export interface Chooser {
  /**
   * @param runnable the tasks that may run now ({@link Scheduler.pickable}: runnable and
   *   not kept off a shared CPU; without the task whose last step ended at `cpu_relax`, see
   *   `CPU_RELAX`), ordered by id (at least two)
   * @param prev the task that ran the previous step, if any
   * @param decision index of this decision in the run (0-based)
   */
  choose(runnable: readonly Task[], prev: Task | undefined, decision: number): Task;
  /** Called after every step with the task that ran and the run's step count so far. */
  afterStep?(task: Task, steps: number): void;
}

/**
 * Kinds of failure the oracles report. `livelock`: the only task able to run spins (its last
 * step ended at a `cpu_relax` point, see `CPU_RELAX`), so nothing can end the spin.
 */
export type FailureKind =
  | 'mmbug'
  | 'deadlock'
  | 'livelock'
  | 'invariant'
  | 'warning'
  | 'lockdep'
  | 'assertion'
  | 'error';

/** Why a run failed. */
export interface Failure {
  /** The oracle that fired. */
  readonly kind: FailureKind;
  /** One line: the assertion or bug. */
  readonly message: string;
  /** Longer text (dump_page, violations, deadlock listing), possibly empty. */
  readonly detail: string;
  /** Step (1-based) after which the failure was seen. */
  readonly step: number;
  /**
   * In a traced run (a report, a replay): the step after which the failing oracle would
   * first have fired, when that is earlier than {@link step}. A task left alone runs on to
   * its next point where another task may run before the oracles are checked, so a warning
   * it raised on the way, or an assertion that became true, is seen only there.
   */
  readonly raisedAt?: number;
}

/** One executed scheduling point, for traces. */
export interface TraceRow {
  /** Task id. */
  readonly task: number;
  /** The point the task yielded (before its primitive ran), or `{op:'done'}`. */
  readonly point: Yielded;
  /** Whether this step preempted a task that could have continued. */
  readonly preempted: boolean;
  /**
   * The driver callbacks the VM called in this step, before the task reached its point
   * (`isolate_page(0x1)`, `migrate_page(0x40, 0x1)`: dst, src), when there were any.
   */
  readonly calls?: readonly string[];
}

/** Identity of a task in a trace. */
export interface TaskInfo {
  /** Task id. */
  readonly id: number;
  /** Task name. */
  readonly name: string;
  /** Emulated CPU. */
  readonly cpu: number;
}

/** Result of one run. */
export interface Execution {
  /** Task ids chosen at each decision. */
  readonly decisions: number[];
  /** For each decision, the task that would have run without a preemption. */
  readonly defaultIds: number[];
  /** Steps executed. */
  readonly steps: number;
  /** Decisions that switched away from a task that could have continued. */
  readonly preemptions: number;
  /** The first failure, if any (the run stops there). */
  readonly failure: Failure | undefined;
  /** The tasks of the run, by id (recorded with the trace only). */
  readonly tasks: readonly TaskInfo[];
  /** Per-step trace, when requested. */
  readonly trace: TraceRow[] | undefined;
  /**
   * The machine the run used, to read: a reused machine is overwritten by the next run, which
   * may write back only what this run changed.
   */
  readonly machine: Machine;
}

/** Options of {@link execute}. */
export interface ExecuteOptions {
  /** Record the per-step trace (for reports). Default false. */
  trace?: boolean;
  /** Run the machine's invariant checker after every step (default) or only at the end. */
  checkEvery?: 'step' | 'end';
  /**
   * Stop with an error after this many steps (a guard against a loop that waits for another
   * task without yielding `cpu_relax` in each round). Default 10 000.
   */
  maxSteps?: number;
  /**
   * Reuse the scenario's machine from the previous schedule, restored from a snapshot, when
   * the scenario allows it (it has `start`). Default true; false builds a fresh machine.
   * After the first run of a new reused instance, two serial schedules (the tasks one after
   * another, in the order spawned and the last spawned first) run on it restored and on a
   * fresh instance, and the first schedule again on it restored; a difference between two
   * runs of one schedule is `MopsError('E_STATE')`: a run changed something the snapshot
   * does not restore (see `ScenarioInstance.state`).
   */
  reuse?: boolean;
  /**
   * Skip the invariant checker after a step when a previous run already checked the state
   * reached by the same sequence of steps (scenarios are deterministic, so that state is
   * the same). Default true.
   */
  memo?: boolean;
}
