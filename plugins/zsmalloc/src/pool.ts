/**
 * The zsmalloc pool (`struct zs_pool`): classes, handles and the allocation API (spec §7.1,
 * §7.2); zspages come and go in zspage_alloc.ts, objects are read and written in access.ts. Every operation exists as a task form (a
 * generator that yields scheduling points and takes the kernel's locks in the kernel's
 * order: page lock → pool->lock → class->lock → zspage lock) and as a plain call that runs
 * the same code atomically outside any task.
 * @module
 */

import {
  __GFP,
  type BlockPoint,
  bug,
  checkGfp,
  checkMachine,
  Errno,
  type Kctx,
  type KernelGen,
  type Machine,
  type Memory,
  MopsError,
  PAGE_SIZE,
  PGTY,
  printable,
  RwLock,
  valueKind,
} from '@mops/core';
import { objReadBegin, objWriteTask, pinForFree, unpinAfterFree, unpinObject } from './access.js';
import { buildClassTable, type ClassTable, getSizeClassIndex, ZS_HANDLE_SIZE } from './classes.js';
import { zsCompactTask } from './compaction.js';
import { drive, wouldWait } from './drive.js';
import { modelsIsolationWord, storeFullnessWord } from './isolation_word.js';
import {
  type Bytes,
  HANDLE_SLOTS,
  HandleTable,
  objFree,
  objMalloc,
  readHeader,
} from './objects.js';
import { registryOf, type ZsRegistry, zspageOfPage } from './registry.js';
import { type ZsRules, zsRules } from './rules.js';
import { fixFullnessGroup, POINTS, SizeClass, Zspage } from './zspage.js';
import {
  allocZspage,
  asyncFreeZspage,
  freeZspage,
  insertNewZspage,
  setZsPageMovable,
} from './zspage_alloc.js';

/** The gfp zram passes to zs_malloc: GFP_NOIO | __GFP_NOWARN | __GFP_HIGHMEM | __GFP_MOVABLE. */
export const ZS_DEFAULT_GFP =
  __GFP.DIRECT_RECLAIM | __GFP.KSWAPD_RECLAIM | __GFP.NOWARN | __GFP.HIGHMEM | __GFP.MOVABLE;

/** An object held open by {@link ZsPool.objReadBegin}; give it back to objReadEnd. */
export interface ZsObjMapping {
  /** The handle. */
  readonly handle: number;
  /** The object's bytes (the size given to zs_malloc), header excluded. */
  readonly data: Uint8Array;
  /** The zspage whose read lock is held. */
  readonly zspage: Zspage;
}

/**
 * Mistakes that can be switched on to reproduce the races the kernel's rules prevent (for
 * race scenarios; never set in normal runs).
 */
export interface ZsMistakes {
  /**
   * __free_zspage() resets the sub-pages without __ClearPageMovable (v4.8–v6.3): an
   * isolated sub-page keeps its movable_ops, so the VM cannot see that zsmalloc let it go
   * and calls back into zsmalloc for a page without zspage (spec §4.1, §7.5).
   */
  freeWithoutClearMovable?: boolean;
  /**
   * The v6.17 callbacks do not check `zpdesc->zspage == NULL`: zs_page_isolate accepts a
   * destroyed page and zs_page_migrate dereferences its NULL zspage (spec §4.3).
   */
  noZspageNullCheck?: boolean;
  /**
   * v6.0–v6.4 (spec §7.3, §9f): `zspage->isolated` shares one bit-field word with
   * `zspage->fullness`, but zs_page_isolate and zs_page_putback update it under the zspage
   * lock only, while zs_malloc's and zs_free's fix_fullness_group rewrite the word under
   * the class lock. Set, their stores of the group and the stores of the count are
   * read-modify-writes with a scheduling point between the load and the store, so one can
   * overwrite another: `'racy'` counts isolation under the zspage lock, and zs_page_migrate
   * uncounts after dropping the class lock, as 6.0–6.4 did; `'fixed'` counts under the
   * class lock, as the 2023 fix does. (zs_compact's stores are not split: in 6.0–6.4 it
   * held the zspage locks they would race with.) Only v6.0 and v6.3 count isolated
   * sub-pages this way; other profiles ignore the option.
   */
  sharedIsolationWord?: 'racy' | 'fixed';
}

/** The kinds of value each mistake takes. */
const MISTAKES: Readonly<Record<keyof ZsMistakes, readonly unknown[]>> = {
  freeWithoutClearMovable: [true, false],
  noZspageNullCheck: [true, false],
  sharedIsolationWord: ['racy', 'fixed'],
};

/** `mistakes` is absent or an object of known mistakes with allowed values; else E_USAGE. */
function checkMistakes(mistakes: unknown): void {
  if (mistakes === undefined) return;
  const names = Object.keys(MISTAKES);
  if (typeof mistakes !== 'object' || mistakes === null)
    throw new MopsError(
      'E_USAGE',
      `zs_create_pool: mistakes must be an object of ${names.join(', ')}, got ${valueKind(mistakes)}`,
      'mistakes',
    );
  for (const [k, v] of Object.entries(mistakes)) {
    const allowed = Object.hasOwn(MISTAKES, k) ? MISTAKES[k as keyof ZsMistakes] : undefined;
    if (!allowed)
      throw new MopsError(
        'E_USAGE',
        `zs_create_pool: unknown mistake '${k}'; the mistakes are ${names.join(', ')}`,
        k,
      );
    if (v !== undefined && !allowed.includes(v))
      throw new MopsError(
        'E_USAGE',
        `zs_create_pool: mistake ${k} must be ${allowed.map((a) => printable(a)).join(' or ')}, got ${valueKind(v)}`,
        k,
      );
  }
}

/** Options of {@link ZsPool}. */
export interface ZsPoolOptions {
  /** Pool name (zram uses the disk name); default `'zram0'`. */
  name?: string;
  /**
   * Mistakes to switch on (race scenarios only). They apply to the pool's free path and,
   * for the callbacks, to every pool of the machine.
   */
  mistakes?: ZsMistakes;
}

/**
 * A zsmalloc pool on one machine. Handles are opaque positive numbers; objects live in page
 * contents (the machine must be built with contents).
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
  readonly handles = new HandleTable();
  /** Page bytes. */
  readonly bytes: Bytes;
  /** `pool->lock`: readers translate handles, writers (migration, compaction) rewrite them. */
  readonly lock: RwLock;
  /** Where v4.8's zs_free waits for a mapped handle's pin (see pinForFree). */
  readonly pinBlock: BlockPoint;
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

  /** @param machine a machine built with page contents */
  constructor(machine: Machine, options: ZsPoolOptions = {}) {
    checkMachine(machine, 'zs_create_pool');
    if (typeof options !== 'object' || options === null)
      throw new MopsError(
        'E_USAGE',
        `zs_create_pool: options must be an object, got ${valueKind(options)}`,
        'options',
      );
    if (options.name !== undefined && (typeof options.name !== 'string' || options.name === ''))
      throw new MopsError(
        'E_USAGE',
        `zs_create_pool: name must be a non-empty string, got ${valueKind(options.name)}`,
        'name',
      );
    checkMistakes(options.mistakes);
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
    this.table = buildClassTable();
    this.classes = this.table.classes.map((s) => new SizeClass(s, machine.sched));
    this.lock = new RwLock(machine.sched, 'pool->lock');
    this.pinBlock = Object.freeze({
      op: 'block',
      key: machine.sched.newLockKey('zs_handle', 'handle pin'),
      what: 'pin_tag(handle)',
    });
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
   * (E_RANGE). Plain form of {@link zsMallocTask}.
   * @see mm/zsmalloc.c zs_malloc()
   */
  zsMalloc(size: number, gfp: number = ZS_DEFAULT_GFP): number {
    // The common case without a generator: a partly used zspage and a free class lock
    // (anything else goes to zsMallocTask, which checks size and gfp). The default mask is
    // valid: only one the caller gave is checked here.
    if (Number.isInteger(size) && size > 0 && size <= PAGE_SIZE) {
      if (gfp !== ZS_DEFAULT_GFP) checkGfp(this.k.mem, gfp);
      const cls = this.classFor(size);
      // The class lock is the only one zs_malloc waits for, and nothing else runs during a
      // plain call: held by a task, the call would wait; fail before taking anything.
      if (!cls.lock.trylock()) throw wouldWait('zsMalloc', `spin_lock(${cls.lock.className})`);
      const zs = findGetZspage(cls);
      if (zs) {
        const handle = this.handles.alloc();
        objMalloc(this.bytes, this.handles, zs, handle);
        fixFullnessGroup(cls, zs);
        this.recordAlloc(cls, handle, size);
        cls.lock.unlock();
        return handle;
      }
      cls.lock.unlock();
    }
    return drive(this.zsMallocTask(size, gfp), 'zsMalloc');
  }

  /** {@link zsMalloc} for a task. */
  *zsMallocTask(size: number, gfp: number = ZS_DEFAULT_GFP): KernelGen<number> {
    if (!Number.isInteger(size) || size <= 0 || size > PAGE_SIZE)
      throw new MopsError(
        'E_RANGE',
        `zsMalloc: size ${valueKind(size)} is out of range; objects hold 1..${PAGE_SIZE} bytes`,
        'size',
      );
    checkGfp(this.k.mem, gfp);
    const sched = this.k.sched;
    const cls = this.classFor(size);
    const handle = this.handles.alloc();
    yield* cls.lock.lock();
    let zs: Zspage | null | undefined = findGetZspage(cls);
    if (zs) {
      const loaded = zs.fullness;
      objMalloc(this.bytes, this.handles, zs, handle);
      const fg = fixFullnessGroup(cls, zs);
      // The object counts first: nothing outside the class lock can tell the order.
      this.recordAlloc(cls, handle, size);
      if (fg !== loaded && modelsIsolationWord(this))
        yield* storeFullnessWord(this, zs, loaded, fg);
      if (sched.preemptible) yield cls.lock.points.unlock;
      cls.lock.unlock();
      return handle;
    }
    if (sched.preemptible) yield cls.lock.points.unlock;
    cls.lock.unlock();
    zs = allocZspage(this, cls, gfp);
    if (!zs) {
      this.handles.release(handle);
      return this.rules.mallocFailsWithZero ? 0 : Errno.ENOMEM;
    }
    yield* cls.lock.lock();
    objMalloc(this.bytes, this.handles, zs, handle);
    insertNewZspage(this, cls, zs);
    this.recordAlloc(cls, handle, size);
    yield* setZsPageMovable(this, zs);
    if (sched.preemptible) yield cls.lock.points.unlock;
    cls.lock.unlock();
    return handle;
  }

  private recordAlloc(cls: SizeClass, handle: number, size: number): void {
    cls.objUsed++;
    const slot = handle % HANDLE_SLOTS;
    this.handles.size[slot] = size;
    this.comprDataSize += size;
    if (cls.huge) {
      this.hugeObjects++;
      this.hugeObjectsSince++;
    }
  }

  // ---------------------------------------------------------------------------- free

  /**
   * zs_free(handle). What zs_malloc returns on failure is ignored, as the kernel's zs_free
   * does: 0, and from v6.0 an error value (`IS_ERR_OR_NULL`: -4095..-1, e.g.
   * `Errno.ENOMEM`). Freeing any other value that is not a live handle is a MopsError
   * (E_USAGE for a value never issued, E_STATE for a handle freed already) and changes
   * nothing. In v4.8 zs_free waits in pin_tag() while the object is mapped: this plain call
   * cannot wait, so it is E_STATE then; {@link zsFreeTask} waits for the unmap.
   * @see mm/zsmalloc.c zs_free()
   */
  zsFree(handle: number): void {
    if (this.freeIgnores(handle)) return;
    const slot = this.checkHandle(handle, 'zsFree');
    // The common case without a generator: free locks, an object nobody has mapped (v4.8's
    // pin) and a zspage that stays in use.
    if (this.handles.pinned[slot] === 0 && this.lock.readTrylock()) {
      const pfn = this.handles.pfn[slot];
      const zs = this.zspageOf(pfn);
      if (zs && zs.inuse > 1 && zs.cls.lock.trylock()) {
        this.lock.readUnlock();
        this.freeObject(zs, pfn, this.handles.idx[slot], slot, handle);
        zs.cls.lock.unlock();
        return;
      }
      this.lock.readUnlock();
    }
    drive(this.zsFreeTask(handle), 'zsFree');
  }

  /** The part of zs_free under the class lock: free the object and fix its fullness. */
  private freeObject(zs: Zspage, pfn: number, idx: number, slot: number, handle: number): number {
    const cls = zs.cls;
    if (!cls.huge) {
      const addr = pfn * PAGE_SIZE + ((idx * cls.size) & (PAGE_SIZE - 1));
      if (readHeader(this.bytes, addr) !== handle)
        bug(this.mem, `zs_free: object ${idx} does not hold handle ${handle}`, pfn);
    }
    cls.objUsed--;
    this.comprDataSize -= this.handles.size[slot];
    if (cls.huge) this.hugeObjects--;
    objFree(this.bytes, zs, pfn, idx);
    this.handles.release(handle);
    return fixFullnessGroup(cls, zs);
  }

  /**
   * Whether zs_free returns at once for `handle`: NULL, or (v6.0 on, whose zs_malloc fails
   * with `ERR_PTR`) an error value.
   */
  private freeIgnores(handle: number): boolean {
    if (handle === 0) return true;
    return (
      !this.rules.mallocFailsWithZero && Number.isInteger(handle) && handle < 0 && handle >= -4095
    );
  }

  /** {@link zsFree} for a task. */
  *zsFreeTask(handle: number): KernelGen {
    if (this.freeIgnores(handle)) return;
    const slot = this.checkHandle(handle, 'zsFree');
    const pinned = yield* pinForFree(this, slot);
    let freed = false;
    try {
      yield* this.freeUnpinned(handle);
      freed = true;
    } finally {
      if (pinned) unpinAfterFree(this, slot, freed);
    }
  }

  /** zs_free() after v4.8's pin_tag(): the pool lock, the class lock and the free. */
  private *freeUnpinned(handle: number): KernelGen {
    const sched = this.k.sched;
    yield* this.lock.readLock();
    const slot = this.handles.slotOf(handle);
    if (slot < 0) {
      this.lock.readUnlock();
      this.checkHandle(handle, 'zsFree');
    }
    const pfn = this.handles.pfn[slot];
    const idx = this.handles.idx[slot];
    const zs = this.zspageOf(pfn);
    if (!zs) bug(this.mem, 'zs_free: handle points into a page without zspage', pfn);
    const cls = zs.cls;
    let classLocked = false;
    try {
      yield* cls.lock.lock();
      classLocked = true;
    } finally {
      // A plain call that may not wait for the class lock gives the pool lock back.
      if (!classLocked) this.lock.readUnlock();
    }
    if (sched.preemptible) yield this.lock.points.readUnlock;
    this.lock.readUnlock();
    const loaded = zs.fullness;
    let fg = this.freeObject(zs, pfn, idx, slot, handle);
    if (fg !== loaded && modelsIsolationWord(this))
      fg = yield* storeFullnessWord(this, zs, loaded, fg);
    // v4.8 leaves an emptied zspage with an isolated sub-page for the last putback.
    if (fg === 0 && !(this.rules.deferFreeWhileIsolated && zs.isolated > 0))
      yield* freeZspage(this, cls, zs);
    if (sched.preemptible) yield cls.lock.points.unlock;
    cls.lock.unlock();
  }

  /** Runs the deferred-free work now, outside any task; returns the zspages freed. */
  flushDeferredFree(): number {
    return drive(asyncFreeZspage(this), 'flushDeferredFree');
  }

  // ---------------------------------------------------------------------------- access

  /**
   * zs_obj_read_begin(handle): hold the object's zspage read lock (so neither page
   * migration nor zs_compact can move it) and return its bytes: a view of the page when the
   * object lies in one page, a copy when it spans two. Release with {@link objReadEnd}. In
   * v6.17 the task may sleep in between; in v4.8–v6.3 it holds the object with preemption
   * off (zs_map_object), so sleeping there is a sleep in atomic context.
   * @see mm/zsmalloc.c zs_obj_read_begin()
   */
  objReadBegin(handle: number): KernelGen<ZsObjMapping> {
    return objReadBegin(this, handle);
  }

  /**
   * zs_obj_read_end(): release what {@link objReadBegin} took. A value that is not a
   * mapping objReadBegin of this pool returned is a MopsError (E_USAGE) and changes
   * nothing; ending a mapping twice unlocks a zspage lock not held, a kernel BUG (MmBug).
   * @see mm/zsmalloc.c zs_obj_read_end()
   */
  objReadEnd(m: ZsObjMapping): void {
    const zs =
      typeof m === 'object' && m !== null ? (m as Partial<ZsObjMapping>).zspage : undefined;
    if (!(zs instanceof Zspage) || zs.pool !== this || !this.handles.issued(m.handle))
      throw new MopsError(
        'E_USAGE',
        `objReadEnd: ${valueKind(m)} is not a mapping of pool ${this.name}; pass what objReadBegin returned`,
        'mapping',
      );
    unpinObject(this, zs, m.handle % HANDLE_SLOTS);
  }

  /** Reads a live object's bytes (a copy). Plain form of {@link objReadTask}. */
  objRead(handle: number): Uint8Array {
    return drive(this.objReadTask(handle), 'objRead');
  }

  /** read_begin, copy, read_end, for a task. */
  *objReadTask(handle: number): KernelGen<Uint8Array> {
    const m = yield* this.objReadBegin(handle);
    const out = m.data.slice();
    if (this.k.sched.preemptible) yield POINTS.readUnlock;
    this.objReadEnd(m);
    return out;
  }

  /**
   * zs_obj_write(handle, data, offset): copy `data` into a live object at `offset`
   * (across the page boundary if the object spans two pages) and record the object's
   * checksum. Writing past the size given to zs_malloc is a MopsError (E_RANGE) and
   * writes nothing.
   * @see mm/zsmalloc.c zs_obj_write()
   */
  objWrite(handle: number, data: Uint8Array, offset = 0): void {
    drive(this.objWriteTask(handle, data, offset), 'objWrite');
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

  /**
   * zs_compact(): compact every class; returns the pages freed by this call (v4.8: the
   * pool's running total of compacted pages, as that release did).
   * @see mm/zsmalloc.c zs_compact()
   */
  zsCompact(): number {
    // Nothing else runs during a plain call, so the locks zs_compact takes (pool->lock for
    // write, then each class lock) are free now or it would wait: fail before compacting
    // anything rather than part-way.
    if (!this.lock.writable) throw wouldWait('zsCompact', 'write_lock(pool->lock)');
    const cls = this.classes.find((c) => c.lock.locked);
    if (cls) throw wouldWait('zsCompact', `spin_lock(${cls.lock.className})`);
    return drive(zsCompactTask(this), 'zsCompact');
  }

  /** {@link zsCompact} for a task. */
  zsCompactTask(): KernelGen<number> {
    return zsCompactTask(this);
  }

  /** Runs a task-form call of this pool to its end outside any task (see {@link drive}). */
  drive<T>(g: KernelGen<T>): T {
    return drive(g, 'zsmalloc');
  }

  /** zs_get_total_pages(). */
  totalPages(): number {
    return this.pagesAllocated;
  }
}

/**
 * find_get_zspage(): the first zspage of the fullest partly used group (99 % down to 0 %).
 * @see mm/zsmalloc.c find_get_zspage()
 */
export function findGetZspage(cls: SizeClass): Zspage | null {
  const heads = cls.heads;
  for (let fg = 10; fg >= 0; fg--) {
    const zs = heads[fg];
    if (zs !== null) return zs;
  }
  return null;
}
