/**
 * zs_malloc and zs_free (spec §7.2): an object's slot in a zspage of its class, the handle
 * that names it, and the fullness group the zspage moves to. Each exists as a task form
 * that takes the kernel's locks in the kernel's order (pool->lock → class->lock) and as a
 * plain call that runs the common case without a generator and the rest through
 * {@link drive}. {@link ZsPool.zsMalloc} and {@link ZsPool.zsFree} are the API.
 * @module
 */

import {
  __GFP,
  bug,
  checkGfp,
  Errno,
  type KernelGen,
  MopsError,
  PAGE_SIZE,
  valueKind,
} from '@mops/core';
import { drive, wouldWait } from './drive.js';
import { modelsIsolationWord, storeFullnessWord } from './isolation_word.js';
import { HANDLE_SLOTS, objFree, objMalloc, readHeader } from './objects.js';
import { isPinned, pinTag, unpinAfterFree } from './pin.js';
import type { ZsPool } from './pool.js';
import { fixFullnessGroup, type SizeClass, type Zspage } from './zspage.js';
import { allocZspage, freeZspage, insertNewZspage, setZsPageMovable } from './zspage_alloc.js';

/** The gfp zram passes to zs_malloc: GFP_NOIO | __GFP_NOWARN | __GFP_HIGHMEM | __GFP_MOVABLE. */
export const ZS_DEFAULT_GFP =
  __GFP.DIRECT_RECLAIM | __GFP.KSWAPD_RECLAIM | __GFP.NOWARN | __GFP.HIGHMEM | __GFP.MOVABLE;

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

/** zs_malloc() as a plain call: see {@link ZsPool.zsMalloc}. */
export function poolMalloc(pool: ZsPool, size: number, gfp: number): number {
  // The common case without a generator: a partly used zspage and a free class lock
  // (anything else goes to poolMallocTask, which checks size and gfp). The default mask is
  // valid: only one the caller gave is checked here.
  if (Number.isInteger(size) && size > 0 && size <= PAGE_SIZE) {
    if (gfp !== ZS_DEFAULT_GFP) checkGfp(pool.k.mem, gfp);
    const cls = pool.classFor(size);
    // The class lock is the only one zs_malloc waits for, and nothing else runs during a
    // plain call: held by a task, the call would wait; fail before taking anything.
    if (!cls.lock.trylock()) throw wouldWait('zsMalloc', `spin_lock(${cls.lock.className})`);
    const zs = findGetZspage(cls);
    if (zs) {
      const handle = pool.handles.alloc();
      objMalloc(pool.bytes, pool.handles, zs, handle);
      fixFullnessGroup(cls, zs);
      recordAlloc(pool, cls, handle, size);
      cls.lock.unlock();
      return handle;
    }
    cls.lock.unlock();
  }
  return drive(poolMallocTask(pool, size, gfp), 'zsMalloc', pool.mem);
}

/**
 * zs_malloc() for a task: see {@link ZsPool.zsMallocTask}.
 * @see mm/zsmalloc.c zs_malloc()
 */
export function* poolMallocTask(pool: ZsPool, size: number, gfp: number): KernelGen<number> {
  if (!Number.isInteger(size) || size <= 0 || size > PAGE_SIZE)
    throw new MopsError(
      'E_RANGE',
      `zsMalloc: size ${valueKind(size)} is out of range; objects hold 1..${PAGE_SIZE} bytes`,
      'size',
    );
  checkGfp(pool.k.mem, gfp);
  const sched = pool.k.sched;
  const cls = pool.classFor(size);
  const handle = pool.handles.alloc();
  yield* cls.lock.lock();
  let zs: Zspage | null | undefined = findGetZspage(cls);
  if (zs) {
    const loaded = zs.fullness;
    objMalloc(pool.bytes, pool.handles, zs, handle);
    const fg = fixFullnessGroup(cls, zs);
    // The object counts first: nothing outside the class lock can tell the order.
    recordAlloc(pool, cls, handle, size);
    if (fg !== loaded && modelsIsolationWord(pool)) yield* storeFullnessWord(pool, zs, loaded, fg);
    if (sched.preemptible) yield cls.lock.points.unlock;
    cls.lock.unlock();
    return handle;
  }
  if (sched.preemptible) yield cls.lock.points.unlock;
  cls.lock.unlock();
  zs = allocZspage(pool, cls, gfp);
  if (!zs) {
    pool.handles.release(handle);
    return pool.rules.mallocFailsWithZero ? 0 : Errno.ENOMEM;
  }
  yield* cls.lock.lock();
  objMalloc(pool.bytes, pool.handles, zs, handle);
  insertNewZspage(pool, cls, zs);
  recordAlloc(pool, cls, handle, size);
  yield* setZsPageMovable(pool, zs);
  if (sched.preemptible) yield cls.lock.points.unlock;
  cls.lock.unlock();
  return handle;
}

/** Counts a new object of `size` bytes in its class and in the pool's statistics. */
function recordAlloc(pool: ZsPool, cls: SizeClass, handle: number, size: number): void {
  cls.objUsed++;
  const slot = handle % HANDLE_SLOTS;
  pool.handles.size[slot] = size;
  pool.comprDataSize += size;
  if (cls.huge) {
    pool.hugeObjects++;
    pool.hugeObjectsSince++;
  }
}

/** zs_free() as a plain call: see {@link ZsPool.zsFree}. */
export function poolFree(pool: ZsPool, handle: number): void {
  if (freeIgnores(pool, handle)) return;
  const slot = pool.checkHandle(handle, 'zsFree');
  // The common case without a generator: free locks, an object nobody has mapped (v4.8's
  // pin) and a zspage that stays in use.
  if (!isPinned(pool, slot) && pool.lock.readTrylock()) {
    const pfn = pool.handles.pfn[slot];
    const zs = pool.zspageOf(pfn);
    if (zs && zs.inuse > 1 && zs.cls.lock.trylock()) {
      pool.lock.readUnlock();
      freeObject(pool, zs, pfn, pool.handles.idx[slot], slot, handle);
      zs.cls.lock.unlock();
      return;
    }
    pool.lock.readUnlock();
  }
  drive(poolFreeTask(pool, handle), 'zsFree', pool.mem);
}

/** The part of zs_free under the class lock: free the object and fix its fullness. */
function freeObject(
  pool: ZsPool,
  zs: Zspage,
  pfn: number,
  idx: number,
  slot: number,
  handle: number,
): number {
  const cls = zs.cls;
  if (!cls.huge) {
    const addr = pfn * PAGE_SIZE + ((idx * cls.size) & (PAGE_SIZE - 1));
    if (readHeader(pool.bytes, addr) !== handle)
      bug(pool.mem, `zs_free: object ${idx} does not hold handle ${handle}`, pfn);
  }
  cls.objUsed--;
  pool.comprDataSize -= pool.handles.size[slot];
  if (cls.huge) pool.hugeObjects--;
  objFree(pool.bytes, zs, pfn, idx);
  pool.handles.release(handle);
  return fixFullnessGroup(cls, zs);
}

/**
 * Whether zs_free returns at once for `handle`: NULL, or (v6.0 on, whose zs_malloc fails
 * with `ERR_PTR`) an error value.
 */
function freeIgnores(pool: ZsPool, handle: number): boolean {
  if (handle === 0) return true;
  return (
    !pool.rules.mallocFailsWithZero && Number.isInteger(handle) && handle < 0 && handle >= -4095
  );
}

/**
 * zs_free() for a task: see {@link ZsPool.zsFreeTask}.
 * @see mm/zsmalloc.c zs_free()
 */
export function* poolFreeTask(pool: ZsPool, handle: number): KernelGen {
  if (freeIgnores(pool, handle)) return;
  const slot = pool.checkHandle(handle, 'zsFree');
  if (!pool.rules.pinsHandles) return yield* freeUnpinned(pool, handle);
  // v4.8 pin_tag(): spins while the object is mapped, then holds the pin through the free,
  // so that migration (trypin_tag) leaves the object alone.
  yield* pinTag(pool, slot, handle);
  try {
    yield* freeUnpinned(pool, handle);
  } finally {
    unpinAfterFree(pool, slot);
  }
}

/** zs_free() after v4.8's pin_tag(): the pool lock, the class lock and the free. */
function* freeUnpinned(pool: ZsPool, handle: number): KernelGen {
  const sched = pool.k.sched;
  yield* pool.lock.readLock();
  const slot = pool.handles.slotOf(handle);
  if (slot < 0) {
    pool.lock.readUnlock();
    pool.checkHandle(handle, 'zsFree');
  }
  const pfn = pool.handles.pfn[slot];
  const idx = pool.handles.idx[slot];
  const zs = pool.zspageOf(pfn);
  if (!zs) bug(pool.mem, 'zs_free: handle points into a page without zspage', pfn);
  const cls = zs.cls;
  let classLocked = false;
  try {
    yield* cls.lock.lock();
    classLocked = true;
  } finally {
    // A plain call that may not wait for the class lock gives the pool lock back.
    if (!classLocked) pool.lock.readUnlock();
  }
  if (sched.preemptible) yield pool.lock.points.readUnlock;
  pool.lock.readUnlock();
  const loaded = zs.fullness;
  let fg = freeObject(pool, zs, pfn, idx, slot, handle);
  if (fg !== loaded && modelsIsolationWord(pool))
    fg = yield* storeFullnessWord(pool, zs, loaded, fg);
  // v4.8 leaves an emptied zspage with an isolated sub-page for the last putback.
  if (fg === 0 && !(pool.rules.deferFreeWhileIsolated && zs.isolated > 0))
    yield* freeZspage(pool, cls, zs);
  if (sched.preemptible) yield cls.lock.points.unlock;
  cls.lock.unlock();
}
