/**
 * Reader-writer locks for emulated tasks: rwlock_t (a queued rwlock) and rw_semaphore (see
 * locks.ts for how acquisitions, scheduling points and lockdep work).
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

/** One task in a `rwlock_t`'s wait queue (the queued rwlock's `wait_lock` queue). */
interface RwWaiter {
  /** The waiting task (undefined outside tasks). */
  readonly task: Task | undefined;
  /** Whether it waits to write. */
  readonly write: boolean;
}

/**
 * A reader-writer lock (`rwlock_t`; spinning, so holders are in atomic context), or, with
 * `sleeping`, the {@link RwSemaphore} built on it.
 *
 * `rwlock_t` follows the kernel's queued rwlock (qrwlock). Fast paths: a reader gets in at
 * once unless a writer holds the lock or the writer at the head of the queue waits for the
 * readers to drain (`_QW_WMASK`); a writer gets in at once only when the lock word is zero
 * (no holder, no waiting writer, no queued reader's count). Anyone else joins one FIFO queue,
 * readers and writers together (`wait_lock`), and only the head of that queue proceeds:
 * - a reader at the head has already added its count, so a writer's fast path fails from
 *   then on; it waits only for the write holder to leave, takes its read count and leaves
 *   the queue, so the next queued reader follows at once;
 * - a writer at the head takes the lock if the word is zero, else sets `_QW_WAITING` (which
 *   holds new readers back) and waits for the readers and any write holder to leave. Where
 *   the profile says so (`Scheduler.qrwlockWaitingAtOnce` false, v4.8) it first waits for
 *   a write holder to leave without setting `_QW_WAITING`, and sets it only when it runs and
 *   finds none: until then the word is zero after the holder's `write_unlock()`, and any
 *   fast path (read or write, lock or trylock) gets in ahead of the queue.
 *
 * So a reader that queued before a writer gets the lock before it. mops has no interrupt
 * context: every reader is a process-context reader, which never passes a waiting writer,
 * not even one already holding the lock for read: such a recursive `read_lock()` behind a
 * waiting writer deadlocks (the reader waits for the writer, the writer for the reader).
 * Lockdep calls a process-context `read_lock()` recursive only where the profile's release
 * did (`Lockdep.readLockRecursive`, v4.8); otherwise it reports the first recursive
 * read whatever the interleaving. Waiters are woken all together (mops wakes every task
 * on a key) and each checks again whether it is the head and may proceed; one that may not
 * blocks again.
 *
 * The {@link RwSemaphore} keeps mops' simpler rule: a writer waits until nobody holds the
 * semaphore; a reader waits while a writer holds it or any writer waits, re-checking after
 * every wake.
 * @see kernel/locking/qrwlock.c, include/asm-generic/qrwlock.h
 */
export class RwLock extends Lock {
  /** Number of read holders. */
  readers = 0;
  /** Whether a writer holds the lock. */
  writeLocked = false;
  /** The write holder (undefined when free or taken outside any task). */
  writer: Task | undefined = undefined;
  /** Writers waiting for the lock (queued ones, for `rwlock_t`). */
  writersWaiting = 0;
  /**
   * `rwlock_t` only: `_QW_WAITING`, set by the writer at the head of the queue while it
   * waits for the holders to leave (v4.8: only once no writer holds the lock). New readers'
   * fast path fails while it is set.
   */
  writerWaitingBit = false;
  /** Scheduling points of this lock. */
  readonly points: RwLockPoints;
  /** Read holders that are tasks (one entry per acquisition). */
  private readonly readerTasks: Task[] = [];
  /** `rwlock_t`: the wait queue, head first. */
  private readonly queue: RwWaiter[] = [];
  /** `rwlock_t`: the reader at the head of the queue has added its count to the lock word. */
  private headReaderCounted = false;
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

  /** `rwlock_t`: the tasks queued for the lock, head first (a new array). */
  get queued(): (Task | undefined)[] {
    return this.queue.map((w) => w.task);
  }

  /**
   * `read_lock()` / `down_read()`: shared acquisition.
   * @see include/asm-generic/qrwlock.h queued_read_lock(),
   *   kernel/locking/qrwlock.c queued_read_lock_slowpath()
   */
  *readLock(): KernelGen {
    const s = this.sched;
    if (s.preemptible) yield this.points.readLock;
    const t = s.current;
    if (this.sleeping) {
      if (t !== undefined) {
        if (t.atomicDepth > 0) mightSleep(s, this.readBlock.what);
        if (t.heldKeys.length !== 0)
          s.lockdep.validate(t, this.className, this.key, LOCKDEP_READ, this.ops[0]);
      }
      while (this.writeLocked || this.writersWaiting > 0) {
        if (t !== undefined) t.blockMode = BLOCK_CHECKED;
        yield this.readBlock;
      }
      this.takeRead(t, LOCKDEP_READ);
      return;
    }
    const flags = s.lockdep.readLockRecursive
      ? LOCKDEP_READ | LOCKDEP_RECURSIVE_READ
      : LOCKDEP_READ;
    if (t !== undefined && t.heldKeys.length !== 0)
      s.lockdep.validate(t, this.className, this.key, flags, this.ops[0]);
    if (!this.writeLocked && !this.writerWaitingBit) {
      this.takeRead(t, flags);
      return;
    }
    // Slow path: queue; at the head, count in and wait for the write holder to leave.
    const w: RwWaiter = { task: t, write: false };
    this.queue.push(w);
    let taken = false;
    try {
      for (;;) {
        if (this.queue[0] === w) {
          this.headReaderCounted = true;
          if (!this.writeLocked) break;
        }
        if (t !== undefined) t.blockMode = BLOCK_SPIN;
        yield this.readBlock;
      }
      this.headReaderCounted = false;
      this.takeRead(t, flags);
      taken = true;
      this.leaveQueue();
    } finally {
      if (!taken) this.abandon(w);
    }
  }

  /**
   * `read_trylock()` / `down_read_trylock()`: fails while a writer holds the lock or waits
   * for it (for `rwlock_t`: while `_QW_WAITING` is set).
   * @see include/asm-generic/qrwlock.h queued_read_trylock()
   */
  readTrylock(): boolean {
    if (this.writeLocked || (this.sleeping ? this.writersWaiting > 0 : this.writerWaitingBit))
      return false;
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
   * @see include/asm-generic/qrwlock.h queued_write_lock(),
   *   kernel/locking/qrwlock.c queued_write_lock_slowpath()
   */
  *writeLock(): KernelGen {
    const s = this.sched;
    if (s.preemptible) yield this.points.writeLock;
    const t = s.current;
    this.checkWrite(t);
    if (this.sleeping) {
      if (this.writeLocked || this.readers > 0) {
        this.writersWaiting++;
        try {
          while (this.writeLocked || this.readers > 0) {
            if (t !== undefined) t.blockMode = BLOCK_CHECKED;
            yield this.writeBlock;
          }
        } finally {
          // Also when the waiting generator is abandoned (see abandon()).
          this.writersWaiting--;
        }
      }
      this.takeWrite(t, 0);
      return;
    }
    if (this.lockWordZero()) {
      this.takeWrite(t, 0);
      return;
    }
    // Slow path: queue; at the head, take the lock or set _QW_WAITING and wait for it.
    const w: RwWaiter = { task: t, write: true };
    this.queue.push(w);
    this.writersWaiting++;
    let taken = false;
    try {
      while (this.queue[0] !== w) {
        if (t !== undefined) t.blockMode = BLOCK_SPIN;
        yield this.writeBlock;
      }
      if (!this.lockWordZero()) {
        // v4.8: wait for a write holder to leave before setting _QW_WAITING, so the lock
        // word is zero from its write_unlock() until this writer runs again.
        if (!s.qrwlockWaitingAtOnce) {
          while (this.writeLocked) {
            if (t !== undefined) t.blockMode = BLOCK_SPIN;
            yield this.writeBlock;
          }
        }
        this.writerWaitingBit = true;
        while (this.writeLocked || this.readers > 0) {
          if (t !== undefined) t.blockMode = BLOCK_SPIN;
          yield this.writeBlock;
        }
        this.writerWaitingBit = false;
      }
      this.writersWaiting--;
      this.takeWrite(t, 0);
      taken = true;
      this.leaveQueue();
    } finally {
      if (!taken) {
        this.writersWaiting--;
        this.abandon(w);
      }
    }
  }

  /**
   * {@link writeLock} for a task running alone (`sched.preemptible` false), as a plain call:
   * the same checks, no scheduling point. Returns false, having done nothing, when other
   * tasks may run or the lock is held: the caller then uses {@link writeLock}.
   */
  writeLockAlone(): boolean {
    const s = this.sched;
    if (s.preemptible || !this.lockWordZero()) return false;
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
   * `write_trylock()` / `down_write_trylock()`: succeeds only when nobody holds the lock
   * (for `rwlock_t`: when the lock word is zero, so not while a writer waits).
   * @see include/asm-generic/qrwlock.h queued_write_trylock()
   */
  writeTrylock(): boolean {
    if (!this.lockWordZero()) return false;
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

  /** Whether a writer would take the lock now without waiting (see {@link writeTrylock}). */
  get writable(): boolean {
    return this.lockWordZero();
  }

  /**
   * Whether the lock word (`cnts`) is zero: no holder and, for `rwlock_t`, no waiting writer
   * and no queued reader's count. A writer's fast path and `write_trylock()` need it.
   */
  private lockWordZero(): boolean {
    return (
      !this.writeLocked && this.readers === 0 && !this.writerWaitingBit && !this.headReaderCounted
    );
  }

  /**
   * A waiter's generator was abandoned before it took the lock (a plain call outside tasks
   * gives up rather than wait: `return()` on its generator): it leaves the queue as if it
   * had never come, undoing what it set while at the head.
   */
  private abandon(w: RwWaiter): void {
    const i = this.queue.indexOf(w);
    if (i < 0) return;
    if (i > 0) {
      this.queue.splice(i, 1);
      return;
    }
    if (w.write) this.writerWaitingBit = false;
    else this.headReaderCounted = false;
    this.leaveQueue();
  }

  /** The head of the queue leaves it (releases `wait_lock`): the next waiter is the head. */
  private leaveQueue(): void {
    this.queue.shift();
    if (this.queue.length !== 0) this.sched.wake(this.key);
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
 * A reader-writer semaphore: the sleeping form of {@link RwLock}, with writer preference (a
 * new reader waits while any writer holds or waits; not the kernel's wait-queue order, which
 * mops does not model for rw_semaphore). Holders may sleep; a recursive `down_read()` is reported by lockdep (it
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
