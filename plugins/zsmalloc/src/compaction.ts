/**
 * zs_compact(): zsmalloc's own compaction (spec §7.6; zsmalloc-by-profile §5). It reduces
 * internal fragmentation by moving objects from the emptiest zspages of a class into the
 * fullest ones and freeing the zspages it empties; objects change zspage and index.
 * @module
 */

import { cpuRelax, type KernelGen, PAGE_SHIFT } from '@mops/core';
import {
  ZS_HANDLE_SIZE,
  ZS_INUSE_RATIO_10,
  ZS_INUSE_RATIO_99,
  ZS_INUSE_RATIO_100,
} from './classes.js';
import {
  copyObjectBytes,
  HANDLE_SLOTS,
  objAddr,
  objFree,
  objMalloc,
  readHeader,
} from './objects.js';
import { trypinTag, unpinTag } from './pin.js';
import type { ZsPool } from './pool.js';
import { POINTS, putbackZspage, removeZspage, type SizeClass, type Zspage } from './zspage.js';
import { freeZspage } from './zspage_alloc.js';

/**
 * zs_can_compact(): pages a class could free, from its wasted objects.
 * @see mm/zsmalloc.c zs_can_compact()
 */
export function zsCanCompact(cls: SizeClass): number {
  const wasted = cls.objAllocated - cls.objUsed;
  if (wasted <= 0) return 0;
  return Math.floor(wasted / cls.objsPerZspage) * cls.pagesPerZspage;
}

function isolateZspage(cls: SizeClass, from: number, to: number): Zspage | null {
  const step = from <= to ? 1 : -1;
  for (let fg = from; fg !== to + step; fg += step) {
    const zs = cls.heads[fg];
    if (zs !== null) {
      removeZspage(cls, zs);
      zs.compacting = true;
      return zs;
    }
  }
  return null;
}

function putback(cls: SizeClass, zs: Zspage): number {
  zs.compacting = false;
  return putbackZspage(cls, zs);
}

/**
 * migrate_zspage(): move allocated objects from `src` into `dst` until `dst` is full or
 * `src` is empty; each handle is pointed at the object's new place. v4.8 trypins each
 * object's handle and leaves behind an object whose pin another holds (a mapping or a
 * zs_free under way), holding the pins it takes while it moves the object. Returns the
 * objects left behind.
 * @see mm/zsmalloc.c migrate_zspage(), find_alloced_obj() (4.8)
 */
function* migrateZspage(pool: ZsPool, src: Zspage, dst: Zspage): KernelGen<number> {
  const cls = src.cls;
  const b = pool.bytes;
  const sched = pool.k.sched;
  const pins = pool.rules.pinsHandles;
  const payload = cls.size - ZS_HANDLE_SIZE;
  let leftBehind = 0;
  for (let idx = 0; idx < cls.objsPerZspage; idx++) {
    const zoff = idx * cls.size;
    const handle = readHeader(b, objAddr(src, zoff));
    if (handle === 0) continue;
    let slot = -1;
    if (pins) {
      slot = handle % HANDLE_SLOTS;
      if (!trypinTag(pool, slot)) {
        leftBehind++;
        continue;
      }
    }
    if (sched.preemptible) yield POINTS.copy;
    const newIdx = dst.freeobj;
    objMalloc(b, pool.handles, dst, handle);
    copyObjectBytes(
      b,
      dst,
      newIdx * cls.size + ZS_HANDLE_SIZE,
      src,
      zoff + ZS_HANDLE_SIZE,
      payload,
    );
    objFree(b, src, src.pages[zoff >>> PAGE_SHIFT], idx);
    if (slot >= 0) unpinTag(pool, slot);
    if (dst.inuse === cls.objsPerZspage || src.inuse === 0) return leftBehind;
  }
  return leftBehind;
}

/**
 * __zs_compact(): compact one class under pool->lock (write) and class->lock.
 * @see mm/zsmalloc.c __zs_compact()
 */
function* compactClass(pool: ZsPool, cls: SizeClass): KernelGen<number> {
  const sched = pool.k.sched;
  let src: Zspage | null = null;
  let dst: Zspage | null = null;
  let freed = 0;
  yield* pool.lock.writeLock();
  yield* cls.lock.lock();
  while (zsCanCompact(cls) > 0) {
    if (dst === null) {
      dst = isolateZspage(cls, ZS_INUSE_RATIO_99, ZS_INUSE_RATIO_10);
      if (dst === null) break;
    }
    src = isolateZspage(cls, ZS_INUSE_RATIO_10, ZS_INUSE_RATIO_99);
    if (src === null) break;
    if (sched.preemptible) yield POINTS.writeTrylock;
    if (!src.lock.writeTrylock()) break;
    const inuse = src.inuse;
    // v4.8: a round that moved nothing because every object left in the source has its pin
    // held (a mapping or a zs_free under way) is stuck. The lists here are the newest
    // kernel's (spec §0.2: ratio groups, a zspage put back at the head of its group), so
    // the next round takes this source again: it goes back at the head of the group it
    // came from, the lowest partly used one, and the destination, put back too, to a group
    // no lower than that. 4.8's __zs_compact() goes round the same way, with
    // cond_resched() between rounds and no cpu_relax(), for as long as zs_can_compact()
    // stays positive and the source it puts back is what isolate_zspage() takes next: the
    // first entry of ZS_ALMOST_EMPTY (of ZS_ALMOST_FULL when ZS_ALMOST_EMPTY is empty),
    // which insert_zspage() makes it unless it has fewer objects in use than that list's
    // head (then it goes second, and 4.8 drains the head first). That busy loop waits for
    // a holder to unpin, or for another CPU to change the class; here each round of it
    // drops the locks and yields cpu_relax, which marks it for the scheduler.
    const stuck = (yield* migrateZspage(pool, src, dst)) > 0 && src.inuse === inuse;
    const pfn = src.pages[0];
    src.lock.writeUnlock();
    if (putback(cls, src) === 0) {
      yield* freeZspage(pool, cls, src);
      freed += cls.pagesPerZspage;
      // v4.8 counts each freed source at once, under the class lock (5.12 on: once, at the
      // end of the call).
      if (pool.rules.compactReturnsTotal) pool.pagesCompacted += cls.pagesPerZspage;
    }
    src = null;
    if (dst.group() === ZS_INUSE_RATIO_100 || stuck || sched.hasWaiters(pool.lock.key)) {
      putback(cls, dst);
      dst = null;
      if (sched.preemptible) yield cls.lock.points.unlock;
      cls.lock.unlock();
      if (sched.preemptible) yield pool.lock.points.writeUnlock;
      pool.lock.writeUnlock();
      if (stuck) yield* cpuRelax(pfn, 'zs_compact: trypin_tag failed for every object left');
      yield* pool.lock.writeLock();
      yield* cls.lock.lock();
    }
  }
  if (src !== null) putback(cls, src);
  if (dst !== null) putback(cls, dst);
  if (sched.preemptible) yield cls.lock.points.unlock;
  cls.lock.unlock();
  if (sched.preemptible) yield pool.lock.points.writeUnlock;
  pool.lock.writeUnlock();
  return freed;
}

/**
 * zs_compact(pool) for a task: every distinct class from the largest down. In v6.17 a
 * second concurrent call returns 0 at once; earlier, concurrent calls all run, meeting on
 * the pool and class locks. Adds the pages this call freed (counting a source whose free
 * was deferred) to pages_compacted and returns them; v4.8 adds each source's pages as it
 * frees it and returns the pages_compacted total.
 * @see mm/zsmalloc.c zs_compact()
 */
export function* zsCompactTask(pool: ZsPool): KernelGen<number> {
  const single = pool.rules.singleCompactor;
  if (single && pool.compactionInProgress) return 0;
  if (single) pool.compactionInProgress = true;
  let freed = 0;
  try {
    for (let i = pool.classes.length - 1; i >= 0; i--)
      freed += yield* compactClass(pool, pool.classes[i]);
  } finally {
    if (single) pool.compactionInProgress = false;
  }
  if (pool.rules.compactReturnsTotal) return pool.pagesCompacted;
  pool.pagesCompacted += freed;
  return freed;
}
