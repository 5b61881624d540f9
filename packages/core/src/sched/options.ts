/**
 * The types of the scheduler's options, strategies and reports.
 * @module
 */

import { MopsError, valueKind } from '../errors.js';
import type { Scheduler } from './scheduler.js';
import type { Task } from './task.js';

/**
 * Picks the next task to run one point of, among the tasks that may run now
 * ({@link Scheduler.pickable}: never empty, ordered by task id). The explorer plugs PCT,
 * replay and DFS strategies in here.
 */
export type PickNext = (runnable: readonly Task[], sched: Scheduler) => Task;

/**
 * How {@link Scheduler.runAll} interleaves tasks:
 * - `'run-to-completion'`: run the first runnable task until it finishes or blocks, then
 *   the next (no preemption: the order a single CPU would give);
 * - `'round-robin'`: one point per task in turn, by task id;
 * - `'random'`: a task chosen uniformly at each point, from the scheduler's seeded PRNG;
 * - a {@link PickNext} function.
 *
 * Under the three named strategies a task whose step ended at a spin-wait's `cpu_relax`
 * point (see {@link CPU_RELAX}) lets another task run first, and a spinner no other task
 * can help is a {@link Livelock}. A PickNext function is given every task that may run, the
 * spinner included: giving way is its own business (the explorer's strategies do).
 */
export type Strategy = 'run-to-completion' | 'round-robin' | 'random' | PickNext;

/** The named strategies of {@link Scheduler.runAll}. */
const STRATEGIES: readonly string[] = ['run-to-completion', 'round-robin', 'random'];

/**
 * MopsError('E_USAGE') unless `strategy` is a {@link Strategy}.
 * @param strategy the value given as the strategy
 */
export function checkStrategy(strategy: unknown): void {
  if (typeof strategy === 'function' || STRATEGIES.includes(strategy as string)) return;
  throw new MopsError(
    'E_USAGE',
    `runAll: strategy must be ${STRATEGIES.map((x) => `'${x}'`).join(', ')} or a function, got ${valueKind(strategy)}`,
    'strategy',
  );
}

/**
 * A wake function of {@link Scheduler.wakeUp}, called with each task blocked on the key in
 * queue order (the kernel's `wait_queue_entry.func`). It returns a positive number to wake
 * the task (it may first change the task's {@link Task.waitFlags}), 0 to leave it queued and
 * go on, or a negative number to leave it queued and stop the walk.
 * @see kernel/sched/wait.c __wake_up_common()
 */
export type WakeFunction = (task: Task) => number;

/** Options of a {@link Scheduler}. */
export interface SchedulerOptions {
  /** Seed of the PRNG behind the `'random'` strategy (default 1). */
  seed?: number;
  /**
   * Receives warnings that do not stop the run: `'lockdep'` splats, `'sleep_in_atomic'` and
   * `'scheduling_while_atomic'` (in the kernel, printed to dmesg). They are also kept in {@link Scheduler.warnings}.
   */
  onWarning?: (kind: string, text: string) => void;
  /**
   * Lockdep treats a process-context `read_lock()` as a recursive read (the profile's
   * `lockdepReadLockRecursive`: v4.8); default false, as from 5.10 on. See
   * {@link Lockdep.readLockRecursive}.
   */
  readLockRecursive?: boolean;
  /**
   * Lockdep titles its reports `[ INFO: ... ]` / `[ BUG: ... ]` (the profile's
   * `lockdepBracketedTitles`: v4.8); default false (`WARNING: ...`, 4.15 on).
   */
  lockdepBracketedTitles?: boolean;
  /**
   * Mutexes hand themselves to a robbed first waiter (the profile's `mutexHandoff`: 4.10
   * on); default true.
   */
  mutexHandoff?: boolean;
  /**
   * The head writer of a queued rwlock sets `_QW_WAITING` at once, even while a writer
   * holds the lock (the profile's `qrwlockWaitingAtOnce`: 4.15 on); default true.
   */
  qrwlockWaitingAtOnce?: boolean;
  /**
   * might_sleep() reports `non_block`, `preempt_count: %x, expected: %x` and the RCU nest
   * depth (the profile's `mightSleepExpected`: 5.16 on); default true.
   */
  mightSleepExpected?: boolean;
  /**
   * process_one_work()'s report of a work item that leaked a lock or atomic context as 6.9
   * on prints it (`BUG: workqueue leaked atomic, lock or RCU: comm[pid]`, with the depths),
   * rather than `BUG: workqueue leaked lock or atomic: comm/preempt/pid` (the profile's
   * `workqueueLeakRcu`); default false.
   */
  workqueueLeakRcu?: boolean;
}

/** Options of {@link Scheduler.spawn}. */
export interface SpawnOptions {
  /**
   * The emulated CPU the task runs on, shown in reports and ftrace lines. By default the
   * lowest CPU no live task runs on when it is spawned: live tasks never share a default
   * CPU, and a task that ends frees its CPU for the next (tasks run one after another all
   * run on CPU 0). A CPU given later may still be one a default took, so when tasks share
   * CPUs, give every task its CPU. Tasks on the same CPU share it as on a preemptible
   * kernel: they interleave at any scheduling point, except while one of them has
   * preemption off (it holds a spinlock or a non-sleeping rwlock_t, or spins for one); until
   * then the others of that CPU do not run.
   * See {@link Scheduler.pickable}.
   */
  cpu?: number;
  /**
   * PF_* flags: `PF_MEMALLOC`; `PF_KTHREAD` for a task that stands for a kernel thread
   * (without it a task stands for a process in a system call, which returns to user space
   * when it ends).
   */
  flags?: number;
}

/** A warning recorded by the scheduler (see {@link SchedulerOptions.onWarning}). */
export interface SchedWarning {
  /** `'lockdep'`, `'sleep_in_atomic'`, … */
  readonly kind: string;
  /** The kernel-style report. */
  readonly text: string;
}
