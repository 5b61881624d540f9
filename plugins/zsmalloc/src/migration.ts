/**
 * zsmalloc's movable_operations (spec §7.3-§7.5, §4.1, §4.3; zsmalloc-by-profile §4):
 * zs_page_isolate, zs_page_migrate and zs_page_putback, with what each profile lets the VM
 * observe (see {@link ZsRules}).
 * @module
 */

import {
  bug,
  defineMovableOps,
  Errno,
  getPage,
  type KernelGen,
  type MaybeGen,
  MIGRATE_MODE,
  MIGRATE_PAGE_ALONE,
  type MigratePageAlone,
  type MovableOperations,
  PAGE_SIZE,
  PG,
  PGTY,
  putPage,
  ZS,
} from '@mops/core';
import { driveToEnd } from './drive.js';
import {
  checkUncount,
  decIsolationWord,
  modelsIsolationWord,
  racyIsolationWord,
  updateIsolationWord,
} from './isolation_word.js';
import { HANDLE_SLOTS, OBJ_ALLOCATED_TAG, readHeader } from './objects.js';
import { isPinned } from './pin.js';
import type { ZsPool } from './pool.js';
import { type ZsRegistry, zspageOfPage } from './registry.js';
import { POINTS, putbackZspage, removeZspage, type Zspage } from './zspage.js';
import { kickDeferredFree, resetPage } from './zspage_alloc.js';

/**
 * zs_page_isolate(page, mode). v4.8: refuses a zspage with no object in use or one that
 * zs_compact holds, and takes the zspage off its fullness list on its first isolated
 * sub-page; v6.0/v6.3: always succeeds, counting under the zspage lock; v6.17: refuses
 * only a page whose zspage was destroyed.
 * @see mm/zsmalloc.c zs_page_isolate()
 */
export function* zsPageIsolate(reg: ZsRegistry, page: number): KernelGen<boolean> {
  reg.calls.isolate++;
  const zs = zspageOfPage(reg, page);
  if (!zs) {
    if (reg.rules.zspageNullChecks) return !!reg.mistakes.noZspageNullCheck;
    bug(reg.machine.mem, 'zs_page_isolate: movable page without zspage', page);
  }
  const pool = zs.pool as ZsPool;
  const rules = pool.rules;
  if (rules.isolateRefuses === 'destroyed') return true;
  const sched = pool.k.sched;
  if (rules.isolateTakesOffList) {
    const cls = zs.cls;
    if (!cls.lock.lockAlone()) yield* cls.lock.lock();
    const ok = zs.inuse !== 0 && !(zs.listed < 0 && zs.isolated === 0);
    if (ok) {
      if (zs.isolated === 0 && zs.listed >= 0) removeZspage(cls, zs);
      zs.isolated++;
    }
    if (sched.preemptible) yield cls.lock.points.unlock;
    cls.lock.unlock();
    return ok;
  }
  if (modelsIsolationWord(pool)) {
    yield* updateIsolationWord(pool, zs, page, 1);
    return true;
  }
  // Alone, the spin ends in the trylock it would take: take it as a plain call.
  if (sched.preemptible || !zs.lock.writeTrylock()) yield* zs.lock.writeLockSpin();
  zs.isolated++;
  if (sched.preemptible) yield POINTS.writeUnlock;
  zs.lock.writeUnlock();
  return true;
}

/**
 * zs_page_putback(page). v4.8: uncount, and when the last isolated sub-page returns put
 * the zspage back on its list, scheduling the deferred free if it is empty; v6.0/v6.3:
 * uncount; v6.17: nothing.
 * @see mm/zsmalloc.c zs_page_putback()
 */
export function* zsPagePutback(reg: ZsRegistry, page: number): KernelGen {
  reg.calls.putback++;
  const zs = zspageOfPage(reg, page);
  if (!zs) {
    // v4.8–v6.3 dereference get_zspage(page); only v6.17 checks for a destroyed zspage.
    if (reg.rules.zspageNullChecks) return;
    bug(
      reg.machine.mem,
      'BUG: kernel NULL pointer dereference (zs_page_putback: get_zspage() of a released page)',
      page,
    );
  }
  const pool = zs.pool as ZsPool;
  const rules = pool.rules;
  const sched = pool.k.sched;
  if (rules.putback === 'none') return;
  if (rules.putback === 'relist') {
    const cls = zs.cls;
    yield* cls.lock.lock();
    if (--zs.isolated === 0 && zs.listed < 0) {
      if (putbackZspage(cls, zs) === 0) kickDeferredFree(pool);
    }
    if (sched.preemptible) yield cls.lock.points.unlock;
    cls.lock.unlock();
    return;
  }
  if (modelsIsolationWord(pool)) return yield* updateIsolationWord(pool, zs, page, -1);
  yield* zs.lock.writeLockSpin();
  checkUncount(pool, zs.isolated, page);
  zs.isolated--;
  if (sched.preemptible) yield POINTS.writeUnlock;
  zs.lock.writeUnlock();
}

/**
 * zs_page_migrate(dst, src, mode): under pool->lock (write), class->lock and the zspage
 * write lock, copy the page, point the handles of the allocated objects that start in it
 * at `dst`, and put `dst` in `src`'s place in the chain; then take zsmalloc's reference
 * on `dst` and drop the one on `src`. Per profile: v4.8 waits for the accessors, then
 * fails with -EBUSY for a zspage with no object in use and -EAGAIN when a mapper or freer
 * has pinned the handle of an object that starts in the page and waits for a lock the
 * migration holds; v6.0/v6.3 wait for the accessors; v6.17 -EINVAL while an object is
 * being accessed and a fake success (0, nothing done) when the zspage was destroyed.
 * v6.0/v6.3 refuse MIGRATE_SYNC_NO_COPY with -EINVAL first: the copy must happen under
 * the zspage's locks.
 * @param mode the migrate mode (default MIGRATE_SYNC)
 * @see mm/zsmalloc.c zs_page_migrate()
 */
export function* zsPageMigrate(
  reg: ZsRegistry,
  dst: number,
  src: number,
  mode: number = MIGRATE_MODE.SYNC,
): KernelGen<number> {
  reg.calls.migrate++;
  if (mode === MIGRATE_MODE.SYNC_NO_COPY) return Errno.EINVAL;
  const zs = zspageOfPage(reg, src);
  if (!zs) return noZspage(reg, src);
  // The page is locked, so the zspage cannot be destroyed under us.
  const pool = zs.pool as ZsPool;
  const rules = pool.rules;
  const sched = pool.k.sched;
  const cls = zs.cls;
  yield* pool.lock.writeLock();
  yield* cls.lock.lock();
  const unlockPoolClass = function* (): KernelGen {
    if (sched.preemptible) yield cls.lock.points.unlock;
    cls.lock.unlock();
    if (sched.preemptible) yield pool.lock.points.writeUnlock;
    pool.lock.writeUnlock();
  };
  if (rules.migrateBusy === 'EINVAL') {
    if (sched.preemptible) yield POINTS.writeTrylock;
    if (!zs.lock.writeTrylock()) {
      yield* unlockPoolClass();
      return busyRc(pool);
    }
  } else {
    // Spin while any object of the zspage is mapped (its mapper holds the read lock).
    yield* zs.lock.writeLockSpin();
    // v4.8: trypin_tag() of each object that starts in the page. One fails only for a
    // mapper or freer that pinned the handle and now waits for a lock this migration holds
    // (zsmalloc-by-profile §3.2): give up with -EAGAIN.
    if (pinnedObjectIn(pool, zs, src)) {
      if (sched.preemptible) yield POINTS.writeUnlock;
      zs.lock.writeUnlock();
      yield* unlockPoolClass();
      return busyRc(pool);
    }
  }
  if (rules.migrateEmptyEbusy && zs.inuse === 0) {
    zs.lock.writeUnlock();
    yield* unlockPoolClass();
    return Errno.EBUSY;
  }
  moveSubPage(pool, zs, dst, src);
  // Until swapReferences, NR_ZSPAGES still counts src's zone.
  reg.zoneMoves.set(dst, src);
  if (sched.preemptible) yield pool.lock.points.writeUnlock;
  pool.lock.writeUnlock();
  if (sched.preemptible) yield cls.lock.points.unlock;
  cls.lock.unlock();
  // 6.0–6.4 uncounted the isolation here, outside the class lock (ZsMistakes.sharedIsolationWord).
  if (racyIsolationWord(pool)) yield* decIsolationWord(pool, zs, dst);
  if (sched.preemptible) yield POINTS.writeUnlock;
  zs.lock.writeUnlock();
  reg.zoneMoves.delete(dst);
  swapReferences(pool, dst, src);
  return 0;
}

/**
 * {@link zsPageMigrate} for a task running alone, as plain calls: nothing can interleave,
 * so the locks are free and taken without scheduling points (with the same lockdep
 * checks). When one is not free (the task itself holds it), or other tasks may run, it
 * hands back the generator instead.
 */
function zsPageMigrateAlone(
  reg: ZsRegistry,
  dst: number,
  src: number,
  mode: number,
): MaybeGen<number> {
  if (mode === MIGRATE_MODE.SYNC_NO_COPY) return zsPageMigrate(reg, dst, src, mode);
  const zs = zspageOfPage(reg, src);
  if (!zs) return zsPageMigrate(reg, dst, src);
  const pool = zs.pool as ZsPool;
  if (!pool.lock.writeLockAlone()) return zsPageMigrate(reg, dst, src);
  const cls = zs.cls;
  if (!cls.lock.lockAlone()) {
    pool.lock.writeUnlock();
    return zsPageMigrate(reg, dst, src);
  }
  const rules = pool.rules;
  // Alone, the zspage lock is free unless this task or code outside any task (a mapping
  // left open) holds it: then the spin is the generator's to make (v6.17 trylocks).
  const locked = zs.lock.writeTrylock();
  const pinned = locked && pinnedObjectIn(pool, zs, src);
  if (!locked || pinned) {
    if (pinned) zs.lock.writeUnlock();
    cls.lock.unlock();
    pool.lock.writeUnlock();
    if (!locked && rules.migrateBusy !== 'EINVAL') return zsPageMigrate(reg, dst, src);
    reg.calls.migrate++;
    return busyRc(pool);
  }
  reg.calls.migrate++;
  if (rules.migrateEmptyEbusy && zs.inuse === 0) {
    zs.lock.writeUnlock();
    cls.lock.unlock();
    pool.lock.writeUnlock();
    return Errno.EBUSY;
  }
  moveSubPage(pool, zs, dst, src);
  pool.lock.writeUnlock();
  cls.lock.unlock();
  if (racyIsolationWord(pool))
    driveToEnd(decIsolationWord(pool, zs, dst), 'zs_page_migrate', pool.mem);
  zs.lock.writeUnlock();
  swapReferences(pool, dst, src);
  return 0;
}

/** zs_page_migrate() of a page without a zspage: v6.17's fake success, else a bug. */
function noZspage(reg: ZsRegistry, src: number): number {
  if (reg.rules.zspageNullChecks && !reg.mistakes.noZspageNullCheck) return 0;
  bug(
    reg.machine.mem,
    reg.mistakes.noZspageNullCheck
      ? 'BUG: kernel NULL pointer dereference (zs_page_migrate: zspage->pool of a destroyed zspage)'
      : 'zs_page_migrate: movable page without zspage',
    src,
  );
}

/**
 * Visits the handle of each allocated object that starts in `src` (the huge class: the one
 * object of the page), stopping at the first visit that returns true; whether one did.
 */
function someObjectStartingIn(
  pool: ZsPool,
  zs: Zspage,
  src: number,
  dst: number,
  visit: (pool: ZsPool, handle: number, src: number, dst: number) => boolean,
): boolean {
  const b = pool.bytes;
  if (zs.cls.huge) {
    const tagged = b.hugeHandle[src];
    return tagged % 2 === OBJ_ALLOCATED_TAG && visit(pool, (tagged - 1) / 2, src, dst);
  }
  for (let off = pool.firstObjOffsetOf(src); off < PAGE_SIZE; off += zs.cls.size) {
    const handle = readHeader(b, src * PAGE_SIZE + off);
    if (handle !== 0 && visit(pool, handle, src, dst)) return true;
  }
  return false;
}

/**
 * v4.8: whether an allocated object that starts in `src` has its handle pinned (by a
 * mapping, or a zs_free, under way), so that trypin_tag() of it fails. The pins that 4.8
 * then holds to the end of the migration are not taken: nothing runs between this test and
 * the move they protect. Never in other profiles, which do not pin.
 */
function pinnedObjectIn(pool: ZsPool, zs: Zspage, src: number): boolean {
  return pool.rules.pinsHandles && someObjectStartingIn(pool, zs, src, -1, handlePinned);
}

function handlePinned(pool: ZsPool, handle: number): boolean {
  return isPinned(pool, handle % HANDLE_SLOTS);
}

/** The answer when an object of the zspage is being accessed: -EAGAIN (v4.8) or -EINVAL. */
function busyRc(pool: ZsPool): number {
  return pool.rules.migrateBusy === 'EAGAIN' ? Errno.EAGAIN : Errno.EINVAL;
}

/**
 * The committed part of zs_page_migrate(), all three locks held: `dst` becomes the
 * zsmalloc page, with `src`'s bytes, its objects' handles and its place in the chain.
 */
function moveSubPage(pool: ZsPool, zs: Zspage, dst: number, src: number): void {
  const p = pool.mem.pages;
  const b = pool.bytes;
  const rules = pool.rules;
  const cls = zs.cls;
  if (rules.pageType) p.type[dst] = PGTY.zsmalloc << 24;
  b.u8.copyWithin(dst * PAGE_SIZE, src * PAGE_SIZE, (src + 1) * PAGE_SIZE);
  someObjectStartingIn(pool, zs, src, dst, relocate);
  replaceSubPage(pool, zs, dst, src);
  if (rules.countsIsolated && !racyIsolationWord(pool)) {
    zs.isolated--;
    if (rules.isolateTakesOffList && zs.isolated === 0 && zs.listed < 0) putbackZspage(cls, zs);
  }
}

/**
 * After the locks: zsmalloc's reference moves from `src` to `dst`, and (5.5 on) the
 * NR_ZSPAGES count with it.
 */
function swapReferences(pool: ZsPool, dst: number, src: number): void {
  const mem = pool.mem;
  getPage(mem, dst);
  const from = mem.zoneOf(src);
  const to = mem.zoneOf(dst);
  if (pool.rules.zoneStatFollows) {
    from.stat[ZS.nr_zspages]--;
    to.stat[ZS.nr_zspages]++;
  } else if (from !== to) {
    const drift = pool.registry.zoneDrift;
    drift.set(from.idx, (drift.get(from.idx) ?? 0) + 1);
    drift.set(to.idx, (drift.get(to.idx) ?? 0) - 1);
  }
  resetPage(pool, src);
  putPage(mem, src);
}

/**
 * record_obj(handle, location(dst, same index)) for an object that starts in `src` (a visit
 * of {@link someObjectStartingIn} that never stops it).
 */
function relocate(pool: ZsPool, handle: number, src: number, dst: number): false {
  const slot = handle % HANDLE_SLOTS;
  if (pool.handles.pfn[slot] !== src)
    bug(pool.mem, `zs_page_migrate: handle ${handle} does not locate its object in this page`, src);
  pool.handles.pfn[slot] = dst;
  return false;
}

/**
 * replace_sub_page(): `dst` takes `src`'s place in the chain, with its first_obj_offset,
 * PG_private if first, the huge handle, and the movable marker.
 * @see mm/zsmalloc.c replace_sub_page()
 */
function replaceSubPage(pool: ZsPool, zs: Zspage, dst: number, src: number): void {
  const mem = pool.mem;
  const p = mem.pages;
  const k = zs.pages.indexOf(src);
  if (k < 0) bug(mem, 'replace_sub_page: page is not in its zspage', src);
  zs.pages[k] = dst;
  p.priv[dst] = zs.id;
  p.setOwner(dst, pool.registry.owner);
  if (k === 0) p.flags[dst] |= 1 << PG.private;
  pool.setFirstObjOffset(dst, pool.firstObjOffsetOf(src));
  pool.bytes.hugeHandle[dst] = pool.bytes.hugeHandle[src];
  pool.registry.publish(dst);
}

/** The movable_operations of zsmalloc for the pools of one machine. */
export function makeZsMovableOps(reg: ZsRegistry): MovableOperations {
  // Bound generator functions: each call is the callback's own generator, with no wrapper
  // generator around it.
  const ops: MovableOperations = {
    isolatePage: zsPageIsolate.bind(undefined, reg) as (page: number) => KernelGen<boolean>,
    migratePage: zsPageMigrate.bind(undefined, reg) as (
      dst: number,
      src: number,
      mode: number,
    ) => KernelGen<number>,
    putbackPage: zsPagePutback.bind(undefined, reg) as (page: number) => KernelGen,
  };
  // A task running alone migrates with plain calls (see zsPageMigrateAlone).
  (ops as { [MIGRATE_PAGE_ALONE]?: MigratePageAlone })[MIGRATE_PAGE_ALONE] = (dst, src, mode) =>
    zsPageMigrateAlone(reg, dst, src, mode);
  return defineMovableOps('zsmalloc', ops);
}
