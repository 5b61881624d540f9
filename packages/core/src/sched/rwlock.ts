/**
 * Reader-writer locks for emulated tasks: rwlock_t and rw_semaphore, with writer preference
 * (see locks.ts for how acquisitions, scheduling points and lockdep work).
 * @module
 */

import { MmBug } from '../errors.js';
import { blockPoint, Lock, label, point } from './locks.js';
import { mightSleep, type Scheduler } from './scheduler.js';
import {
  BLOCK_CHECKED,
  BLOCK_SPIN,
  LOCKDEP_READ,
  LOCKDEP_RECURSIVE_READ,
  LOCKDEP_TRYLOCK,
  type Task,
} from './task.js';
import type { BlockPoint, KernelGen, SchedPoint } from './types.js';

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
