/**
 * Zspage lifetime (spec §7.1, §7.3): alloc_zspage and SetZsPageMovable when a class needs
 * room, free_zspage / __free_zspage when its last object goes, and the deferred-free work
 * (async_free_zspage, lock_zspage) for a zspage whose pages the VM had locked.
 * @module
 */

import {
  __ClearPageMovable,
  allocPages,
  getPage,
  type KernelGen,
  PageLocked,
  PageMovable,
  PG,
  PGTY,
  pageWaitKey,
  putPage,
  trylockPage,
  unlockPage,
  ZS,
} from '@mops/core';
import { firstObjOffset, initZspage } from './objects.js';
import type { ZsPool } from './pool.js';
import { insertZspage, POINTS, removeZspage, type SizeClass, Zspage } from './zspage.js';

/**
 * alloc_zspage(): order-0 pages chained in order, the first marked PG_private, each
 * pointing at the zspage through `private`, with first_obj_offset set and the objects
 * linked into the free list. Undefined when a page cannot be allocated. The zspage stays
 * private to the caller (under construction, see `ZsRegistry.building`) until
 * {@link insertNewZspage}.
 * @see mm/zsmalloc.c alloc_zspage()
 */
export function allocZspage(pool: ZsPool, cls: SizeClass, gfp: number): Zspage | undefined {
  const mem = pool.mem;
  const p = mem.pages;
  const reg = pool.registry;
  const pages: number[] = [];
  for (let i = 0; i < cls.pagesPerZspage; i++) {
    const pfn = allocPages(mem, gfp, 0, { owner: reg.owner });
    if (pfn < 0) {
      for (const q of pages) {
        mem.zoneOf(q).stat[ZS.nr_zspages]--;
        if (pool.rules.pageType) p.type[q] = -1;
        putPage(mem, q);
      }
      return undefined;
    }
    // v6.17 allocates zsmalloc pages with their page type already set.
    if (pool.rules.pageType) p.type[pfn] = PGTY.zsmalloc << 24;
    mem.zoneOf(pfn).stat[ZS.nr_zspages]++;
    pages.push(pfn);
  }
  const id = reg.newId();
  const zs = new Zspage(id, cls, pool, pages, pool.k, pool.rules.readersAtomic);
  reg.building.add(zs);
  for (let k = 0; k < pages.length; k++) {
    const pfn = pages[k];
    p.priv[pfn] = id;
    if (k === 0) p.flags[pfn] |= 1 << PG.private;
    pool.setFirstObjOffset(pfn, firstObjOffset(k, cls.size));
  }
  initZspage(pool.bytes, cls, zs);
  return zs;
}

/**
 * The part of zs_malloc() that makes a new zspage its class's own, with the class lock
 * held: insert_zspage() into the group its in-use count gives, and count it in
 * `pool->pages_allocated` and ZS_OBJS_ALLOCATED. Until then nobody but the allocating task
 * can reach it: it is on no list and its pages are not movable.
 * @see mm/zsmalloc.c zs_malloc()
 */
export function insertNewZspage(pool: ZsPool, cls: SizeClass, zs: Zspage): void {
  const reg = pool.registry;
  reg.building.delete(zs);
  reg.zspages[zs.id] = zs;
  insertZspage(cls, zs, zs.group());
  pool.pagesAllocated += cls.pagesPerZspage;
  if (pool.pagesAllocated > pool.maxPagesAllocated) pool.maxPagesAllocated = pool.pagesAllocated;
  cls.objAllocated += cls.objsPerZspage;
}

/**
 * SetZsPageMovable(): publish every sub-page as movable; each trylock must succeed, since
 * nobody can lock a page that is not movable yet.
 * @see mm/zsmalloc.c SetZsPageMovable()
 */
export function* setZsPageMovable(pool: ZsPool, zs: Zspage): KernelGen {
  const mem = pool.mem;
  for (const pfn of zs.pages) {
    if (pool.k.sched.preemptible) yield { op: 'trylock_page', pfn };
    if (!trylockPage(mem, pfn)) {
      // WARN_ON, not WARN_ON_ONCE: every failure warns.
      mem.warn('WARN_ON', 'WARNING: SetZsPageMovable: WARN_ON(!trylock_page(page))', pfn);
      continue;
    }
    pool.registry.publish(pfn);
    unlockPage(pool.k, pfn);
  }
  zs.movable = true;
}

/**
 * free_zspage(): with the class lock held, trylock every sub-page; if one is locked (the
 * VM may be migrating it), leave the zspage on the empty list for the deferred-free work.
 * @see mm/zsmalloc.c free_zspage()
 */
export function* freeZspage(pool: ZsPool, cls: SizeClass, zs: Zspage): KernelGen<boolean> {
  const mem = pool.mem;
  const n = zs.pages.length;
  for (let i = 0; i < n; i++) {
    const pfn = zs.pages[i];
    if (pool.k.sched.preemptible) yield { op: 'trylock_page', pfn };
    if (!trylockPage(mem, pfn)) {
      for (let j = 0; j < i; j++) unlockPage(pool.k, zs.pages[j]);
      kickDeferredFree(pool);
      pool.deferredFrees++;
      return false;
    }
  }
  if (zs.listed >= 0) removeZspage(cls, zs);
  __freeZspage(pool, cls, zs);
  return true;
}

/**
 * __free_zspage(): every sub-page locked by the caller is reset (PG_private, `private`,
 * and before v6.17 __ClearPageMovable, so the VM sees the release), unlocked, uncounted
 * from NR_ZSPAGES and put. An isolated sub-page survives on the VM's reference.
 * @see mm/zsmalloc.c __free_zspage()
 */
export function __freeZspage(pool: ZsPool, cls: SizeClass, zs: Zspage): void {
  const mem = pool.mem;
  const clear = !pool.mistakes.freeWithoutClearMovable;
  for (const pfn of zs.pages) {
    resetPage(pool, pfn, clear);
    unlockPage(pool.k, pfn);
    mem.zoneOf(pfn).stat[ZS.nr_zspages]--;
    putPage(mem, pfn);
  }
  zs.destroyed = true;
  pool.registry.zspages[zs.id] = undefined;
  pool.registry.freeIds.push(zs.id);
  cls.objAllocated -= cls.objsPerZspage;
  pool.pagesAllocated -= cls.pagesPerZspage;
}

/**
 * reset_page() / reset_zpdesc(): the sub-page no longer belongs to a zspage. The page
 * must be locked. v6.17 keeps the page type and PG_movable_ops until the buddy free.
 * `clearMovable` false leaves out the __ClearPageMovable (a mistake, see
 * `ZsMistakes.freeWithoutClearMovable`).
 * @see mm/zsmalloc.c reset_zpdesc()
 */
export function resetPage(pool: ZsPool, pfn: number, clearMovable = true): void {
  const mem = pool.mem;
  const p = mem.pages;
  p.flags[pfn] &= ~(1 << PG.private);
  p.priv[pfn] = 0;
  pool.bytes.hugeHandle[pfn] = 0;
  if (clearMovable && pool.rules.clearMovableOnFree && PageMovable(mem, pfn))
    __ClearPageMovable(mem, pfn);
  if (!pool.rules.pageType) pool.registry.firstObj[pfn] = 0;
}

/**
 * kick_deferred_free(): queue the deferred-free work on the machine's workqueue (a worker
 * task that runs {@link asyncFreeZspage}). Queued once: it stays pending until it starts.
 * @see mm/zsmalloc.c kick_deferred_free()
 */
export function kickDeferredFree(pool: ZsPool): void {
  if (pool.freeWorkPending) return;
  pool.freeWorkPending = true;
  pool.k.sched.queueWork('kworker/zs_free', () => asyncFreeZspage(pool), 'async_free_zspage');
}

/**
 * async_free_zspage(): the deferred-free work. Takes every class's empty list, then frees
 * each zspage once it holds all its page locks. Each class's list is spliced at the head
 * of the work list (list_splice_init), so the largest class is freed first, each class's
 * zspages in their list order.
 * @see mm/zsmalloc.c async_free_zspage()
 */
export function* asyncFreeZspage(pool: ZsPool): KernelGen<number> {
  pool.freeWorkPending = false;
  const sched = pool.k.sched;
  let work: Zspage[] = [];
  for (const cls of pool.classes) {
    if (cls.heads[0] === null) continue;
    yield* cls.lock.lock();
    const spliced: Zspage[] = [];
    for (let zs = cls.heads[0]; zs !== null; zs = cls.heads[0]) {
      removeZspage(cls, zs);
      zs.freeing = true;
      spliced.push(zs);
    }
    work = spliced.concat(work);
    if (sched.preemptible) yield cls.lock.points.unlock;
    cls.lock.unlock();
  }
  for (const zs of work) {
    yield* lockZspage(pool, zs);
    const cls = zs.cls;
    yield* cls.lock.lock();
    __freeZspage(pool, cls, zs);
    if (sched.preemptible) yield cls.lock.points.unlock;
    cls.lock.unlock();
  }
  return work.length;
}

/**
 * lock_zspage(): lock every sub-page in chain order. A page is only trylocked under the
 * zspage read lock (migration may replace it meanwhile); when that fails, pin the page,
 * drop the zspage lock, wait for the page lock to be released, and retry.
 * @see mm/zsmalloc.c lock_zspage()
 */
export function* lockZspage(pool: ZsPool, zs: Zspage): KernelGen {
  const { mem, sched } = pool.k;
  let k = 0;
  yield* zs.lock.readLock();
  while (k < zs.pages.length) {
    const pfn = zs.pages[k];
    if (sched.preemptible) yield { op: 'trylock_page', pfn };
    if (trylockPage(mem, pfn)) {
      k++;
      continue;
    }
    getPage(mem, pfn);
    if (sched.preemptible) yield POINTS.readUnlock;
    zs.lock.readUnlock();
    while (PageLocked(mem, pfn)) {
      mem.pages.flags[pfn] |= 1 << PG.waiters;
      yield {
        op: 'block',
        key: pageWaitKey(pfn),
        what: `wait_on_page_locked pfn 0x${pfn.toString(16)}`,
        pfn,
      };
    }
    putPage(mem, pfn);
    yield* zs.lock.readLock();
  }
  if (sched.preemptible) yield POINTS.readUnlock;
  zs.lock.readUnlock();
}
