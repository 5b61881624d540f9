/**
 * Kernel locks for emulated tasks: spinlock_t and struct mutex (rwlock_t and rw_semaphore
 * are in rwlock.ts).
 *
 * Acquisitions that may wait are generators (`yield* m.lock()`): they yield their scheduling
 * point, then take the lock or park the task on the lock's wait key until the holder
 * releases it. `trylock()` and `unlock()` are plain primitives; like every primitive, kernel
 * code announces them with the lock's preallocated point when preemptible:
 *
 * ```ts
 * if (sched.preemptible) yield m.points.unlock;
 * m.unlock();
 * ```
 *
 * Every lock has a lockdep class name, given at construction, and registers its
 * acquisitions with the scheduler's lockdep validator.
 * @module
 */

import { mightSleep, type Scheduler } from './scheduler.js';
import { BLOCK_CHECKED, BLOCK_SPIN, LOCKDEP_TRYLOCK, type Task } from './task.js';
import type { BlockPoint, KernelGen, SchedPoint, WaitKey } from './types.js';

/** The preallocated scheduling points of an exclusive lock. */
export interface LockPoints {
  /** Yielded by `lock()` before it acquires. */
  readonly lock: SchedPoint;
  /** For callers to yield before `trylock()`. */
  readonly trylock: SchedPoint;
  /** For callers to yield before `unlock()`. */
  readonly unlock: SchedPoint;
}

export function point(op: string, lock: string): SchedPoint {
  return Object.freeze({ op, lock });
}

export function blockPoint(key: WaitKey, what: string, lock: string): BlockPoint {
  return Object.freeze({ op: 'block', key, what, lock });
}

function nested(className: string, subclass: number): string {
  return subclass === 0 ? className : `${className}/${subclass}`;
}

export function label(t: Task | undefined): string {
  return t === undefined ? 'no task' : t.label;
}

/**
 * The unlock of a lock nobody holds, which then changes nothing: lock_release() finds no
 * holder and lockdep reports a bad unlock balance; the lock's own debug check (`check`,
 * spin_bug() or DEBUG_LOCKS_WARN_ON) prints only when lockdep did not, lockdep having turned
 * debug_locks off.
 */
function unlockUnheld(s: Scheduler, t: Task | undefined, key: WaitKey, check: () => string): void {
  s.lockdep.release(t, key);
  debugLocksWarn(s, check);
}

/**
 * The unlock of a lock another task holds, which the kernel carries out all the same:
 * lock_release() finds it not among the caller's locks (lockdep's bad unlock balance; the
 * holder's entry stays, as in its held_locks), then the lock's own owner check (`check`)
 * prints while debug_locks is on.
 */
function unlockNotOwner(
  s: Scheduler,
  t: Task | undefined,
  key: WaitKey,
  check: () => string,
): void {
  s.lockdep.releaseOwn(t, key);
  debugLocksWarn(s, check);
  // The holder may be a waiter the lock was handed to and that has yet to run: the lock is
  // no longer held for it.
  s.handedOver.delete(key);
}

/**
 * spin_bug()'s report (spin_dump()): `msg`, the caller on its CPU, and the lock's owner
 * (`undefined`: none; `null`: code outside any task).
 */
function spinDump(
  msg: string,
  t: Task | undefined,
  className: string,
  owner: Task | null | undefined,
): string {
  const who = (x: Task | undefined) => (x === undefined ? 'mops/0' : `${x.name}/${x.id}`);
  const holder =
    owner === undefined
      ? '<none>/-1, .owner_cpu: -1'
      : `${who(owner ?? undefined)}, .owner_cpu: ${owner?.cpu ?? 0}`;
  return `BUG: spinlock ${msg} on CPU#${t?.cpu ?? 0}, ${who(t)}\n lock: ${className}, .magic: dead4ead, .owner: ${holder}`;
}

/**
 * A lock's own debug check (spin_bug(), DEBUG_LOCKS_WARN_ON()): it prints only while
 * debug_locks is on, which lockdep's reports turn off (all but a failed
 * lockdep_assert_held(), a plain WARN_ON), and so does the first of these.
 */
function debugLocksWarn(s: Scheduler, text: () => string): void {
  if (s.debugLocksOff || s.lockdep.reports.some((r) => r.kind !== 'not_held')) return;
  s.debugLocksOff = true;
  s.warn('debug_locks', text());
}

/**
 * The DEBUG_LOCKS_WARN_ON() condition mutex_unlock() fails on for a mutex not held by the
 * caller: 4.10's owner-based mutex (MUTEX_FLAG_HANDOFF came with it) tests the owner word,
 * v4.8's debug_mutex_unlock() the owner field, a missing owner apart.
 */
function mutexOwnerCheck(s: Scheduler, locked: boolean): string {
  if (s.mutexHandoff) return '__owner_task(owner) != current';
  return locked ? 'lock->owner != current' : '!lock->owner';
}

/**
 * Whether an unlock handed the lock on `key` to `t` (Scheduler.handedOver); if so `t` now
 * takes it and the handover ends.
 */
function tookHandover(s: Scheduler, key: WaitKey, t: Task | undefined): boolean {
  if (t === undefined || s.handedOver.get(key) !== t) return false;
  s.handedOver.delete(key);
  return true;
}

/** Wakes `t` if it is blocked on `key`; nobody else. */
function wakeTask(s: Scheduler, key: WaitKey, t: Task): void {
  if (t.state === 'blocked' && t.blockedOn?.key === key) s.wakeUp(key, 0, (w) => (w === t ? 1 : 0));
}

/** Wakes the first task blocked on `key` (queue order) and no other; returns it. */
function wakeFirst(s: Scheduler, key: WaitKey): Task | undefined {
  if (!s.hasWaiters(key)) return undefined;
  let first: Task | undefined;
  s.wakeUp(key, 0, (w) => {
    if (first !== undefined) return -1;
    first = w;
    return 1;
  });
  return first;
}

/** What every emulated lock has: a scheduler, a lockdep class and a unique wait key. */
export abstract class Lock {
  /** The instance key: the wait key tasks block on and lockdep's instance key. */
  readonly key: WaitKey;

  /**
   * @param sched the machine's scheduler
   * @param className the lockdep class, e.g. `'balloon_lock'`
   * @param kind the lock kind, used in the key, e.g. `'mutex'`
   */
  constructor(
    /** The scheduler of the machine this lock belongs to. */
    readonly sched: Scheduler,
    /** The lockdep class name. */
    readonly className: string,
    kind: string,
  ) {
    this.key = sched.newLockKey(kind, className);
  }

  /** Whether the current task holds this lock (in any mode). */
  isHeld(): boolean {
    return this.sched.lockdep.isHeld(this.sched.current, this.key);
  }

  /**
   * Warn (lockdep report `'not_held'`) unless the current task holds this lock; returns
   * whether it does. Outside tasks it always passes.
   * @see include/linux/lockdep.h lockdep_assert_held()
   */
  assertHeld(): boolean {
    return this.sched.lockdep.assertHeld(this.sched.current, this.key, this.className);
  }
}

/**
 * A spinlock. Holding one puts the task in atomic context: sleeping then (on a mutex, an
 * rwsem, a page lock, any BlockPoint) is reported as `'sleep_in_atomic'` (might_sleep()),
 * and a sleep that really happens as `'scheduling_while_atomic'` (schedule()). A contended
 * acquisition parks the task like a sleeping lock would (mops does not burn steps spinning),
 * but that is not a sleep. Spinners get the lock in the order they started spinning, as
 * with a queued spinlock: a newcomer's fast path fails while anyone waits, so an unlock
 * with spinners passes the lock to the first of them.
 * @see kernel/locking/spinlock.c, kernel/locking/qspinlock.c queued_spin_lock_slowpath()
 */
export class SpinLock extends Lock {
  /** Whether the lock is held. */
  locked = false;
  /** The holder (undefined when taken outside any task). */
  owner: Task | undefined = undefined;
  /** Scheduling points of this lock. */
  readonly points: LockPoints;
  private readonly blockPoint: BlockPoint;

  /** @param className the lockdep class, e.g. `'zone->lock'` */
  constructor(sched: Scheduler, className: string) {
    super(sched, className, 'spin');
    this.points = {
      lock: point('spin_lock', className),
      trylock: point('spin_trylock', className),
      unlock: point('spin_unlock', className),
    };
    this.blockPoint = blockPoint(this.key, `spin_lock(${className})`, className);
  }

  /**
   * `spin_lock()` (or `spin_lock_nested()` with a non-zero subclass).
   * @see include/linux/spinlock.h spin_lock()
   */
  *lock(subclass = 0): KernelGen {
    const s = this.sched;
    if (s.preemptible) yield this.points.lock;
    const t = s.current;
    const cls = subclass === 0 ? this.className : nested(this.className, subclass);
    if (t !== undefined && t.heldKeys.length !== 0) {
      s.lockdep.validate(t, cls, this.key, 0, 'spin_lock');
    }
    // Passed the lock by the unlock that woke it: it is already this task's. (The holder
    // itself spins forever, as spin_lock() recursion does.)
    while (this.locked && !tookHandover(s, this.key, t)) {
      if (t !== undefined) t.blockMode = BLOCK_SPIN;
      yield this.blockPoint;
    }
    this.take(t, cls);
  }

  /**
   * {@link lock} for a task running alone (`sched.preemptible` false), as a plain call: the
   * same lockdep checks, no scheduling point. Returns false, having done nothing, when other
   * tasks may run or the lock is taken: the caller then uses {@link lock}.
   */
  lockAlone(): boolean {
    const s = this.sched;
    if (s.preemptible || this.locked) return false;
    const t = s.current;
    if (t !== undefined && t.heldKeys.length !== 0)
      s.lockdep.validate(t, this.className, this.key, 0, 'spin_lock');
    this.take(t, this.className);
    return true;
  }

  private take(t: Task | undefined, cls: string): void {
    this.locked = true;
    this.owner = t;
    if (t !== undefined) {
      t.atomicDepth++;
      this.sched.lockdep.acquired(t, cls, this.key, 0);
    }
  }

  /**
   * `spin_trylock()`: take the lock if it is free.
   * @see include/linux/spinlock.h spin_trylock()
   */
  trylock(): boolean {
    if (this.locked) return false;
    const t = this.sched.current;
    this.locked = true;
    this.owner = t;
    if (t !== undefined) {
      t.atomicDepth++;
      this.sched.lockdep.acquired(t, this.className, this.key, LOCKDEP_TRYLOCK);
    }
    return true;
  }

  /**
   * `spin_unlock()`. A lock not held stays unlocked, one held by another task is unlocked
   * all the same, each reported as the kernel reports it (lockdep's bad unlock balance,
   * else spin_bug()'s `already unlocked` / `wrong owner`); the caller's preemption count
   * drops as preempt_enable() makes it drop, never below zero.
   * @see kernel/locking/spinlock_debug.c debug_spin_unlock()
   */
  unlock(): void {
    const s = this.sched;
    const t = s.current;
    if (!this.locked) {
      unlockUnheld(s, t, this.key, () =>
        spinDump('already unlocked', t, this.className, undefined),
      );
      // preempt_enable(), which DEBUG_PREEMPT keeps from going below zero.
      if (t !== undefined && t.atomicDepth > 0) t.atomicDepth--;
      return;
    }
    const owner = this.owner;
    if (owner !== t)
      unlockNotOwner(s, t, this.key, () =>
        spinDump('wrong owner', t, this.className, owner ?? null),
      );
    this.locked = false;
    this.owner = undefined;
    if (t !== undefined) {
      // preempt_enable(), which DEBUG_PREEMPT keeps from going below zero (a spinlock
      // unlocked twice before gave the count of this one back early).
      if (t.atomicDepth > 0) t.atomicDepth--;
      if (owner === t) s.lockdep.release(t, this.key);
    }
    // The head of the queue takes it next: held for it until it runs.
    const next = wakeFirst(s, this.key);
    if (next !== undefined) {
      this.locked = true;
      this.owner = next;
      s.handedOver.set(this.key, next);
    }
  }
}

/**
 * A sleeping mutex: one owner, which alone may unlock it. Waiters stay on the wait list, in
 * the order they came, until they own the mutex; an unlock wakes the first of them (again
 * nothing while it is already awake). A task that comes along before the woken waiter runs
 * may still take the mutex (lock stealing); the waiter then sleeps again, still first, and
 * (4.10 on, `Scheduler.mutexHandoff`) asks for a handoff (MUTEX_FLAG_HANDOFF): the next
 * unlock gives the mutex straight to it.
 * @see kernel/locking/mutex.c __mutex_lock_common(), __mutex_unlock_slowpath()
 */
export class Mutex extends Lock {
  /** Whether the mutex is held. */
  locked = false;
  /** The owner (undefined when taken outside any task). */
  owner: Task | undefined = undefined;
  /** Scheduling points of this lock. */
  readonly points: LockPoints;
  private readonly blockPoint: BlockPoint;
  /** The woken first waiter that lost the mutex to a newcomer and asked for a handoff. */
  private handoff: Task | undefined = undefined;
  /** lock->wait_list: the waiting tasks, first come first, until each owns the mutex. */
  private readonly waitList: Task[] = [];

  /** @param className the lockdep class, e.g. `'balloon_lock'` */
  constructor(sched: Scheduler, className: string) {
    super(sched, className, 'mutex');
    this.points = {
      lock: point('mutex_lock', className),
      trylock: point('mutex_trylock', className),
      unlock: point('mutex_unlock', className),
    };
    this.blockPoint = blockPoint(this.key, `mutex_lock(${className})`, className);
  }

  /**
   * `mutex_lock()` (or `mutex_lock_nested()` with a non-zero subclass): sleeps while
   * another task owns the mutex.
   * @see kernel/locking/mutex.c mutex_lock()
   */
  *lock(subclass = 0): KernelGen {
    const s = this.sched;
    if (s.preemptible) yield this.points.lock;
    const t = s.current;
    const cls = subclass === 0 ? this.className : nested(this.className, subclass);
    if (t !== undefined) {
      if (t.atomicDepth > 0) mightSleep(s, `mutex_lock(${this.className})`);
      if (t.heldKeys.length !== 0) s.lockdep.validate(t, cls, this.key, 0, 'mutex_lock');
    }
    let woken = false;
    // A handoff made the mutex this task's before it ran.
    while (this.locked && !tookHandover(s, this.key, t)) {
      if (t !== undefined) {
        // Woken first in line and robbed: sleep again and ask for the mutex to be handed over.
        if (woken && s.mutexHandoff && this.handoff === undefined) this.handoff = t;
        if (!this.waitList.includes(t)) this.waitList.push(t);
        t.blockMode = BLOCK_CHECKED;
      }
      yield this.blockPoint;
      woken = true;
    }
    if (t !== undefined) {
      if (this.handoff === t) this.handoff = undefined;
      const i = this.waitList.indexOf(t);
      if (i >= 0) this.waitList.splice(i, 1);
    }
    this.locked = true;
    this.owner = t;
    if (t !== undefined) s.lockdep.acquired(t, cls, this.key, 0);
  }

  /**
   * `mutex_trylock()`: take the mutex if it is free; never sleeps.
   * @see kernel/locking/mutex.c mutex_trylock()
   */
  trylock(): boolean {
    if (this.locked) return false;
    const t = this.sched.current;
    this.locked = true;
    this.owner = t;
    if (t !== undefined) this.sched.lockdep.acquired(t, this.className, this.key, LOCKDEP_TRYLOCK);
    return true;
  }

  /**
   * `mutex_unlock()`. A mutex not held stays unlocked, one held by another task is unlocked
   * all the same, each reported as the kernel reports it (lockdep's bad unlock balance,
   * else DEBUG_LOCKS_WARN_ON).
   * @see kernel/locking/mutex.c mutex_unlock()
   */
  unlock(): void {
    const s = this.sched;
    const t = s.current;
    if (!this.locked) {
      unlockUnheld(
        s,
        t,
        this.key,
        () =>
          `WARNING: DEBUG_LOCKS_WARN_ON(${mutexOwnerCheck(s, false)}): ${this.className} is not locked, unlocked by ${label(t)}`,
      );
      return;
    }
    const owner = this.owner;
    if (owner !== t)
      unlockNotOwner(
        s,
        t,
        this.key,
        () =>
          `WARNING: DEBUG_LOCKS_WARN_ON(${mutexOwnerCheck(s, true)}): ${this.className} owned by ${label(owner)}, unlocked by ${label(t)}`,
      );
    this.locked = false;
    this.owner = undefined;
    if (t !== undefined && owner === t) s.lockdep.release(t, this.key);
    const h = this.handoff;
    if (h !== undefined && h.state === 'blocked' && h.blockedOn?.key === this.key) {
      // __mutex_handoff(): the mutex goes to the waiter that asked, held for it.
      this.locked = true;
      this.owner = h;
      s.handedOver.set(this.key, h);
      wakeTask(s, this.key, h);
      return;
    }
    this.handoff = undefined;
    // wake_up_q() of the first waiter: a no-op while it is awake and has yet to run.
    const first = this.waitList[0];
    if (first !== undefined) wakeTask(s, this.key, first);
  }
}
