/**
 * Kernel locks for emulated tasks: spinlock_t, struct mutex, rwlock_t and rw_semaphore.
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

import { MmBug } from '../errors.js';
import { mightSleep, type Scheduler } from './scheduler.js';
import {
  BLOCK_CHECKED,
  BLOCK_SPIN,
  LOCKDEP_READ,
  LOCKDEP_RECURSIVE_READ,
  LOCKDEP_TRYLOCK,
  type Task,
} from './task.js';
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

/** The preallocated scheduling points of a reader-writer lock. */
export interface RwLockPoints {
  /** Yielded by `readLock()` before it acquires. */
  readonly readLock: SchedPoint;
  /** For callers to yield before `readTrylock()`. */
  readonly readTrylock: SchedPoint;
  /** For callers to yield before `readUnlock()`. */
  readonly readUnlock: SchedPoint;
  /** Yielded by `writeLock()` before it acquires. */
  readonly writeLock: SchedPoint;
  /** For callers to yield before `writeTrylock()`. */
  readonly writeTrylock: SchedPoint;
  /** For callers to yield before `writeUnlock()`. */
  readonly writeUnlock: SchedPoint;
}

function point(op: string, lock: string): SchedPoint {
  return Object.freeze({ op, lock });
}

function blockPoint(key: WaitKey, what: string, lock: string): BlockPoint {
  return Object.freeze({ op: 'block', key, what, lock });
}

function nested(className: string, subclass: number): string {
  return subclass === 0 ? className : `${className}/${subclass}`;
}

function label(t: Task | undefined): string {
  return t === undefined ? 'no task' : t.label;
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
 * rwsem, a page lock, any BlockPoint) is reported as `'sleep_in_atomic'`. A contended
 * acquisition parks the task like a sleeping lock would (mops does not burn steps spinning),
 * but that is not a sleep.
 * @see kernel/locking/spinlock.c, kernel/locking/spinlock_debug.c
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
    while (this.locked) {
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
   * `spin_unlock()`. Throws MmBug if the lock is not held or is held by another task.
   * @see kernel/locking/spinlock_debug.c debug_spin_unlock()
   */
  unlock(): void {
    const s = this.sched;
    const t = s.current;
    if (!this.locked) throw new MmBug(`BUG: spinlock already unlocked: ${this.className}`);
    if (this.owner !== t) {
      throw new MmBug(
        `BUG: spinlock wrong owner: ${this.className} held by ${label(this.owner)}, unlocked by ${label(t)}`,
      );
    }
    this.locked = false;
    this.owner = undefined;
    if (t !== undefined) {
      t.atomicDepth--;
      s.lockdep.release(t, this.key);
    }
    s.wake(this.key);
  }
}

/**
 * A sleeping mutex: one owner, which alone may unlock it.
 * @see kernel/locking/mutex.c
 */
export class Mutex extends Lock {
  /** Whether the mutex is held. */
  locked = false;
  /** The owner (undefined when taken outside any task). */
  owner: Task | undefined = undefined;
  /** Scheduling points of this lock. */
  readonly points: LockPoints;
  private readonly blockPoint: BlockPoint;

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
    while (this.locked) {
      if (t !== undefined) t.blockMode = BLOCK_CHECKED;
      yield this.blockPoint;
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
   * `mutex_unlock()`. Throws MmBug if the mutex is not held or the caller is not its owner.
   * @see kernel/locking/mutex.c mutex_unlock()
   */
  unlock(): void {
    const s = this.sched;
    const t = s.current;
    if (!this.locked) {
      throw new MmBug(`DEBUG_LOCKS_WARN_ON(!mutex_is_locked): ${this.className} is not locked`);
    }
    if (this.owner !== t) {
      throw new MmBug(
        `DEBUG_LOCKS_WARN_ON(__owner_task(owner) != current): ${this.className} owned by ${label(this.owner)}, unlocked by ${label(t)}`,
      );
    }
    this.locked = false;
    this.owner = undefined;
    if (t !== undefined) s.lockdep.release(t, this.key);
    s.wake(this.key);
  }
}

/**
 * A reader-writer lock (`rwlock_t`; spinning, so holders are in atomic context).
 *
 * Fairness rule (writer preference, as the kernel's queued rwlock gives process-context
 * readers): a writer waits until no reader and no writer holds the lock; a new reader waits
 * while a writer holds the lock **or any writer is waiting**, so a stream of readers cannot
 * starve a writer. For `rwlock_t`, a task that already holds the lock for read may take it
 * again for read without waiting (recursive read, which lockdep accepts for rwlock_t);
 * {@link RwSemaphore} does not allow that. Waiters are all woken on release and re-check.
 * @see kernel/locking/qrwlock.c
 */
export class RwLock extends Lock {
  /** Number of read holders. */
  readers = 0;
  /** Whether a writer holds the lock. */
  writeLocked = false;
  /** The write holder (undefined when free or taken outside any task). */
  writer: Task | undefined = undefined;
  /** Writers waiting for the lock (they hold new readers back). */
  writersWaiting = 0;
  /** Scheduling points of this lock. */
  readonly points: RwLockPoints;
  /** Read holders that are tasks (one entry per acquisition). */
  private readonly readerTasks: Task[] = [];
  private readonly sleeping: boolean;
  private readonly readBlock: BlockPoint;
  private readonly writeBlock: BlockPoint;
  private readonly ops: readonly string[];

  /**
   * @param className the lockdep class, e.g. `'migrate_lock'`
   * @param sleeping internal: true for {@link RwSemaphore}
   */
  constructor(sched: Scheduler, className: string, sleeping = false) {
    super(sched, className, sleeping ? 'rwsem' : 'rwlock');
    this.sleeping = sleeping;
    const ops = sleeping
      ? [
          'down_read',
          'down_read_trylock',
          'up_read',
          'down_write',
          'down_write_trylock',
          'up_write',
        ]
      : ['read_lock', 'read_trylock', 'read_unlock', 'write_lock', 'write_trylock', 'write_unlock'];
    this.ops = ops;
    this.points = {
      readLock: point(ops[0], className),
      readTrylock: point(ops[1], className),
      readUnlock: point(ops[2], className),
      writeLock: point(ops[3], className),
      writeTrylock: point(ops[4], className),
      writeUnlock: point(ops[5], className),
    };
    this.readBlock = blockPoint(this.key, `${ops[0]}(${className})`, className);
    this.writeBlock = blockPoint(this.key, `${ops[3]}(${className})`, className);
  }

  /**
   * `read_lock()` / `down_read()`: shared acquisition.
   * @see kernel/locking/qrwlock.c queued_read_lock_slowpath()
   */
  *readLock(): KernelGen {
    const s = this.sched;
    if (s.preemptible) yield this.points.readLock;
    const t = s.current;
    const flags = this.sleeping ? LOCKDEP_READ : LOCKDEP_READ | LOCKDEP_RECURSIVE_READ;
    if (t !== undefined) {
      if (this.sleeping && t.atomicDepth > 0) mightSleep(s, this.readBlock.what);
      if (t.heldKeys.length !== 0)
        s.lockdep.validate(t, this.className, this.key, flags, this.ops[0]);
    }
    while (this.writeLocked || (this.writersWaiting > 0 && !this.recursiveRead(t))) {
      if (t !== undefined) t.blockMode = this.sleeping ? BLOCK_CHECKED : BLOCK_SPIN;
      yield this.readBlock;
    }
    this.takeRead(t, flags);
  }

  /**
   * `read_trylock()` / `down_read_trylock()`: fails while a writer holds or waits.
   * @see include/asm-generic/qrwlock.h queued_read_trylock()
   */
  readTrylock(): boolean {
    if (this.writeLocked || this.writersWaiting > 0) return false;
    this.takeRead(this.sched.current, LOCKDEP_READ | LOCKDEP_TRYLOCK);
    return true;
  }

  /**
   * `read_unlock()` / `up_read()`. Throws MmBug if the caller does not hold it for read.
   * @see include/asm-generic/qrwlock.h queued_read_unlock()
   */
  readUnlock(): void {
    const s = this.sched;
    const t = s.current;
    if (this.readers === 0) {
      throw new MmBug(`BUG: ${this.ops[2]}(${this.className}): not held for read`);
    }
    if (t !== undefined) {
      const i = this.readerTasks.lastIndexOf(t);
      if (i < 0) {
        throw new MmBug(
          `BUG: ${this.ops[2]}(${this.className}) by ${t.label}, which does not hold it for read`,
        );
      }
      this.readerTasks.splice(i, 1);
      if (!this.sleeping) t.atomicDepth--;
      s.lockdep.release(t, this.key);
    } else if (this.readers <= this.readerTasks.length) {
      throw new MmBug(
        `BUG: ${this.ops[2]}(${this.className}) outside any task, but only tasks hold it for read`,
      );
    }
    this.readers--;
    if (this.readers === 0) s.wake(this.key);
  }

  /**
   * `write_lock()` / `down_write()`: exclusive acquisition; waits for readers to drain.
   * @see kernel/locking/qrwlock.c queued_write_lock_slowpath()
   */
  *writeLock(): KernelGen {
    const s = this.sched;
    if (s.preemptible) yield this.points.writeLock;
    const t = s.current;
    this.checkWrite(t);
    if (this.writeLocked || this.readers > 0) {
      this.writersWaiting++;
      while (this.writeLocked || this.readers > 0) {
        if (t !== undefined) t.blockMode = this.sleeping ? BLOCK_CHECKED : BLOCK_SPIN;
        yield this.writeBlock;
      }
      this.writersWaiting--;
    }
    this.takeWrite(t, 0);
  }

  /**
   * {@link writeLock} for a task running alone (`sched.preemptible` false), as a plain call:
   * the same checks, no scheduling point. Returns false, having done nothing, when other
   * tasks may run or the lock is held: the caller then uses {@link writeLock}.
   */
  writeLockAlone(): boolean {
    const s = this.sched;
    if (s.preemptible || this.writeLocked || this.readers > 0) return false;
    const t = s.current;
    this.checkWrite(t);
    this.takeWrite(t, 0);
    return true;
  }

  /** might_sleep() and lockdep's check before a write acquisition. */
  private checkWrite(t: Task | undefined): void {
    if (t === undefined) return;
    const s = this.sched;
    if (this.sleeping && t.atomicDepth > 0) mightSleep(s, this.writeBlock.what);
    if (t.heldKeys.length !== 0) s.lockdep.validate(t, this.className, this.key, 0, this.ops[3]);
  }

  /**
   * `write_trylock()` / `down_write_trylock()`: succeeds only when nobody holds the lock.
   * @see include/asm-generic/qrwlock.h queued_write_trylock()
   */
  writeTrylock(): boolean {
    if (this.writeLocked || this.readers > 0) return false;
    this.takeWrite(this.sched.current, LOCKDEP_TRYLOCK);
    return true;
  }

  /**
   * `write_unlock()` / `up_write()`. Throws MmBug if the caller is not the writer.
   * @see include/asm-generic/qrwlock.h queued_write_unlock()
   */
  writeUnlock(): void {
    const s = this.sched;
    const t = s.current;
    if (!this.writeLocked) {
      throw new MmBug(`BUG: ${this.ops[5]}(${this.className}): not held for write`);
    }
    if (this.writer !== t) {
      throw new MmBug(
        `BUG: ${this.ops[5]}(${this.className}): held by ${label(this.writer)}, released by ${label(t)}`,
      );
    }
    this.writeLocked = false;
    this.writer = undefined;
    if (t !== undefined) {
      if (!this.sleeping) t.atomicDepth--;
      s.lockdep.release(t, this.key);
    }
    s.wake(this.key);
  }

  private recursiveRead(t: Task | undefined): boolean {
    return !this.sleeping && t !== undefined && this.readerTasks.includes(t);
  }

  private takeRead(t: Task | undefined, flags: number): void {
    this.readers++;
    if (t === undefined) return;
    this.readerTasks.push(t);
    if (!this.sleeping) t.atomicDepth++;
    this.sched.lockdep.acquired(t, this.className, this.key, flags);
  }

  private takeWrite(t: Task | undefined, flags: number): void {
    this.writeLocked = true;
    this.writer = t;
    if (t === undefined) return;
    if (!this.sleeping) t.atomicDepth++;
    this.sched.lockdep.acquired(t, this.className, this.key, flags);
  }
}

/**
 * A reader-writer semaphore: the sleeping form of {@link RwLock}, with the same writer
 * preference. Holders may sleep; a recursive `down_read()` is reported by lockdep (it
 * deadlocks when a writer is waiting in between). The `down_*`/`up_*` names are aliases.
 * @see kernel/locking/rwsem.c
 */
export class RwSemaphore extends RwLock {
  /** @param className the lockdep class, e.g. `'mmap_lock'` */
  constructor(sched: Scheduler, className: string) {
    super(sched, className, true);
  }

  /**
   * `down_read()`.
   * @see kernel/locking/rwsem.c down_read()
   */
  downRead(): KernelGen {
    return this.readLock();
  }

  /**
   * `down_read_trylock()`.
   * @see kernel/locking/rwsem.c down_read_trylock()
   */
  downReadTrylock(): boolean {
    return this.readTrylock();
  }

  /**
   * `up_read()`.
   * @see kernel/locking/rwsem.c up_read()
   */
  upRead(): void {
    this.readUnlock();
  }

  /**
   * `down_write()`.
   * @see kernel/locking/rwsem.c down_write()
   */
  downWrite(): KernelGen {
    return this.writeLock();
  }

  /**
   * `down_write_trylock()`.
   * @see kernel/locking/rwsem.c down_write_trylock()
   */
  downWriteTrylock(): boolean {
    return this.writeTrylock();
  }

  /**
   * `up_write()`.
   * @see kernel/locking/rwsem.c up_write()
   */
  upWrite(): void {
    this.writeUnlock();
  }
}
