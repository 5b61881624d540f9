/**
 * zspages, their lock, and the per-class fullness lists (spec §7.1, §7.2).
 * @module
 */

import {
  BLOCK_SPIN,
  type BlockPoint,
  bug,
  type Kctx,
  type KernelGen,
  LOCKDEP_READ,
  LOCKDEP_TRYLOCK,
  type Memory,
  type SchedPoint,
  type Scheduler,
  SpinLock,
  type Task,
} from '@mops/core';
import {
  getFullnessGroup,
  NR_FULLNESS_GROUPS,
  type SizeClassSpec,
  ZS_INUSE_RATIO_0,
} from './classes.js';

const ZSPAGE_CLASS = 'zspage->lock';

/**
 * The zspage lock: readers are object accessors, a writer (page migration, zs_compact) only
 * ever trylocks it and holds it in atomic context. In v6.17 readers may sleep while holding
 * it; in v4.8–v6.3 they hold it with preemption off (v6.0/v6.3 `read_lock` of an
 * rwlock_t, v4.8 the non-preemptible zs_map_object), so a reader keeps its CPU and must not
 * sleep ({@link readersAtomic}). v6.0/v6.3 migration spins for it, which
 * {@link writeLockSpin} models. Unlocking a lock not held as asked is a kernel BUG: an
 * `MmBug` that halts the machine, with a dump of the zspage's first sub-page.
 * @see mm/zsmalloc.c zspage_read_lock(), zspage_write_trylock()
 */
export class ZspageLock {
  /** Readers holding the lock, or -1 while a writer holds it. */
  cnt = 0;
  /** Wait key of the lock. */
  readonly key: string;
  /** The machine's scheduler. */
  readonly sched: Scheduler;
  /** The machine's memory (halted by a BUG). */
  readonly mem: Memory;
  private readonly readBlock: BlockPoint;
  private readonly writeBlock: BlockPoint;

  /**
   * @param k the machine (memory and scheduler)
   * @param readersAtomic readers hold the lock with preemption off (v4.8–v6.3)
   * @param pages the zspage's sub-pages in chain order (the first is dumped by a BUG)
   */
  constructor(
    k: Kctx,
    readonly readersAtomic = false,
    private readonly pages: readonly number[] = [],
  ) {
    const sched = k.sched;
    this.sched = sched;
    this.mem = k.mem;
    this.key = sched.newLockKey('zspage', ZSPAGE_CLASS);
    this.readBlock = Object.freeze({
      op: 'block',
      key: this.key,
      what: 'zspage_read_lock',
      lock: ZSPAGE_CLASS,
    });
    this.writeBlock = Object.freeze({
      op: 'block',
      key: this.key,
      what: 'migrate_write_lock',
      lock: ZSPAGE_CLASS,
    });
  }

  /**
   * zspage_read_lock(): waits (spinning on the lock's internal spinlock) while a writer
   * holds it.
   */
  *readLock(): KernelGen {
    const s = this.sched;
    if (s.preemptible) yield POINTS.readLock;
    const t = s.current;
    if (t !== undefined && t.heldKeys.length !== 0)
      s.lockdep.validate(t, ZSPAGE_CLASS, this.key, LOCKDEP_READ, 'zspage_read_lock');
    while (this.cnt < 0) {
      if (t !== undefined) t.blockMode = BLOCK_SPIN;
      yield this.readBlock;
    }
    this.takeRead(t);
  }

  private takeRead(t: Task | undefined): void {
    this.cnt++;
    if (this.readersAtomic && t !== undefined) t.atomicDepth++;
    this.sched.lockdep.acquired(t, ZSPAGE_CLASS, this.key, LOCKDEP_READ);
  }

  /** zspage_read_lock() for code that cannot wait: false while a writer holds it. */
  readTrylock(): boolean {
    if (this.cnt < 0) return false;
    this.takeRead(this.sched.current);
    return true;
  }

  /** zspage_read_unlock(). */
  readUnlock(): void {
    if (this.cnt <= 0) bug(this.mem, 'BUG: zspage_read_unlock: not read-locked', this.pages[0]);
    const s = this.sched;
    const t = s.current;
    if (this.readersAtomic && t !== undefined) t.atomicDepth--;
    s.lockdep.release(t, this.key);
    if (--this.cnt === 0) s.wake(this.key);
  }

  /** zspage_write_trylock(): succeeds only when nobody holds the lock. */
  writeTrylock(): boolean {
    if (this.cnt !== 0) return false;
    this.cnt = -1;
    const t = this.sched.current;
    if (t !== undefined) {
      t.atomicDepth++;
      this.sched.lockdep.acquired(t, ZSPAGE_CLASS, this.key, LOCKDEP_TRYLOCK);
    }
    return true;
  }

  /** The v6.0/v6.3 migrate_write_lock(): spin until the readers are gone. */
  *writeLockSpin(): KernelGen {
    const s = this.sched;
    if (s.preemptible) yield POINTS.writeLock;
    const t = s.current;
    while (this.cnt !== 0) {
      if (t !== undefined) t.blockMode = BLOCK_SPIN;
      yield this.writeBlock;
    }
    this.writeTrylock();
  }

  /** zspage_write_unlock(). */
  writeUnlock(): void {
    if (this.cnt !== -1) bug(this.mem, 'BUG: zspage_write_unlock: not write-locked', this.pages[0]);
    this.cnt = 0;
    const s = this.sched;
    const t = s.current;
    if (t !== undefined) {
      t.atomicDepth--;
      s.lockdep.release(t, this.key);
    }
    s.wake(this.key);
  }
}

/** Scheduling points of the zsmalloc code. */
export const POINTS: Readonly<Record<string, SchedPoint>> = Object.freeze({
  readLock: Object.freeze({ op: 'zspage_read_lock', lock: ZSPAGE_CLASS }),
  readUnlock: Object.freeze({ op: 'zspage_read_unlock', lock: ZSPAGE_CLASS }),
  writeTrylock: Object.freeze({ op: 'zspage_write_trylock', lock: ZSPAGE_CLASS }),
  writeLock: Object.freeze({ op: 'migrate_write_lock', lock: ZSPAGE_CLASS }),
  writeUnlock: Object.freeze({ op: 'zspage_write_unlock', lock: ZSPAGE_CLASS }),
  copy: Object.freeze({ op: 'zs_object_copy' }),
});

/** A size class of a pool: its spec plus lock, fullness lists and statistics. */
export class SizeClass {
  /** `class->lock`. */
  readonly lock: SpinLock;
  /** Head of each fullness list (intrusive through Zspage.prev/next). */
  readonly heads: (Zspage | null)[] = new Array(NR_FULLNESS_GROUPS).fill(null);
  /** Zspages on each fullness list (the class_stat ZS_INUSE_RATIO_* counters). */
  readonly groupCount = new Int32Array(NR_FULLNESS_GROUPS);
  /** ZS_OBJS_ALLOCATED. */
  objAllocated = 0;
  /** ZS_OBJS_INUSE. */
  objUsed = 0;
  /** Object size. */
  readonly size: number;
  /** Pages per zspage. */
  readonly pagesPerZspage: number;
  /** Objects per zspage. */
  readonly objsPerZspage: number;
  /** Class index. */
  readonly index: number;
  /** Huge class. */
  readonly huge: boolean;

  /**
   * @param spec the class's sizes
   * @param sched the machine's scheduler
   */
  constructor(
    readonly spec: SizeClassSpec,
    sched: Scheduler,
  ) {
    this.lock = new SpinLock(sched, 'class->lock');
    this.size = spec.size;
    this.pagesPerZspage = spec.pagesPerZspage;
    this.objsPerZspage = spec.objsPerZspage;
    this.index = spec.index;
    this.huge = spec.huge;
  }
}

/** A zspage (`struct zspage`). */
export class Zspage {
  /** Objects in use. */
  inuse = 0;
  /** Index of the first free object, -1 when none. */
  freeobj = 0;
  /** Fullness group recorded in the zspage (`zspage->fullness`). */
  fullness = ZS_INUSE_RATIO_0;
  /** The fullness list it is on, or -1 when off every list. */
  listed = -1;
  /** Fullness list links. */
  prev: Zspage | null = null;
  /** Fullness list links. */
  next: Zspage | null = null;
  /** Sub-pages in chain order (the first carries PG_private). */
  readonly pages: number[];
  /** The zspage lock. */
  readonly lock: ZspageLock;
  /** Isolated sub-pages (v4.8–v6.3 bookkeeping). */
  isolated = 0;
  /** zs_compact holds it as source or destination. */
  compacting = false;
  /** Taken by the deferred-free work, on its way to __free_zspage. */
  freeing = false;
  /** Its sub-pages have been published as movable (SetZsPageMovable). */
  movable = false;
  /** Destroyed by __free_zspage. */
  destroyed = false;

  /**
   * @param id the value kept in each sub-page's `private` word
   * @param cls its size class
   * @param pool the owning pool (opaque here)
   * @param pages sub-pages in chain order
   * @param k the machine (memory and scheduler)
   * @param readersAtomic readers hold the zspage lock with preemption off (v4.8–v6.3)
   */
  constructor(
    readonly id: number,
    readonly cls: SizeClass,
    readonly pool: unknown,
    pages: number[],
    k: Kctx,
    readersAtomic = false,
  ) {
    this.pages = pages;
    this.lock = new ZspageLock(k, readersAtomic, pages);
  }

  /** The fullness group its in-use count gives. */
  group(): number {
    return getFullnessGroup(this.inuse, this.cls.objsPerZspage);
  }
}

/**
 * insert_zspage(): put a zspage at the head of fullness list `fg`.
 * @see mm/zsmalloc.c insert_zspage()
 */
export function insertZspage(cls: SizeClass, zs: Zspage, fg: number): void {
  const head = cls.heads[fg];
  zs.prev = null;
  zs.next = head;
  if (head) head.prev = zs;
  cls.heads[fg] = zs;
  cls.groupCount[fg]++;
  zs.listed = fg;
  zs.fullness = fg;
}

/**
 * remove_zspage(): take a zspage off its fullness list.
 * @see mm/zsmalloc.c remove_zspage()
 */
export function removeZspage(cls: SizeClass, zs: Zspage): void {
  const fg = zs.listed;
  if (fg < 0) bug(zs.lock.mem, 'VM_BUG_ON(list_empty(&zspage->list))', zs.pages[0]);
  if (zs.prev) zs.prev.next = zs.next;
  else cls.heads[fg] = zs.next;
  if (zs.next) zs.next.prev = zs.prev;
  zs.prev = zs.next = null;
  cls.groupCount[fg]--;
  zs.listed = -1;
}

/**
 * fix_fullness_group(): move a zspage to the list its in-use count calls for. A zspage off
 * every list (isolated in v4.8, held by zs_compact) only records the new group.
 * @see mm/zsmalloc.c fix_fullness_group()
 */
export function fixFullnessGroup(cls: SizeClass, zs: Zspage): number {
  const fg = getFullnessGroup(zs.inuse, cls.objsPerZspage);
  if (zs.listed < 0) {
    zs.fullness = fg;
    return fg;
  }
  if (fg === zs.listed) return fg;
  removeZspage(cls, zs);
  insertZspage(cls, zs, fg);
  return fg;
}

/**
 * putback_zspage(): list a zspage that was off its lists under the group it now belongs to.
 * @see mm/zsmalloc.c putback_zspage()
 */
export function putbackZspage(cls: SizeClass, zs: Zspage): number {
  const fg = getFullnessGroup(zs.inuse, cls.objsPerZspage);
  insertZspage(cls, zs, fg);
  return fg;
}
