/**
 * The zsmalloc pool (`struct zs_pool`, spec §7.1): its classes, its handle table, its
 * locks and statistics, and its API. zs_malloc and zs_free are in malloc.ts, object access
 * in access.ts, zspages come and go in zspage_alloc.ts, zs_compact is in compaction.ts.
 * Every operation exists as a task form (a generator that yields scheduling points and
 * takes the kernel's locks in the kernel's order: page lock → pool->lock → class->lock →
 * zspage lock) and as a plain call that runs the same code atomically outside any task.
 * @module
 */

import {
  checkMachine,
  type Kctx,
  type KernelGen,
  type Machine,
  type Memory,
  MopsError,
  PGTY,
  RwLock,
  valueKind,
} from '@mops/core';
import {
  objReadBegin,
  objReadEnd,
  objReadTask,
  objWriteTask,
  type ZsObjMapping,
} from './access.js';
import { buildClassTable, type ClassTable, getSizeClassIndex, ZS_HANDLE_SIZE } from './classes.js';
import { zsCompactTask } from './compaction.js';
import { drive, wouldWait } from './drive.js';
import { poolFree, poolFreeTask, poolMalloc, poolMallocTask, ZS_DEFAULT_GFP } from './malloc.js';
import { type Bytes, HandleTable, MAX_POOLS } from './objects.js';
import { checkPoolOptions, type ZsMistakes, type ZsPoolOptions } from './options.js';
import { registryOf, type ZsRegistry, zspageOfPage } from './registry.js';
import { type ZsRules, zsRules } from './rules.js';
import { SizeClass, type Zspage } from './zspage.js';
import { asyncFreeZspage } from './zspage_alloc.js';

/**
 * A zsmalloc pool on one machine. Handles are opaque positive numbers; objects live in page
 * contents (the machine must be built with contents).
 *
 * After a kernel BUG has halted the machine (see `MmBug`), the plain calls that run
 * zsmalloc code (zsMalloc, zsFree, objRead, objWrite, objReadEnd, zsCompact,
 * flushDeferredFree, drive) refuse with `MopsError('E_HALTED')` and change nothing, as
 * `Machine.run` and `Machine.allocPages` do; the task forms run only in a task, which a
 * halted machine no longer runs. What reads the pool's state for a post-mortem still
 * works: the views (`classesView`, `mmStatView`), {@link ZsPool.totalPages},
 * {@link ZsPool.isLive}, {@link ZsPool.objSize}, {@link ZsPool.recordedChecksum},
 * {@link ZsPool.zspageOf}, the fields and the invariant checker.
 * @see mm/zsmalloc.c zs_create_pool()
 */
export class ZsPool {
  /** Pool name. */
  readonly name: string;
  /** The machine. */
  readonly machine: Machine;
  /** The machine's memory. */
  readonly mem: Memory;
  /** Kernel context (memory and scheduler). */
  readonly k: Kctx;
  /** What the profile lets the VM observe. */
  readonly rules: ZsRules;
  /** Class table. */
  readonly table: ClassTable;
  /** Distinct classes, smallest first. */
  readonly classes: readonly SizeClass[];
  /** The handle table. */
  readonly handles: HandleTable;
  /** Page bytes. */
  readonly bytes: Bytes;
  /** `pool->lock`: readers translate handles, writers (migration, compaction) rewrite them. */
  readonly lock: RwLock;
  /** Per-machine zsmalloc state shared by the pools and the movable_ops. */
  readonly registry: ZsRegistry;
  /** `pool->pages_allocated`. */
  pagesAllocated = 0;
  /** Highest pagesAllocated seen (zram's max_used_pages). */
  maxPagesAllocated = 0;
  /** `pool->stats.pages_compacted`. */
  pagesCompacted = 0;
  /** `pool->compaction_in_progress`. */
  compactionInProgress = false;
  /** `pool->free_work` is scheduled. */
  freeWorkPending = false;
  /** Bytes given to zs_malloc for live objects (zram's compr_data_size). */
  comprDataSize = 0;
  /** Live objects in the huge class (zram's huge_pages). */
  hugeObjects = 0;
  /** Objects ever stored in the huge class (zram's huge_pages_since). */
  hugeObjectsSince = 0;
  /** Zspages whose free failed a page trylock and went to the deferred-free work. */
  deferredFrees = 0;
  /** The mistakes switched on for this pool (empty normally). */
  readonly mistakes: Readonly<ZsMistakes>;

  /**
   * @param machine a machine built with page contents
   * @param options the pool's name and mistakes; an unknown option or a value of the wrong
   *   kind is a MopsError (E_USAGE) naming the option, and no pool is made
   * @throws MopsError `E_RANGE` for a pool beyond the {@link MAX_POOLS} a machine may
   *   have (each has its own share of the handle values)
   */
  constructor(machine: Machine, options: ZsPoolOptions = {}) {
    checkMachine(machine, 'zs_create_pool');
    checkPoolOptions(options);
    const contents = machine.mem.pages.contents;
    if (!contents)
      throw new MopsError(
        'E_STATE',
        'zsmalloc keeps objects in page contents; build the machine with contents: true',
        'contents',
      );
    this.name = options.name ?? 'zram0';
    this.machine = machine;
    this.mem = machine.mem;
    this.k = { mem: machine.mem, sched: machine.sched };
    this.rules = zsRules(machine.profile);
    this.registry = registryOf(machine);
    // Each pool of a machine has its own share of the handle values, so that a handle of
    // one pool is never a live handle of another (the kernel's are addresses).
    const index = this.registry.pools.length;
    if (index >= MAX_POOLS)
      throw new MopsError(
        'E_RANGE',
        `zs_create_pool: a machine may have at most ${MAX_POOLS} zsmalloc pools`,
        'pool',
      );
    this.handles = new HandleTable(index);
    this.table = buildClassTable();
    this.classes = this.table.classes.map((s) => new SizeClass(s, machine.sched));
    this.lock = new RwLock(machine.sched, 'pool->lock');
    this.bytes = this.registry.bytes;
    this.mistakes = { ...options.mistakes };
    if (options.mistakes?.noZspageNullCheck) this.registry.mistakes.noZspageNullCheck = true;
    this.registry.pools.push(this);
  }

  /** The class an allocation of `size` bytes goes to. */
  classFor(size: number): SizeClass {
    return this.classes[this.table.byIndex[getSizeClassIndex(size + ZS_HANDLE_SIZE)]];
  }

  /** The live zspage a sub-page belongs to (`page->private`), if any. */
  zspageOf(pfn: number): Zspage | undefined {
    return zspageOfPage(this.registry, pfn);
  }

  /** Offset of the first object starting in a sub-page, as the page descriptor records it. */
  firstObjOffsetOf(pfn: number): number {
    return this.rules.pageType ? this.mem.pages.type[pfn] & 0xffffff : this.registry.firstObj[pfn];
  }

  /** Records first_obj_offset in a sub-page's descriptor. */
  setFirstObjOffset(pfn: number, off: number): void {
    if (this.rules.pageType) this.mem.pages.type[pfn] = (PGTY.zsmalloc << 24) | off;
    else this.registry.firstObj[pfn] = off;
  }

  /** Whether `handle` is a live handle of this pool. */
  isLive(handle: number): boolean {
    return this.handles.slotOf(handle) >= 0;
  }

  /** The size given to zs_malloc for a live handle. */
  objSize(handle: number): number {
    return this.handles.size[this.checkHandle(handle, 'objSize')];
  }

  /**
   * The slot of a live handle; a MopsError otherwise: E_USAGE for a value this pool never
   * issued, E_STATE for a handle already freed.
   */
  checkHandle(handle: number, what: string): number {
    const slot = this.handles.slotOf(handle);
    if (slot >= 0) return slot;
    if (this.handles.issued(handle))
      throw new MopsError(
        'E_STATE',
        `${what}: handle ${handle} was already freed (pool ${this.name}); use a handle zsMalloc returned and that is still live`,
        'handle',
      );
    throw new MopsError(
      'E_USAGE',
      `${what}: ${valueKind(handle)} is not a handle of pool ${this.name}; pass a value zsMalloc returned`,
      'handle',
    );
  }

  // ---------------------------------------------------------------------------- malloc

  /**
   * zs_malloc(size, gfp): a handle for an object of `size` bytes (1..PAGE_SIZE). When pages
   * cannot be allocated: `Errno.ENOMEM` (v6.x, the kernel's `ERR_PTR(-ENOMEM)`), or 0 in
   * v4.8; a caller that tests `handle <= 0` handles both. A size out of range is a MopsError
   * (E_RANGE). On a halted machine, MopsError('E_HALTED'). Plain form of
   * {@link zsMallocTask}.
   * @see mm/zsmalloc.c zs_malloc()
   */
  zsMalloc(size: number, gfp: number = ZS_DEFAULT_GFP): number {
    this.mem.assertRunning();
    return poolMalloc(this, size, gfp);
  }

  /** {@link zsMalloc} for a task. */
  zsMallocTask(size: number, gfp: number = ZS_DEFAULT_GFP): KernelGen<number> {
    return poolMallocTask(this, size, gfp);
  }

  // ---------------------------------------------------------------------------- free

  /**
   * zs_free(handle). What zs_malloc returns on failure is ignored, as the kernel's zs_free
   * does: 0, and from v6.0 an error value (`IS_ERR_OR_NULL`: -4095..-1, e.g.
   * `Errno.ENOMEM`). Freeing any other value that is not a live handle is a MopsError
   * (E_USAGE for a value never issued, E_STATE for a handle freed already) and changes
   * nothing. In v4.8 zs_free spins in pin_tag() while the object is mapped: nothing can end
   * that spin during this plain call, so it is core's `Livelock` then (the machine runs on,
   * nothing is freed); {@link zsFreeTask} spins until the unmap. On a halted machine,
   * MopsError('E_HALTED'), whatever `handle` is.
   * @see mm/zsmalloc.c zs_free()
   */
  zsFree(handle: number): void {
    this.mem.assertRunning();
    poolFree(this, handle);
  }

  /** {@link zsFree} for a task. */
  zsFreeTask(handle: number): KernelGen {
    return poolFreeTask(this, handle);
  }

  /**
   * Runs the deferred-free work now, outside any task; returns the zspages freed. On a
   * halted machine, MopsError('E_HALTED').
   */
  flushDeferredFree(): number {
    return drive(asyncFreeZspage(this), 'flushDeferredFree', this.mem);
  }

  // ---------------------------------------------------------------------------- access

  /**
   * zs_obj_read_begin(handle): hold the object's zspage read lock (so neither page
   * migration nor zs_compact can move it) and return its bytes: a view of the page when the
   * object lies in one page, a copy when it spans two. Release with {@link objReadEnd}. In
   * v6.17 the task may sleep in between; in v4.8–v6.3 it holds the object with preemption
   * off (zs_map_object), so sleeping there is a sleep in atomic context. v4.8 also holds
   * the handle's pin, a bit spinlock taken first: a second reader of the same handle, or a
   * zs_free of it, spins until this one ends (see {@link objRead} for a plain call).
   * @see mm/zsmalloc.c zs_obj_read_begin()
   */
  objReadBegin(handle: number): KernelGen<ZsObjMapping> {
    return objReadBegin(this, handle);
  }

  /**
   * zs_obj_read_end(): release what {@link objReadBegin} took. A value that is not a
   * mapping objReadBegin of this pool returned is a MopsError (E_USAGE) and changes
   * nothing; ending a mapping twice unlocks a zspage lock not held, a kernel BUG (MmBug).
   * On a halted machine, MopsError('E_HALTED'): the mapping stays held, as the BUG left it.
   * @see mm/zsmalloc.c zs_obj_read_end()
   */
  objReadEnd(m: ZsObjMapping): void {
    this.mem.assertRunning();
    objReadEnd(this, m);
  }

  /**
   * Reads a live object's bytes (a copy). On a halted machine, MopsError('E_HALTED').
   * Plain form of {@link objReadTask}. In v4.8, reading an object whose handle's pin is
   * held (a mapping still open) would spin for ever: core's `Livelock`, and nothing is left
   * held.
   */
  objRead(handle: number): Uint8Array {
    return drive(this.objReadTask(handle), 'objRead', this.mem);
  }

  /** read_begin, copy, read_end, for a task. */
  objReadTask(handle: number): KernelGen<Uint8Array> {
    return objReadTask(this, handle);
  }

  /**
   * zs_obj_write(handle, data, offset): copy `data` into a live object at `offset`
   * (across the page boundary if the object spans two pages) and record the object's
   * checksum. Writing past the size given to zs_malloc is a MopsError (E_RANGE) and
   * writes nothing. On a halted machine, MopsError('E_HALTED'). In v4.8, writing an object
   * whose handle's pin is held is a `Livelock`, as for {@link objRead}.
   * @see mm/zsmalloc.c zs_obj_write()
   */
  objWrite(handle: number, data: Uint8Array, offset = 0): void {
    drive(this.objWriteTask(handle, data, offset), 'objWrite', this.mem);
  }

  /** {@link objWrite} for a task. */
  objWriteTask(handle: number, data: Uint8Array, offset = 0): KernelGen {
    return objWriteTask(this, handle, data, offset);
  }

  /** The checksum recorded at the last write of a live handle, or undefined if unwritten. */
  recordedChecksum(handle: number): number | undefined {
    const slot = this.checkHandle(handle, 'recordedChecksum');
    return this.handles.written[slot] ? this.handles.sum[slot] : undefined;
  }

  // ---------------------------------------------------------------------------- compaction

  /**
   * zs_compact(): compact every class; returns the pages freed by this call (v4.8: the
   * pool's running total of compacted pages, as that release did). On a halted machine,
   * MopsError('E_HALTED').
   * @see mm/zsmalloc.c zs_compact()
   */
  zsCompact(): number {
    this.mem.assertRunning();
    // Nothing else runs during a plain call, so the locks zs_compact takes (pool->lock for
    // write, then each class lock) are free now or it would wait: fail before compacting
    // anything rather than part-way.
    if (!this.lock.writable) throw wouldWait('zsCompact', 'write_lock(pool->lock)');
    const cls = this.classes.find((c) => c.lock.locked);
    if (cls) throw wouldWait('zsCompact', `spin_lock(${cls.lock.className})`);
    return drive(zsCompactTask(this), 'zsCompact', this.mem);
  }

  /** {@link zsCompact} for a task. */
  zsCompactTask(): KernelGen<number> {
    return zsCompactTask(this);
  }

  /**
   * Runs a task-form call of this pool to its end outside any task (see {@link drive}); a
   * kernel BUG raised on the way halts the machine. On a halted machine it runs nothing:
   * MopsError('E_HALTED').
   */
  drive<T>(g: KernelGen<T>): T {
    return drive(g, 'zsmalloc', this.mem);
  }

  /**
   * zs_get_total_pages(): a read of the pool's page count, which still works on a halted
   * machine (zram's mm_stat shows the same count).
   */
  totalPages(): number {
    return this.pagesAllocated;
  }
}
