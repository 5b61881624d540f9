/**
 * The scheduler: drives task generators point by point with a chosen strategy, parks tasks
 * on wait keys, wakes them, gives way after a spin-wait's `cpu_relax`, and reports deadlocks
 * and livelocks.
 * @module
 */

import { MopsError, valueKind } from '../errors.js';
import { traceNrCpus } from '../trace/filter_cpus.js';
import { anyPickable, cpuHolder, cpuHoldReason, keepsCpu, pickableInto } from './cpu.js';
import { type Deadlock, deadlockReport } from './deadlock.js';
import { describeHeldLocks, Lockdep } from './lockdep.js';
import {
  checkStrategy,
  type SchedulerOptions,
  type SchedWarning,
  type SpawnOptions,
  type Strategy,
  type WakeFunction,
} from './options.js';
import { isPoint, notAPoint } from './point.js';
import { Prng } from './prng.js';
import { CPU_RELAX, giveWay, type Livelock, livelockReport, relaxesAfter } from './relax.js';
import { insertById, notAGenerator, removeTask } from './runq.js';
import { BLOCK_SLEEP, BLOCK_SPIN, DONE_POINT, Task, WQ_EXCLUSIVE } from './task.js';
import {
  type BlockPoint,
  type KernelGen,
  type KthreadContext,
  PF_KTHREAD,
  PF_WQ_WORKER,
  type SchedPoint,
  type WaitKey,
  type Yielded,
} from './types.js';
import { workqueueLeak } from './workqueue.js';

/**
 * The scheduler of one emulated machine.
 *
 * Kernel code reads {@link preemptible} before each primitive and yields a point only when it
 * is true, so a task running alone runs straight through. Tasks that must sleep yield a
 * BlockPoint and are parked until {@link wake} is called with its key.
 * @see kernel/sched/core.c
 */
export class Scheduler {
  /**
   * True iff more than one task is live (runnable or blocked) or {@link manual} is on. A
   * plain field: kernel code reads it on every hot path.
   */
  preemptible = false;
  /** The task whose generator is executing; undefined outside tasks. */
  current: Task | undefined = undefined;
  /**
   * The kernel thread {@link asKthread} is running code as, for the trace: undefined
   * otherwise.
   */
  kthread: KthreadContext | undefined = undefined;
  /** The kernel threads {@link asKthread} has run code as, by name: their pids. */
  private readonly kthreadIds = new Map<string, number>();
  /** Live tasks (runnable or blocked), in spawn order. */
  readonly tasks: Task[] = [];
  /** The lock-class dependency validator of this machine. */
  readonly lockdep: Lockdep;
  /** Whether mutexes hand themselves to a robbed first waiter (see SchedulerOptions). */
  readonly mutexHandoff: boolean;
  /**
   * debug_locks is off: a lock's own debug check (spin_bug(), DEBUG_LOCKS_WARN_ON) has
   * reported once, and reports no more. (lockdep's own reports go on: mops keeps them all.)
   */
  debugLocksOff = false;
  /** Whether a queued rwlock's head writer sets `_QW_WAITING` at once (see SchedulerOptions). */
  readonly qrwlockWaitingAtOnce: boolean;
  /** Whether might_sleep()'s report has 5.16's lines (see SchedulerOptions). */
  readonly mightSleepExpected: boolean;
  /** See {@link SchedulerOptions.workqueueLeakRcu}. */
  readonly workqueueLeakRcu: boolean;
  /**
   * Locks handed over by an unlock to a waiter that has yet to run (lockdep records it as
   * the holder only then), for {@link deadlock}'s report.
   */
  readonly handedOver = new Map<WaitKey, Task>();
  /** The PRNG behind the `'random'` strategy. */
  readonly prng: Prng;
  /** Every warning so far (also passed to `onWarning`). */
  readonly warnings: SchedWarning[] = [];
  /**
   * Called after every yielded point (including BlockPoints) with the task that yielded
   * it: the hook for traces, schedule recording and per-step invariant checks.
   */
  onStep: ((task: Task, point: Yielded) => void) | undefined = undefined;
  /** Number of points yielded so far, all tasks together. */
  steps = 0;

  private readonly runq: Task[] = [];
  /** Whether two tasks were ever given the same CPU: only then can a task be held off. */
  private cpuShared = false;
  /** The highest CPU any task has had (-1 before the first spawn). */
  private maxCpu = -1;
  private readonly pickBuf: Task[] = [];
  private readonly relaxBuf: Task[] = [];
  private readonly pendingWork: {
    name: string;
    body: () => KernelGen<unknown>;
    cpu: number;
    fn: string;
  }[] = [];
  private readonly waiters = new Map<WaitKey, Task[]>();
  private readonly onWarning: ((kind: string, text: string) => void) | undefined;
  private readonly warnedOnce = new Set<string>();
  private live = 0;

  /** Tasks that have not ended (runnable or blocked). */
  get liveTasks(): number {
    return this.live;
  }
  /**
   * How many CPUs the tasks of this scheduler have used: 1 + the highest CPU any task, live
   * or ended, has had (0 before the first spawn). It only grows. The trace header's `#P:`
   * and the CPU count of `CPUS{…}` filters are built on it (see `traceNrCpus`).
   */
  get nrCpus(): number {
    return this.maxCpu + 1;
  }
  private manualMode = false;
  private rrLast = 0;
  private nextId = 1;
  private lockSerial = 0;

  /** Create a scheduler; the machine registers one per emulated machine. */
  constructor(options: SchedulerOptions = {}) {
    this.prng = new Prng(options.seed ?? 1);
    this.onWarning = options.onWarning;
    const bracketed = options.lockdepBracketedTitles ?? false;
    this.lockdep = new Lockdep(this, options.readLockRecursive ?? false, bracketed);
    this.mutexHandoff = options.mutexHandoff ?? true;
    this.qrwlockWaitingAtOnce = options.qrwlockWaitingAtOnce ?? true;
    this.mightSleepExpected = options.mightSleepExpected ?? true;
    this.workqueueLeakRcu = options.workqueueLeakRcu ?? false;
  }

  /**
   * Step-by-step mode for tests: forces {@link preemptible} on, so every point is yielded
   * even by a task running alone.
   */
  get manual(): boolean {
    return this.manualMode;
  }
  /** Turn step-by-step mode on or off; {@link preemptible} follows. */
  set manual(on: boolean) {
    this.manualMode = on;
    this.preemptible = on || this.live > 1;
  }

  /** Runnable tasks, ordered by id (a live view: do not modify). */
  get runnable(): readonly Task[] {
    return this.runq;
  }

  /**
   * The runnable tasks that may run now, ordered by id: those that no other task of their
   * CPU keeps off it (see {@link SpawnOptions.cpu}). While every task has a CPU of its own,
   * this is {@link runnable} itself; otherwise an array rebuilt at each call. Empty with
   * tasks runnable only when the tasks of a CPU hold each other off (a lockup, reported as
   * a {@link Deadlock} by {@link step}).
   */
  pickable(): readonly Task[] {
    return this.cpuShared ? pickableInto(this.runq, this.tasks, this.pickBuf) : this.runq;
  }

  /**
   * The task keeping `task` off its CPU (holding a spinlock, or spinning for one, on the
   * same CPU), or undefined when `task` is free to run once runnable.
   */
  cpuHolderOf(task: Task): Task | undefined {
    return this.cpuShared ? cpuHolder(this.tasks, task) : undefined;
  }

  /**
   * Create a task. It does not run until a `run*` or `step` call picks it. Without a
   * {@link SpawnOptions.cpu} it runs on the lowest CPU no live task runs on: tasks spawned
   * one after another, each ending before the next, all run on CPU 0.
   * @see kernel/kthread.c kthread_create()
   */
  spawn<T>(name: string, body: () => KernelGen<T>, opts?: SpawnOptions): Task<T> {
    const given = opts?.cpu;
    let cpu: number;
    if (given === undefined) cpu = this.lowestFreeCpu();
    else {
      if (!Number.isSafeInteger(given) || given < 0)
        throw new MopsError(
          'E_RANGE',
          `spawn ${name}: cpu must be an integer >= 0, got ${valueKind(given)}`,
          'cpu',
        );
      cpu = given;
    }
    const gen = typeof body === 'function' ? body() : undefined;
    if (typeof gen?.next !== 'function') notAGenerator(name, body, gen);
    // Only a task that is made changes the CPUs in use.
    if (given !== undefined && !this.cpuShared && this.cpuInUse(cpu)) this.shareCpus();
    if (cpu > this.maxCpu) this.maxCpu = cpu;
    const id = this.nextId++;
    const task = new Task<T>(id, name, cpu, opts?.flags ?? 0, gen);
    this.tasks.push(task);
    this.runq.push(task); // ids only grow: runq stays sorted
    this.live++;
    this.preemptible = this.manualMode || this.live > 1;
    return task;
  }

  /**
   * Runs `fn` as the kernel thread `name` for the trace: a tracepoint `fn` fires prints
   * under that thread's comm and pid (one pid per name and machine, given when first used)
   * and the lowest CPU no live task runs on (among the machine's CPUs: else the highest),
   * with preemption on. For a kernel thread mops
   * runs as plain calls within another's work, such as the kswapd stand-in's wakeups of
   * kcompactd (`kswapd0`). `fn` runs at once, with no scheduling point; it is no task.
   * @param name the thread's comm, e.g. `'kswapd0'`
   * @param fn what it does
   * @returns what `fn` returns
   */
  asKthread<T>(name: string, fn: () => T): T {
    let id = this.kthreadIds.get(name);
    if (id === undefined) {
      id = this.nextId++;
      this.kthreadIds.set(name, id);
    }
    // A CPU no live task holds, among those the machine has (the trace header's #P).
    const cpu = Math.min(this.lowestFreeCpu(), traceNrCpus(this) - 1);
    return this.runAs({ name, id, cpu }, fn);
  }

  /**
   * Runs `fn` as the task `t` for the trace, as {@link asKthread} does for a kernel thread:
   * under its comm, pid and CPU, `t` having ended or not. For the end of work a task did for
   * code outside any task, such as an allocation whose slow path compacted in a task.
   * @param t the task
   * @param fn what it does
   * @returns what `fn` returns
   */
  asTask<T>(t: Task, fn: () => T): T {
    return this.runAs({ name: t.name, id: t.id, cpu: t.cpu }, fn);
  }

  private runAs<T>(ctx: KthreadContext, fn: () => T): T {
    const outer = this.kthread;
    this.kthread = ctx;
    try {
      return fn();
    } finally {
      this.kthread = outer;
    }
  }

  /**
   * From now on some CPU has two tasks: keep {@link Task.cpuHeld} after every step, starting
   * with where the live tasks are now.
   */
  private shareCpus(): void {
    this.cpuShared = true;
    for (const t of this.tasks) t.cpuHeld = keepsCpu(t);
  }

  /** The lowest CPU no live task runs on (one of 0..n for n live tasks). */
  private lowestFreeCpu(): number {
    // A few live tasks at most: no allocation on this path (the explorer spawns per run).
    let cpu = 0;
    while (this.cpuInUse(cpu)) cpu++;
    return cpu;
  }

  /** Whether a live task runs on `cpu`. */
  private cpuInUse(cpu: number): boolean {
    for (let i = 0; i < this.tasks.length; i++) if (this.tasks[i].cpu === cpu) return true;
    return false;
  }

  /**
   * queue_work() / schedule_work(): run `body` later as a kernel worker task. Queued from
   * inside a task, the worker is created when that task's current step ends (a task running
   * alone finishes what it is doing first) and runs on that task's CPU, as a work item of a
   * per-CPU workqueue (system_wq) does; queued from outside, at once, on a CPU of its own
   * (the lowest no live task runs on). Either way it runs with the other tasks of the next
   * (or current) `run*` call. Keeping a work item from being queued twice while pending is
   * the caller's business, as with WORK_STRUCT_PENDING. The worker is a kernel thread
   * (`PF_KTHREAD | PF_WQ_WORKER`) that outlives its work item: if the item comes back
   * holding a lock or in atomic context, process_one_work()'s `BUG: workqueue leaked …`
   * report names `fn` (warning kind `workqueue_leak`).
   * @param name the worker's name (its comm, e.g. `kworker/0:1`)
   * @param body the work item
   * @param fn the work function's name, as the reports print it (default: `body`'s name,
   *   else `name`)
   * @see kernel/workqueue.c queue_work()
   */
  queueWork(name: string, body: () => KernelGen<unknown>, fn?: string): void {
    const workfn = fn ?? (body.name || name);
    if (this.current === undefined) this.spawnWorker(name, body, workfn, undefined);
    else this.pendingWork.push({ name, body, cpu: this.current.cpu, fn: workfn });
  }

  private spawnWorker(
    name: string,
    body: () => KernelGen<unknown>,
    fn: string,
    cpu: number | undefined,
  ): void {
    this.spawn(name, body, { cpu, flags: PF_KTHREAD | PF_WQ_WORKER }).workfn = fn;
  }

  /**
   * send_sig(SIGKILL, task): mark a fatal signal pending in `task`. Code running in the task
   * sees it through {@link fatalSignalPending} at the kernel's own checks; a task that
   * ignores it runs on. Allowed from inside or outside tasks; a finished task is left alone.
   * @see kernel/signal.c send_sig()
   */
  sendSigkill(task: Task): void {
    if (task.state === 'done' || task.state === 'failed') return;
    task.sigkill = true;
  }

  /**
   * Wake every task blocked on `key` (wake-all: woken tasks re-check their condition and
   * may block again). Returns how many tasks were woken. {@link wakeUp} wakes selectively.
   * @see kernel/sched/wait.c __wake_up(), mm/filemap.c folio_wake_bit()
   */
  wake(key: WaitKey): number {
    return this.wakeUp(key, 0);
  }

  /**
   * Wake the tasks blocked on `key` the way __wake_up_common() does: walk them in queue
   * order (the order they blocked in: every BlockPoint queues at the tail), let `fn` decide
   * for each (default: wake it), and stop after waking `nrExclusive` tasks parked with
   * {@link WQ_EXCLUSIVE} in their {@link Task.waitFlags} (0: no limit). Woken tasks leave the
   * queue; the others keep their places. Returns how many tasks were woken.
   * @see kernel/sched/wait.c __wake_up_common()
   */
  wakeUp(key: WaitKey, nrExclusive: number, fn?: WakeFunction): number {
    const list = this.waiters.get(key);
    if (list === undefined) return 0;
    let n = 0;
    let kept = 0;
    let i = 0;
    let left = nrExclusive;
    for (; i < list.length; i++) {
      const t = list[i];
      if (t.state !== 'blocked' || t.blockedOn?.key !== key) continue;
      const flags = t.waitFlags;
      const r = fn === undefined ? 1 : fn(t);
      if (r < 0) break;
      if (r === 0) {
        list[kept++] = t;
        continue;
      }
      t.state = 'runnable';
      t.blockedOn = undefined;
      insertById(this.runq, t);
      n++;
      if (flags & WQ_EXCLUSIVE && --left === 0) {
        i++;
        break;
      }
    }
    while (i < list.length) list[kept++] = list[i++];
    list.length = kept;
    if (kept === 0) this.waiters.delete(key);
    return n;
  }

  /**
   * Whether any task is blocked on `key`.
   * @see include/linux/wait.h waitqueue_active()
   */
  hasWaiters(key: WaitKey): boolean {
    return this.waiters.has(key);
  }

  /**
   * Spawn one task running `body`, run every task to completion with `strategy`, and return
   * that task's result (rethrowing its error). {@link runAll} says what ends the run early:
   * a {@link Deadlock}, or a {@link Livelock} when a spinner is left alone.
   */
  run<T>(body: () => KernelGen<T>, strategy: Strategy = 'run-to-completion'): T {
    const task = this.spawn('main', body);
    this.runAll(strategy);
    if (task.state === 'failed') throw task.error;
    return task.result as T;
  }

  /**
   * Run until no task is runnable. Returns the number of points yielded. Throws
   * {@link Deadlock} when tasks remain blocked, and rethrows the first error a task throws
   * (the task is then `'failed'` with the error recorded; other tasks stay as they are).
   *
   * A task whose step ended at a spin-wait's {@link CPU_RELAX} point gives way: under
   * `'run-to-completion'` its turn ends there and the next task that may run (by id) runs
   * its own turn first; under `'round-robin'` and `'random'` the next point is another
   * task's. When no other task may run, the spinner runs one more round of its loop alone;
   * when that round ends at `cpu_relax` again, nothing can end the spin: {@link Livelock}
   * is thrown. A {@link PickNext} strategy is given every task that may run, the spinner
   * included, and decides alone (the explorer's runner applies the same rule, through
   * {@link giveWay}).
   */
  runAll(strategy: Strategy = 'run-to-completion'): number {
    this.assertOutsideTasks('runAll');
    checkStrategy(strategy);
    const start = this.steps;
    // Whether the last step ended at cpu_relax; the task that took it, and its cpu_relax
    // points since another task last took a step (relaxesAfter).
    let spun = false;
    let prev: Task | undefined;
    let relaxes = 0;
    for (;;) {
      const all = this.pickable();
      if (all.length === 0) {
        if (this.live > 0) throw this.deadlock();
        return this.steps - start;
      }
      // After a step that ended at cpu_relax, the others first.
      const runq = spun ? giveWay(all, prev as Task, relaxes, this.relaxBuf) : all;
      if (runq === undefined) throw this.livelock(prev as Task);
      let t: Task;
      let p: Yielded;
      if (strategy === 'run-to-completion') {
        t = runq[0];
        do p = this.advance(t);
        while (t.state === 'runnable' && p.op !== CPU_RELAX && this.cpuHolderOf(t) === undefined);
      } else if (strategy === 'round-robin') {
        t = runq[0];
        for (let i = 0; i < runq.length; i++) {
          if (runq[i].id > this.rrLast) {
            t = runq[i];
            break;
          }
        }
        this.rrLast = t.id;
        p = this.advance(t);
      } else if (strategy === 'random') {
        t = runq.length === 1 ? runq[0] : runq[this.prng.below(runq.length)];
        p = this.advance(t);
      } else {
        t = strategy(all, this);
        if (!all.includes(t)) {
          const why = t.state === 'runnable' ? `held off cpu ${t.cpu}` : t.state;
          throw new MopsError('E_STATE', `strategy picked ${t.label}, which is ${why}`);
        }
        this.advance(t);
        continue;
      }
      spun = p.op === CPU_RELAX;
      relaxes = relaxesAfter(relaxes, t === prev, spun);
      prev = t;
    }
  }

  /**
   * Run `task` until its next point and return that point (before its primitive executes),
   * or {@link DONE_POINT} when the task returns. A BlockPoint parks the task. Throws
   * `MopsError('E_STATE')` when the task is not runnable, {@link Deadlock} when this step
   * (a block, or a task ending without waking the others) leaves every live task blocked,
   * and the task's own error if it throws.
   */
  step(task: Task): Yielded {
    this.assertOutsideTasks('step');
    if (task.state !== 'runnable') {
      const on = task.blockedOn ? ` on ${task.blockedOn.what} [${task.blockedOn.key}]` : '';
      throw new MopsError(
        'E_STATE',
        `cannot step task ${task.label}: it is ${task.state}${on}; wake it or step another task`,
      );
    }
    const holder = this.cpuHolderOf(task);
    if (holder !== undefined)
      throw new MopsError(
        'E_STATE',
        `cannot step task ${task.label}: cpu ${task.cpu} is held by ${holder.label} (${cpuHoldReason(holder)}); step that task first`,
      );
    const p = this.advance(task);
    // Blocking, or finishing without waking anyone, may leave nothing able to run.
    if (
      this.live > 0 &&
      (this.cpuShared ? !anyPickable(this.runq, this.tasks) : this.runq.length === 0)
    )
      throw this.deadlock();
    return p;
  }

  /**
   * Step `task` until it yields a point matching `pred` and return that point: the
   * primitive it announces has not executed yet. Throws `MopsError('E_STATE')` if the task
   * finishes or blocks first without a match.
   */
  runUntil(task: Task, pred: (p: SchedPoint) => boolean): Yielded {
    for (;;) {
      const p = this.step(task);
      if (pred(p)) return p;
      if (task.state !== 'runnable') {
        throw new MopsError(
          'E_STATE',
          `task ${task.label} ${task.state === 'done' ? 'finished' : `blocked on ${task.blockedOn?.what}`} before reaching the awaited point`,
        );
      }
    }
  }

  /**
   * Step `task` until it returns, and return its result. Throws `MopsError('E_STATE')` if it
   * blocks (run the task that can wake it first) and {@link Deadlock} if nothing can.
   */
  runToEnd<T>(task: Task<T>): T {
    while (task.state === 'runnable') this.step(task);
    if (task.state === 'blocked') {
      throw new MopsError(
        'E_STATE',
        `task ${task.label} blocked on ${task.blockedOn?.what} [${task.blockedOn?.key}]`,
      );
    }
    if (task.state === 'failed') throw task.error;
    return task.result as T;
  }

  /**
   * Report a warning: recorded in {@link warnings} and passed to `onWarning`.
   * @see include/asm-generic/bug.h WARN()
   */
  warn(kind: string, text: string): void {
    this.warnings.push({ kind, text });
    this.onWarning?.(kind, text);
  }

  /**
   * A unique wait key for a new lock instance, e.g. `mutex:balloon_lock#3`. Deterministic:
   * the same construction order gives the same keys.
   */
  newLockKey(kind: string, className: string): WaitKey {
    return `${kind}:${className}#${++this.lockSerial}`;
  }

  /**
   * Build the {@link Livelock} error of `spinner`: the only task able to run, its round run
   * alone ended at {@link CPU_RELAX} again.
   * @param spinner the spinning task
   */
  livelock(spinner: Task): Livelock {
    const others = this.tasks.filter((t) => t !== spinner);
    return livelockReport(spinner, others, others.length === 0 ? undefined : this.deadlock());
  }

  /** Build the {@link Deadlock} error for the current state (every live task blocked). */
  deadlock(): Deadlock {
    return deadlockReport(
      this.tasks,
      this.lockdep,
      (t) => this.cpuHolderOf(t),
      (key) => this.handedOver.get(key),
    );
  }

  /** Run one point of `task` (the hot path: no allocation beyond the generator's own). */
  private advance(task: Task): Yielded {
    this.current = task;
    task.spinning = false;
    let r: IteratorResult<Yielded, unknown>;
    try {
      r = task.gen.next();
      // A value that is not a scheduling point is thrown back at the yield that made it.
      while (r.done !== true && !isPoint(r.value)) r = task.gen.throw(notAPoint(r.value));
    } catch (e) {
      this.current = undefined;
      if (this.pendingWork.length !== 0) this.spawnPendingWork();
      task.state = 'failed';
      task.error = e;
      this.retire(task);
      throw e;
    }
    this.current = undefined;
    if (this.pendingWork.length !== 0) this.spawnPendingWork();
    if (r.done === true) {
      task.state = 'done';
      task.result = r.value;
      this.retire(task);
      if (task.flags & PF_WQ_WORKER) workqueueLeak(this, task);
      else this.lockdep.checkExit(task);
      return DONE_POINT;
    }
    const p = r.value;
    task.lastPoint = p;
    task.steps++;
    this.steps++;
    if (p.op === 'block') this.park(task, p as BlockPoint);
    // Still on its CPU with preemption off: spinning, or runnable holding a spinlock.
    if (this.cpuShared) task.cpuHeld = keepsCpu(task);
    if (this.onStep !== undefined) this.onStep(task, p);
    return p;
  }

  /** The workers {@link queueWork} queued during the step that just ended. */
  private spawnPendingWork(): void {
    for (const w of this.pendingWork.splice(0)) this.spawnWorker(w.name, w.body, w.fn, w.cpu);
  }

  private park(task: Task, p: BlockPoint): void {
    task.state = 'blocked';
    task.blockedOn = p;
    removeTask(this.runq, task);
    const list = this.waiters.get(p.key);
    if (list === undefined) this.waiters.set(p.key, [task]);
    else list.push(task);
    const mode = task.blockMode;
    task.blockMode = BLOCK_SLEEP;
    task.spinning = mode === BLOCK_SPIN;
    task.waitFlags = task.nextWaitFlags;
    task.nextWaitFlags = 0;
    if (task.atomicDepth > 0 && mode !== BLOCK_SPIN) {
      // The wait primitive's own might_sleep(), unless the lock ran it already; then
      // schedule() itself, which finds preemption off.
      if (mode === BLOCK_SLEEP) this.sleepInAtomic(task, p.what);
      this.schedulingWhileAtomic(task);
    }
  }

  /**
   * __schedule_bug(): a task sleeps (calls schedule()) with preemption off: reported at
   * every such sleep, with the preempt count schedule() sees (the task's spinlocks, plus the
   * one schedule() itself takes) and the locks the task holds.
   * @see kernel/sched/core.c schedule_debug(), __schedule_bug()
   */
  private schedulingWhileAtomic(task: Task): void {
    const count = (task.atomicDepth + 1).toString(16).padStart(8, '0');
    this.warn(
      'scheduling_while_atomic',
      `BUG: scheduling while atomic: ${task.name}/${task.id}/0x${count}\n${describeHeldLocks(task)}`,
    );
  }

  /**
   * Report a sleep in atomic context once per (task, what), as __might_resched() (v4.8:
   * ___might_sleep()) prints it: the preempt count in hex against the 0 expected, and the
   * RCU nest depth (mops has no RCU read sections: 0) in 5.16's form; the in_atomic() line
   * alone in v4.8's.
   * @see kernel/sched/core.c __might_resched()
   */
  sleepInAtomic(task: Task, what: string): void {
    const id = `${task.id}\0${what}`;
    if (this.warnedOnce.has(id)) return;
    this.warnedOnce.add(id);
    const lines = [`BUG: sleeping function called from invalid context at ${what}`];
    if (this.mightSleepExpected)
      lines.push(
        `in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: ${task.id}, name: ${task.name}`,
        `preempt_count: ${task.atomicDepth.toString(16)}, expected: 0`,
        'RCU nest depth: 0, expected: 0',
      );
    else lines.push(`in_atomic(): 1, irqs_disabled(): 0, pid: ${task.id}, name: ${task.name}`);
    lines.push(describeHeldLocks(task));
    this.warn('sleep_in_atomic', lines.join('\n'));
  }

  private retire(task: Task): void {
    this.live--;
    removeTask(this.runq, task);
    removeTask(this.tasks, task);
    this.preemptible = this.manualMode || this.live > 1;
  }

  private assertOutsideTasks(what: string): void {
    if (this.current !== undefined) {
      throw new MopsError(
        'E_STATE',
        `${what}() called from inside task ${this.current.label}; drive the scheduler from outside tasks`,
      );
    }
  }
}

/**
 * fatal_signal_pending(current): whether the running task has a SIGKILL pending (false
 * outside tasks).
 * @see include/linux/sched/signal.h fatal_signal_pending()
 */
export function fatalSignalPending(sched: Scheduler): boolean {
  return sched.current?.sigkill === true;
}

/**
 * `might_sleep()`: warn (`'sleep_in_atomic'`) when the current task holds a spinlock. Call
 * it before any operation that may sleep, contended or not, as the kernel does under
 * CONFIG_DEBUG_ATOMIC_SLEEP.
 * @param sched the machine's scheduler (`m.sched`)
 * @param what the function about to sleep, as the warning names it (e.g. `'lock_page'`)
 * @see kernel/sched/core.c __might_sleep()
 */
export function mightSleep(sched: Scheduler, what: string): void {
  const t = sched.current;
  if (t !== undefined && t.atomicDepth > 0) sched.sleepInAtomic(t, what);
}
