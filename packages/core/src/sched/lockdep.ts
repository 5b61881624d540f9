/**
 * lockdep-lite: the kernel's runtime locking validator, reduced to what a single-threaded
 * emulator needs. It keeps a graph of lock *classes*: each time a task acquires a lock while
 * holding others, an edge held-class → new-class is recorded, with the chain that created
 * it, from the newest held lock (and from those below it while they were trylocked). An
 * edge that closes a cycle is a possible ABBA deadlock, reported even when this run's
 * interleaving did not deadlock: one run proves lock-order safety over all interleavings.
 * @module
 */

import { LOCKDEP_READ, LOCKDEP_RECURSIVE_READ, LOCKDEP_TRYLOCK, type Task } from './task.js';
import { PF_KTHREAD, type WaitKey } from './types.js';

/** How a dependency edge came to be: which task took which lock while holding which. */
export interface LockChain {
  /** The task, as `name/id`. */
  readonly task: string;
  /** Classes the task held at that moment, oldest first. */
  readonly held: readonly string[];
  /** The class it then acquired. */
  readonly acquired: string;
  /** The primitive, e.g. `'mutex_lock'`. */
  readonly op: string;
}

/** Kinds of lockdep report. */
export type LockdepReportKind =
  /** A new dependency closes a cycle in the class graph (possible ABBA deadlock). */
  | 'circular'
  /** A task acquires a lock of a class it already holds (same instance: self-deadlock). */
  | 'recursive'
  /** A lock released by a task that does not hold it. */
  | 'unbalanced'
  /** A task finished while still holding locks. */
  | 'held_at_exit'
  /** `assertHeld()` failed. */
  | 'not_held';

/** One lockdep report, structured; `text` is the splat also passed to `onWarning('lockdep')`. */
export interface LockdepReport {
  /** What was detected. */
  readonly kind: LockdepReportKind;
  /** The classes involved; for `'circular'`, the cycle starting with the new class. */
  readonly classes: readonly string[];
  /**
   * The chains involved. For `'circular'`: first the new acquisition, then the existing
   * dependency path from the new class back to the held one.
   */
  readonly chains: readonly LockChain[];
  /** The kernel-style report text. */
  readonly text: string;
}

/** Where lockdep sends its reports and finds the live tasks: the scheduler. */
export interface LockdepHost {
  /** Live tasks, to find holders and cross-task releases. */
  readonly tasks: readonly Task[];
  /** Report a warning (`onWarning`). */
  warn(kind: string, text: string): void;
}

/**
 * A per-scheduler lock-class dependency graph with cycle and recursion reports.
 *
 * Locks call {@link validate} before they may wait (as the kernel calls lock_acquire before
 * contending) and {@link acquired} once they own the lock; {@link acquire} does both for
 * primitives that take a lock in one step. The page lock (PG_locked) is not tracked, as in
 * the kernel, whose lockdep has no map for page locks: lockdep neither orders it against
 * other locks nor knows who holds one, so a Deadlock report names no holder for a
 * page-lock wait and says so.
 * @see kernel/locking/lockdep.c
 */
export class Lockdep {
  /** When false, no validation happens (held locks are still tracked for reports). */
  enabled = true;
  /**
   * Whether a process-context `read_lock()` of a `rwlock_t` is a recursive read, which may
   * nest inside a read hold of the same lock without a report. True before 5.10 (v4.8), when
   * lockdep annotated every `read_lock()` so; from 5.10 on only interrupt-context readers
   * are, because a queued rwlock lets only those pass a waiting writer, and a process-context
   * recursive read is reported as possible recursive locking. mops has no interrupt context.
   * @see kernel/locking/lockdep.c read_lock_is_recursive()
   */
  readonly readLockRecursive: boolean;
  /**
   * Whether report titles take v4.8's bracketed form (`[ INFO: ... ]`, `[ BUG: ... ]`) rather
   * than the `WARNING: ...` line of later kernels.
   * @see kernel/locking/lockdep.c print_circular_bug_header(), print_deadlock_bug()
   */
  readonly bracketedTitles: boolean;
  /** Every report so far, in order. */
  readonly reports: LockdepReport[] = [];
  /** class → (class → first chain that created the edge). */
  private readonly edges = new Map<string, Map<string, LockChain>>();
  /** Report keys already reported (once per class pair / class). */
  private readonly reported = new Set<string>();

  /**
   * @param host the scheduler this graph belongs to.
   * @param readLockRecursive see {@link Lockdep.readLockRecursive} (default false: 5.10 on).
   * @param bracketedTitles see {@link Lockdep.bracketedTitles} (default false).
   */
  constructor(
    private readonly host: LockdepHost,
    readLockRecursive = false,
    bracketedTitles = false,
  ) {
    this.readLockRecursive = readLockRecursive;
    this.bracketedTitles = bracketedTitles;
  }

  /**
   * Check an acquisition before it may wait: recursion against every held lock, then new
   * dependency edges. Only the held locks taken since the newest non-trylock one get an edge
   * (walking from the newest down, through any trylocked ones, to and including the first
   * lock not taken by trylock): that lock has edges from the older ones already, so the new
   * lock is connected to them through it.
   * @param flags LOCKDEP_* flags; a trylock is not checked.
   * @param op the primitive, for reports.
   * @see kernel/locking/lockdep.c validate_chain(), check_deadlock(), check_prevs_add()
   */
  validate(task: Task | undefined, className: string, key: WaitKey, flags = 0, op = 'lock'): void {
    if (task === undefined || !this.enabled) return;
    const n = task.heldKeys.length;
    if (n === 0 || (flags & LOCKDEP_TRYLOCK) !== 0) return;
    const classes = task.heldClasses;
    const keys = task.heldKeys;
    const heldFlags = task.heldFlags;
    const recursiveRead = (flags & LOCKDEP_RECURSIVE_READ) !== 0;
    // check_deadlock(): the same class held anywhere.
    let readRecursion = false;
    for (let i = 0; i < n; i++) {
      const sameInstance = keys[i] === key;
      if (!sameInstance && classes[i] !== className) continue;
      // A recursive read inside a read hold of the class is allowed.
      if (recursiveRead && (heldFlags[i] & LOCKDEP_READ) !== 0) readRecursion = true;
      else this.reportRecursive(task, className, key, sameInstance, op);
    }
    // Before 5.10, check_deadlock() returned 2 for an allowed read recursion and
    // validate_chain() then added no dependency at all.
    if (readRecursion && this.readLockRecursive) return;
    // check_prevs_add(): newest first, stopping after the first lock not taken by trylock.
    for (let i = n - 1; i >= 0; i--) {
      const f = heldFlags[i];
      const held = classes[i];
      // A held lock of the new class (reported above) gets no edge to itself.
      if (held !== className && keys[i] !== key) {
        // Before 5.10, a held recursive read got no dependency and the walk went on past it.
        if (this.readLockRecursive && (f & LOCKDEP_RECURSIVE_READ) !== 0) continue;
        this.addDependency(task, held, className, recursiveRead, op);
      }
      if ((f & LOCKDEP_TRYLOCK) === 0) return;
    }
  }

  /**
   * Record the dependency `held` → `className` unless present, reporting a cycle it closes.
   * @see kernel/locking/lockdep.c check_prev_add()
   */
  private addDependency(
    task: Task,
    held: string,
    className: string,
    recursiveRead: boolean,
    op: string,
  ): void {
    let out = this.edges.get(held);
    if (out === undefined) {
      out = new Map();
      this.edges.set(held, out);
    }
    if (out.has(className)) return;
    const chain: LockChain = {
      task: task.label,
      held: task.heldClasses.slice(),
      acquired: className,
      op,
    };
    const path = this.findPath(className, held);
    // Before 5.10 the cycle check ran for a new recursive read, but no dependency to it was
    // stored ("we dont store read-triggered dependencies").
    if (!(this.readLockRecursive && recursiveRead)) out.set(className, chain);
    if (path !== undefined) this.reportCircular(task, held, className, chain, path, op);
  }

  /**
   * Record that `task` now holds the lock instance `key` of class `className`.
   * @see kernel/locking/lockdep.c __lock_acquire()
   */
  acquired(task: Task | undefined, className: string, key: WaitKey, flags = 0): void {
    if (task === undefined) return;
    task.heldClasses.push(className);
    task.heldKeys.push(key);
    task.heldFlags.push(flags);
  }

  /** {@link validate} then {@link acquired}: for a lock taken in one step. */
  acquire(task: Task | undefined, className: string, key: WaitKey, flags = 0, op = 'lock'): void {
    if (task === undefined) return;
    if (task.heldKeys.length !== 0) this.validate(task, className, key, flags, op);
    task.heldClasses.push(className);
    task.heldKeys.push(key);
    task.heldFlags.push(flags);
  }

  /**
   * Forget the most recent acquisition of `key` by `task`. A lock may be released by a task
   * other than the one that took it (a page lock, a semaphore): then the holder's entry is
   * removed. Releasing a lock nobody holds is reported as `'unbalanced'`.
   * @see kernel/locking/lockdep.c __lock_release()
   */
  release(task: Task | undefined, key: WaitKey): void {
    if (task === undefined) return;
    if (dropHeld(task, key)) return;
    for (const t of this.host.tasks) if (t !== task && dropHeld(t, key)) return;
    if (!this.enabled) return;
    this.reportUnbalanced(task, key);
  }

  private reportUnbalanced(task: Task, key: WaitKey): void {
    const text = [
      ...this.title('unbalanced'),
      `${task.label} is trying to release lock (${key}) at:`,
      'but there are no more locks to release!',
      '',
      'other info that might help us debug this:',
      ...heldLines(task),
    ].join('\n');
    this.report({ kind: 'unbalanced', classes: [], chains: [], text });
  }

  /**
   * lock_release() as the kernel makes it: only among `task`'s own locks. A lock it does
   * not hold (another task's) is reported as `'unbalanced'` and stays the holder's.
   * @see kernel/locking/lockdep.c __lock_release()
   */
  releaseOwn(task: Task | undefined, key: WaitKey): void {
    if (task === undefined || dropHeld(task, key) || !this.enabled) return;
    this.reportUnbalanced(task, key);
  }

  /** Whether `task` holds the lock instance `key`. */
  isHeld(task: Task | undefined, key: WaitKey): boolean {
    return task?.heldKeys.includes(key) === true;
  }

  /** The live tasks holding the lock instance `key`. */
  holders(key: WaitKey): Task[] {
    return this.host.tasks.filter((t) => t.heldKeys.includes(key));
  }

  /**
   * `lockdep_assert_held()`: warn when `task` does not hold `key`; returns whether it does.
   * @see include/linux/lockdep.h lockdep_assert_held()
   */
  assertHeld(task: Task | undefined, key: WaitKey, className: string): boolean {
    if (task === undefined || task.heldKeys.includes(key)) return true;
    const text = [
      `WARNING: lockdep_assert_held(${className}) failed`,
      `${task.label} does not hold ${className} (${key})`,
      '',
      ...heldLines(task),
    ].join('\n');
    this.report({ kind: 'not_held', classes: [className], chains: [], text });
    return false;
  }

  /**
   * Report a task that finished holding locks: a process returning to user space from its
   * system call, or a kernel thread (`PF_KTHREAD`) exiting.
   * @see kernel/locking/lockdep.c lockdep_sys_exit(), debug_check_no_locks_held()
   */
  checkExit(task: Task): void {
    if (task.heldKeys.length === 0 || !this.enabled) return;
    const text = (
      task.flags & PF_KTHREAD
        ? [...this.exitTitle(task), ...heldLines(task)]
        : [
            ...this.title('held_at_exit'),
            `${task.label} is leaving the kernel with locks still held!`,
            ...heldLines(task),
          ]
    ).join('\n');
    this.report({ kind: 'held_at_exit', classes: task.heldClasses.slice(), chains: [], text });
  }

  /** Whether the graph has a dependency path `from` ⇝ `to` (both class names). */
  dependsOn(from: string, to: string): boolean {
    return this.findPath(from, to) !== undefined;
  }

  /** Every recorded edge as `[from, to, chain]`, in recording order. */
  dependencies(): [string, string, LockChain][] {
    const out: [string, string, LockChain][] = [];
    for (const [from, m] of this.edges) for (const [to, c] of m) out.push([from, to, c]);
    return out;
  }

  /** Breadth-first search for the chain of edges `from` ⇝ `to`; undefined when none. */
  private findPath(from: string, to: string): LockChain[] | undefined {
    if (!this.edges.has(from)) return undefined;
    const parent = new Map<string, string>();
    const queue = [from];
    parent.set(from, from);
    for (let qi = 0; qi < queue.length; qi++) {
      const node = queue[qi];
      const out = this.edges.get(node);
      if (out === undefined) continue;
      for (const next of out.keys()) {
        if (parent.has(next)) continue;
        parent.set(next, node);
        if (next === to) {
          const path: LockChain[] = [];
          let cur = next;
          while (cur !== from) {
            const p = parent.get(cur)!;
            path.push(this.edges.get(p)!.get(cur)!);
            cur = p;
          }
          return path.reverse();
        }
        queue.push(next);
      }
    }
    return undefined;
  }

  private reportRecursive(
    task: Task,
    className: string,
    key: WaitKey,
    sameInstance: boolean,
    op: string,
  ): void {
    const id = `recursive\0${className}\0${sameInstance}`;
    if (this.reported.has(id)) return;
    this.reported.add(id);
    const chain: LockChain = {
      task: task.label,
      held: task.heldClasses.slice(),
      acquired: className,
      op,
    };
    const text = [
      ...this.title('recursive'),
      `${task.label} is trying to acquire lock:`,
      ` (${className}) [${key}] at: ${op}`,
      '',
      'but task is already holding lock:',
      sameInstance
        ? ` (${className}) [${key}] (the same lock)`
        : ` (${className}) [another lock of the same class]`,
      '',
      'other info that might help us debug this:',
      ' Possible unsafe locking scenario:',
      '',
      '       CPU0',
      '       ----',
      `  lock(${className});`,
      `  lock(${className});`,
      '',
      ' *** DEADLOCK ***',
      '',
      ' May be due to missing lock nesting notation',
      '',
      ...heldLines(task),
    ].join('\n');
    this.report({ kind: 'recursive', classes: [className], chains: [chain], text });
  }

  private reportCircular(
    task: Task,
    held: string,
    className: string,
    chain: LockChain,
    path: LockChain[],
    op: string,
  ): void {
    const id = held < className ? `${held}\0${className}` : `${className}\0${held}`;
    if (this.reported.has(`circular\0${id}`)) return;
    this.reported.add(`circular\0${id}`);
    // path: className → … → held; the new edge held → className closes the cycle.
    const classes = [className, ...path.map((c) => c.acquired)];
    // The class CPU1 holds while it waits for `held`: the one just before it in the cycle.
    const parent = classes[classes.length - 2];
    const chains = [chain, ...path];
    const lines = [
      ...this.title('circular'),
      `${task.label} is trying to acquire lock:`,
      ` (${className}) at: ${op}`,
      '',
      'but task is already holding lock:',
      ` (${held})`,
      '',
      'which lock already depends on the new lock.',
      '',
      '',
      'the existing dependency chain (in reverse order) is:',
    ];
    // From the held class (#N) back to the new one (#0), each with the chain that made the
    // dependency into it; #0's is this acquisition.
    for (let i = path.length; i >= 0; i--) {
      lines.push('', `-> #${i} (${classes[i]}):`, `       ${describeChain(chains[i])}`);
    }
    lines.push('', 'other info that might help us debug this:', '');
    // A longer cycle is shown as the chain new → parent → held before the two-CPU scenario.
    if (parent !== className) {
      lines.push('Chain exists of:', `  ${className} --> ${parent} --> ${held}`, '');
    }
    lines.push(
      ' Possible unsafe locking scenario:',
      '',
      '       CPU0                    CPU1',
      '       ----                    ----',
      `  lock(${held});`,
      `                               lock(${parent});`,
      `                               lock(${held});`,
      `  lock(${className});`,
      '',
      ' *** DEADLOCK ***',
      '',
      ...heldLines(task),
    );
    this.report({ kind: 'circular', classes, chains, text: lines.join('\n') });
  }

  /** print_held_locks_bug()'s title block, which names the task. */
  private exitTitle(task: Task): string[] {
    return this.bracketedTitles
      ? ['='.repeat(37), `[ BUG: ${task.label} still has locks held! ]`, '-'.repeat(37)]
      : ['='.repeat(36), `WARNING: ${task.label} still has locks held!`, '-'.repeat(36)];
  }

  /** The title block of a report: the rule lines and the title of the profile's era. */
  private title(kind: Exclude<LockdepReportKind, 'not_held'>): string[] {
    const [eq, title, dash] = (this.bracketedTitles ? BRACKETED_TITLES : WARNING_TITLES)[kind];
    return ['='.repeat(eq), title, '-'.repeat(dash)];
  }

  private report(r: LockdepReport): void {
    this.reports.push(r);
    this.host.warn('lockdep', r.text);
  }
}

type TitleTable = Record<Exclude<LockdepReportKind, 'not_held'>, [number, string, number]>;

/** v4.8's titles, with the lengths of the `=` and `-` rules printed around each. */
const BRACKETED_TITLES: TitleTable = {
  circular: [54, '[ INFO: possible circular locking dependency detected ]', 55],
  recursive: [45, '[ INFO: possible recursive locking detected ]', 45],
  unbalanced: [37, '[ BUG: bad unlock balance detected! ]', 37],
  held_at_exit: [48, '[ BUG: lock held when returning to user space! ]', 48],
};

/** The `WARNING:` titles of later kernels; each rule is as long as its title. */
const WARNING_TITLES: TitleTable = {
  circular: [54, 'WARNING: possible circular locking dependency detected', 54],
  recursive: [44, 'WARNING: possible recursive locking detected', 44],
  unbalanced: [37, 'WARNING: bad unlock balance detected!', 37],
  held_at_exit: [48, 'WARNING: lock held when returning to user space!', 48],
};

function describeChain(c: LockChain): string {
  const held = c.held.length ? c.held.join(', ') : 'nothing';
  return `${c.task}: ${c.op}(${c.acquired}) while holding ${held}`;
}

function heldLines(task: Task): string[] {
  const n = task.heldKeys.length;
  if (n === 0) return [`no locks held by ${task.label}.`];
  const lines = [`${n} lock${n === 1 ? '' : 's'} held by ${task.label}:`];
  for (let i = 0; i < n; i++) {
    const f = task.heldFlags[i];
    const mode = (f & LOCKDEP_READ) !== 0 ? 'read' : 'write';
    const how = (f & LOCKDEP_TRYLOCK) !== 0 ? ', trylock' : '';
    lines.push(` #${i}: (${task.heldClasses[i]}) [${task.heldKeys[i]}] {${mode}${how}}`);
  }
  return lines;
}

function dropHeld(task: Task, key: WaitKey): boolean {
  const keys = task.heldKeys;
  const i = keys.lastIndexOf(key);
  if (i < 0) return false;
  // Locks are often released out of order (zs_page_migrate drops pool->lock first): close
  // the gap by hand, as splice would allocate an array of the removed entries each time.
  const classes = task.heldClasses;
  const flags = task.heldFlags;
  for (let j = i + 1; j < keys.length; j++) {
    keys[j - 1] = keys[j];
    classes[j - 1] = classes[j];
    flags[j - 1] = flags[j];
  }
  keys.pop();
  classes.pop();
  flags.pop();
  return true;
}

/** Lines listing a task's held locks, as in lockdep's `lockdep_print_held_locks()`. */
export function describeHeldLocks(task: Task): string {
  return heldLines(task).join('\n');
}
