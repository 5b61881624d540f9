/**
 * Emulated tasks: one generator each, driven by a {@link Scheduler}.
 * @module
 */

import type { BlockPoint, KernelGen, SchedPoint, WaitKey, Yielded } from './types.js';

/**
 * Life cycle of a task. `runnable` tasks may be stepped; `blocked` ones wait for
 * `wake(key)`; `done` returned a value; `failed` threw (the error is in `Task.error`).
 */
export type TaskState = 'runnable' | 'blocked' | 'done' | 'failed';

/** Lockdep flag: the acquisition is a read (shared) acquisition. */
export const LOCKDEP_READ = 1;
/** Lockdep flag: the acquisition is a trylock, which cannot deadlock and adds no dependency. */
export const LOCKDEP_TRYLOCK = 2;
/**
 * Lockdep flag: a read acquisition that may nest inside another read acquisition of the same
 * lock class by the same task, so it is not reported as recursion (`rwlock_t` readers where
 * the profile's lockdep calls `read_lock()` recursive: `Lockdep.readLockRecursive`).
 */
export const LOCKDEP_RECURSIVE_READ = 4;

/** How the next BlockPoint of a task sleeps (see {@link Task.blockMode}). */
export const BLOCK_SLEEP = 0;
/** The next BlockPoint is a contended spinlock: the task "spins", it does not sleep. */
export const BLOCK_SPIN = 1;
/** The next BlockPoint sleeps, but the sleeping lock already ran its might_sleep() check. */
export const BLOCK_CHECKED = 2;

/**
 * Wait-queue entry flag: an exclusive waiter (`prepare_to_wait_exclusive()`, a lock taker). A
 * {@link Scheduler.wakeUp} with a limit stops once it has woken that many exclusive waiters.
 * @see include/linux/wait.h WQ_FLAG_EXCLUSIVE
 */
export const WQ_EXCLUSIVE = 1;
/**
 * Wait-queue entry flag left to the waiting code's own meaning (the page lock: hand the lock
 * over to this waiter).
 * @see include/linux/wait.h WQ_FLAG_CUSTOM
 */
export const WQ_CUSTOM = 2;
/**
 * Wait-queue entry flag a wake function sets when it completed the wait on the waiter's
 * behalf (the page lock: it took the lock for the waiter).
 * @see include/linux/wait.h WQ_FLAG_DONE
 */
export const WQ_DONE = 4;

/** One lock a task holds, as lockdep sees it (built on demand by {@link Task.held}). */
export interface HeldLock {
  /** Lockdep class (with a `/subclass` suffix for nested acquisitions). */
  readonly className: string;
  /** The lock instance (also its wait key). */
  readonly key: WaitKey;
  /** Held for read (shared). */
  readonly read: boolean;
  /** Taken by a trylock. */
  readonly trylock: boolean;
}

/** The marker {@link Scheduler.step} returns when the task has finished. */
export const DONE_POINT: SchedPoint = Object.freeze({ op: 'done' });

/**
 * An emulated kernel thread or user context: kcompactd, a direct compactor, a zsmalloc user,
 * a balloon worker. It runs a {@link KernelGen}; the scheduler decides when.
 * @see include/linux/sched.h struct task_struct
 */
export class Task<T = unknown> {
  /** Current state; only the scheduler changes it. */
  state: TaskState = 'runnable';
  /** The generator's return value, once `state` is `'done'`. */
  result: T | undefined = undefined;
  /** What the generator threw, once `state` is `'failed'`. */
  error: unknown = undefined;
  /** The last scheduling point the task yielded (the primitive it is about to perform). */
  lastPoint: Yielded | undefined = undefined;
  /** While `state` is `'blocked'`: the BlockPoint (wait key and description) it sleeps on. */
  blockedOn: BlockPoint | undefined = undefined;
  /** Number of points this task has yielded. */
  steps = 0;
  /**
   * A SIGKILL is pending ({@link Scheduler.sendSigkill}): `fatal_signal_pending()` is true
   * in this task from now on. Kernel code that checks it backs out (compaction aborts with
   * COMPACT_CONTENDED); mops does not deliver the signal any further.
   * @see include/linux/sched/signal.h fatal_signal_pending()
   */
  sigkill = false;
  /**
   * Spinlocks (and rwlock_t) held: the task is in atomic context while this is non-zero,
   * and sleeping there is a bug.
   * @see include/linux/preempt.h in_atomic()
   */
  atomicDepth = 0;
  /**
   * Set by a lock just before it yields a BlockPoint: {@link BLOCK_SLEEP} (default),
   * {@link BLOCK_SPIN} or {@link BLOCK_CHECKED}. The scheduler reads and resets it.
   */
  blockMode = 0;
  /**
   * The task spins for a spinlock or rwlock_t: set when it parks with {@link BLOCK_SPIN},
   * cleared when it next runs. A spinner keeps its CPU (see sched/cpu.ts).
   */
  spinning = false;
  /**
   * The task is on its CPU with preemption off, keeping the other tasks of that CPU off it:
   * it ended its last step holding a spinlock or rwlock_t ({@link atomicDepth} > 0) or
   * spinning for one. A task that slept (a sleep in atomic context) gave its CPU up, even
   * with locks held, until it runs again. Kept by the scheduler after each step once two
   * tasks share a CPU.
   */
  cpuHeld = false;
  /**
   * Set by waiting code just before it yields a BlockPoint: the WQ_* flags of the wait-queue
   * entry the task is parked with (default 0: a plain, non-exclusive waiter, queued at the
   * tail). The scheduler moves them to {@link waitFlags} and resets this field.
   */
  nextWaitFlags = 0;
  /**
   * The WQ_* flags of the wait-queue entry the task is (or was last) parked with. A wake
   * function of {@link Scheduler.wakeUp} may add flags (e.g. {@link WQ_DONE}); the woken task
   * reads them when it runs again.
   */
  waitFlags = 0;
  /** Lockdep classes of the held locks, in acquisition order. */
  readonly heldClasses: string[] = [];
  /** Instance keys of the held locks, parallel to {@link heldClasses}. */
  readonly heldKeys: WaitKey[] = [];
  /** LOCKDEP_* flags of the held locks, parallel to {@link heldClasses}. */
  readonly heldFlags: number[] = [];

  /** @param gen the task body, already created but not started. */
  constructor(
    /** Task id (like a pid): 1, 2, 3… in spawn order, per scheduler. */
    readonly id: number,
    /** Name for reports, e.g. `'kcompactd0'`. */
    readonly name: string,
    /**
     * The emulated CPU it runs on: shown in reports and ftrace lines; tasks sharing one
     * cannot run while another of them has preemption off (see `SpawnOptions.cpu`).
     */
    readonly cpu: number,
    /** PF_* flags, e.g. `PF_MEMALLOC`. */
    public flags: number,
    /** The generator driving the task. */
    readonly gen: KernelGen<T>,
  ) {}

  /** A workqueue worker's work function, as its reports print it (`Scheduler.queueWork`). */
  workfn: string | undefined = undefined;

  /** `name/id`, as used in reports. */
  get label(): string {
    return `${this.name}/${this.id}`;
  }

  /** The locks this task holds, oldest first. */
  get held(): HeldLock[] {
    const out: HeldLock[] = [];
    for (let i = 0; i < this.heldKeys.length; i++) {
      const f = this.heldFlags[i];
      out.push({
        className: this.heldClasses[i],
        key: this.heldKeys[i],
        read: (f & LOCKDEP_READ) !== 0,
        trylock: (f & LOCKDEP_TRYLOCK) !== 0,
      });
    }
    return out;
  }
}

/**
 * A task that is never run, kept for the life of the module (exported so that it is: a
 * module binding nothing reads is not kept). V8 collects a class's hidden class, and
 * deoptimises every function compiled against it, once no instance is left; the tasks of a
 * run are all gone after it, so without this every machine's first compaction or migration
 * would start again from unoptimised code.
 * @internal
 */
export const TASK_SHAPE_ANCHOR: Task = new Task(0, 'swapper', 0, 0, (function* () {})());
