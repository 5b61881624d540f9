/**
 * migrate_pages() for movable_ops pages (mm/migrate.c; spec §3.3-§3.6): the entry point and
 * the v6.3+ batched unmap/move phases with their retry passes. The v4.8/v6.0 loop is in
 * `unmap_and_move.ts`.
 * @module
 */

import { folioPut } from '../buddy/free_page.js';
import { bug } from '../debug/dump_page.js';
import { MopsError, valueKind } from '../errors.js';
import type { ListId } from '../memory/list.js';
import { PG } from '../page/flags.js';
import { type Kctx, lockPage, trylockPage, unlockPage } from '../page/lock.js';
import type { KernelGen } from '../sched/types.js';
import { EV } from '../vmstat/vmstat.js';
import {
  callMigratePageAlone,
  callMigratePageGen,
  callMigratePageResume,
  MIGRATE_PENDING,
} from './callbacks.js';
import { ownerDroppedStillMovable } from './driver_faults.js';
import {
  type Ctx,
  checkList,
  EAGAIN,
  ENOMEM,
  mayNotSleep,
  migrateFolioDone,
  newTarget,
  releaseDst,
  UNMAP,
} from './migrate_ctx.js';
import type { DefinedOps } from './movable.js';
import { moveToNewFolioBegin, moveToNewFolioEnd } from './move.js';
import {
  MIGRATE_MODE,
  type MigrateResult,
  type NewFolio,
  NR_MAX_BATCHED_MIGRATION,
  NR_MAX_MIGRATE_ASYNC_RETRY,
  NR_MAX_MIGRATE_PAGES_RETRY,
  NR_MAX_MIGRATE_SYNC_RETRY,
  type PutNewFolio,
} from './types.js';
import { migratePagesLegacy } from './unmap_and_move.js';

// ---------------------------------------------------------------------------------------
// v6.3+: migrate_pages_batch() and migrate_pages_sync()

interface Stats {
  nrSucceeded: number;
  nrFailedPages: number;
}

/** Returned by the fast paths when the step must sleep: the caller finishes it as a generator. */
const NEED_SLEEP = 2;
/** Returned by the move fast path when the driver's generator yielded a point. */
const NEED_GEN = 3;

/**
 * The "freed from under us" shortcut of migrate_folio_unmap(): if only the isolation
 * reference is left, drop it; free_pages_prepare() clears the isolated flag. True if taken.
 */
function freedUnderUs(c: Ctx, src: number): boolean {
  if (c.mem.pages.refcount[src] !== 1) return false;
  ownerDroppedStillMovable(c.mem, src, 'migrate_folio_unmap');
  dropFreed(c, src);
  return true;
}

function dropFreed(c: Ctx, src: number): void {
  const p = c.mem.pages;
  p.flags[src] &= ~((1 << PG.active) | (1 << PG.unevictable));
  p.lists.del(src);
  migrateFolioDone(c, src);
}

/** Whether a failed src trylock must give up rather than sleep (spec §2.2). */
function mustNotSleep(c: Ctx, src: number, mode: number): boolean {
  const uptodate = (c.mem.pages.flags[src] & (1 << PG.uptodate)) !== 0;
  return (
    mode === MIGRATE_MODE.ASYNC ||
    mayNotSleep(c) ||
    (c.mem.profile.syncLightNeedsUptodate && mode === MIGRATE_MODE.SYNC_LIGHT && !uptodate)
  );
}

/** The end of migrate_folio_unmap() with src locked: trylock dst and pair it. */
function unmapLockDst(c: Ctx, src: number, dst: number, dsts: ListId): number {
  if (!trylockPage(c.mem, dst)) return dstLockBusy(c, src, dst);
  c.mem.pages.lists.addTail(dsts, dst);
  return UNMAP;
}

function dstLockBusy(c: Ctx, src: number, dst: number): number {
  unlockPage(c.k, src);
  releaseDst(c, dst);
  return EAGAIN;
}

/** migrate_folio_unmap() for a movable page: returns UNMAP (both locked), 0, or an errno. */
function* migrateFolioUnmap(c: Ctx, src: number, mode: number, dsts: ListId): KernelGen<number> {
  const { k, mem } = c;
  const { sched } = k;
  const names = mem.profile.pointNames;
  if (sched.preemptible) yield { op: names.refCount, pfn: src };
  if (freedUnderUs(c, src)) return 0;
  const dst = newTarget(c, src);
  if (dst < 0) return ENOMEM;
  if (sched.preemptible) yield { op: names.trylock, pfn: src };
  if (!trylockPage(mem, src)) {
    if (mustNotSleep(c, src, mode)) {
      releaseDst(c, dst);
      return EAGAIN;
    }
    yield* lockPage(k, src, names.lock);
  }
  if (sched.preemptible) yield { op: names.trylock, pfn: dst };
  return unmapLockDst(c, src, dst, dsts);
}

/**
 * {@link migrateFolioUnmap} for a task running alone: no scheduling points. Returns
 * NEED_SLEEP (with the target in `c.pendingDst`) when it would sleep on the src lock.
 */
function migrateFolioUnmapFast(c: Ctx, src: number, mode: number, dsts: ListId): number {
  if (freedUnderUs(c, src)) return 0;
  const dst = newTarget(c, src);
  if (dst < 0) return ENOMEM;
  if (!trylockPage(c.mem, src)) return srcLockBusy(c, src, dst, mode);
  return unmapLockDst(c, src, dst, dsts);
}

/** The fast unmap step found src locked: give up, or hand over to sleep on the lock. */
function srcLockBusy(c: Ctx, src: number, dst: number, mode: number): number {
  if (mustNotSleep(c, src, mode)) {
    releaseDst(c, dst);
    return EAGAIN;
  }
  c.pendingDst = dst;
  return NEED_SLEEP;
}

/** The end of migrate_folio_move() once the driver (or the release check) answered. */
function moveFinish(
  c: Ctx,
  src: number,
  dst: number,
  rc: number,
  ret: ListId,
  prev: number,
): number {
  if (rc !== 0) return moveFailed(c, src, dst, rc, ret, prev);
  const { k, mem } = c;
  unlockPage(k, dst);
  folioPut(mem, dst);
  mem.pages.lists.del(src);
  unlockPage(k, src);
  migrateFolioDone(c, src);
  return 0;
}

/** {@link moveFinish} of a move that failed: retry later (-EAGAIN) or for good. */
function moveFailed(c: Ctx, src: number, dst: number, rc: number, ret: ListId, prev: number) {
  const { k, mem } = c;
  const lists = mem.pages.lists;
  if (rc === EAGAIN) {
    lists.insertAfterLink(prev, dst); // both stay locked, dst stays paired
    return rc;
  }
  unlockPage(k, src);
  lists.moveTail(ret, src);
  unlockPage(k, dst);
  releaseDst(c, dst);
  return rc;
}

/**
 * The start of migrate_folio_move(): dst leaves the pairing list (its old link is kept in
 * `c.pendingPrev`) and the release check runs. The driver's ops, or null (see
 * moveToNewFolioBegin).
 */
function moveBegin(c: Ctx, src: number, dst: number): DefinedOps | null {
  const mem = c.mem;
  const lists = mem.pages.lists;
  c.pendingPrev = lists.prevLink(dst);
  lists.del(dst);
  return moveToNewFolioBegin(mem, dst, src);
}

/** The rest of migrate_folio_move() after {@link moveBegin}: the driver call and the end. */
function* moveCall(
  c: Ctx,
  src: number,
  dst: number,
  d: DefinedOps | null,
  mode: number,
  ret: ListId,
  resume: boolean,
): KernelGen<number> {
  const { k, mem } = c;
  const prev = c.pendingPrev;
  let rc = 0;
  if (d !== null)
    rc = moveToNewFolioEnd(
      mem,
      src,
      resume
        ? yield* callMigratePageResume(mem, d, dst, src, c.pendingCall)
        : yield* callMigratePageGen(mem, d, dst, src, mode),
    );
  if (rc === 0 && k.sched.preemptible) yield { op: mem.profile.pointNames.unlock, pfn: dst };
  return moveFinish(c, src, dst, rc, ret, prev);
}

/**
 * migrate_folio_move() for a movable page; both pages locked. The driver may use dst->lru
 * (balloon links dst into its list): dst leaves the pairing list first and goes back in
 * place if the move is to be retried.
 */
function* migrateFolioMove(
  c: Ctx,
  src: number,
  dst: number,
  mode: number,
  ret: ListId,
): KernelGen<number> {
  return yield* moveCall(c, src, dst, moveBegin(c, src, dst), mode, ret, false);
}

/**
 * {@link migrateFolioMove} for a task running alone. Returns NEED_GEN (with the ops in
 * `c.pendingOps` and the call in `c.pendingCall`) when the driver's generator yielded a
 * point: the caller finishes the step with {@link moveCall}.
 */
function migrateFolioMoveFast(c: Ctx, src: number, dst: number, mode: number, ret: ListId): number {
  const d = moveBegin(c, src, dst);
  if (d === null) return moveFinish(c, src, dst, 0, ret, c.pendingPrev);
  const mem = c.mem;
  const rc = callMigratePageAlone(mem, d, dst, src, mode, c.pendingCall);
  if (rc === MIGRATE_PENDING) {
    c.pendingOps = d;
    return NEED_GEN;
  }
  return moveFinish(c, src, dst, moveToNewFolioEnd(mem, src, rc), ret, c.pendingPrev);
}

function* migratePagesBatch(
  c: Ctx,
  from: ListId,
  mode: number,
  ret: ListId,
  stats: Stats,
  nrPass: number,
): KernelGen<number> {
  const { mem } = c;
  const lists = mem.pages.lists;
  const unmap = lists.newList();
  const dsts = lists.newList();
  let nrFailed = 0;
  let retry = 1;
  let nrRetryPages = 0;
  let rcSaved = 0;
  let skipMove = false;
  phaseA: for (let pass = 0; pass < nrPass && retry; pass++) {
    retry = 0;
    nrRetryPages = 0;
    for (let src = lists.first(from); src !== -1; ) {
      const next = lists.nextOf(src);
      let rc = c.k.sched.preemptible
        ? yield* migrateFolioUnmap(c, src, mode, dsts)
        : migrateFolioUnmapFast(c, src, mode, dsts);
      if (rc === NEED_SLEEP) {
        yield* lockPage(c.k, src, mem.profile.pointNames.lock);
        rc = unmapLockDst(c, src, c.pendingDst, dsts);
      }
      if (rc === ENOMEM) {
        // Memory is low: stop, but still move what was already unmapped.
        nrFailed++;
        stats.nrFailedPages += 1 + (mem.profile.enomemCountsRetries ? nrRetryPages : 0);
        rcSaved = rc;
        if (lists.isEmpty(unmap)) skipMove = true;
        break phaseA;
      }
      if (rc === EAGAIN) {
        retry++;
        nrRetryPages++;
      } else if (rc === 0) stats.nrSucceeded++;
      else if (rc === UNMAP) lists.moveTail(unmap, src);
      else {
        nrFailed++;
        stats.nrFailedPages++;
        lists.moveTail(ret, src);
      }
      src = next;
    }
  }
  if (!rcSaved) {
    nrFailed += retry;
    stats.nrFailedPages += nrRetryPages;
  }
  if (!skipMove) {
    retry = 1;
    for (let pass = 0; pass < nrPass && retry; pass++) {
      retry = 0;
      nrRetryPages = 0;
      let dst = lists.first(dsts);
      for (let src = lists.first(unmap); src !== -1; ) {
        const next = lists.nextOf(src);
        const dstNext = lists.nextOf(dst);
        let rc = c.k.sched.preemptible
          ? yield* migrateFolioMove(c, src, dst, mode, ret)
          : migrateFolioMoveFast(c, src, dst, mode, ret);
        if (rc === NEED_GEN) rc = yield* moveCall(c, src, dst, c.pendingOps, mode, ret, true);
        if (rc === EAGAIN) {
          retry++;
          nrRetryPages++;
        } else if (rc === 0) stats.nrSucceeded++;
        else {
          nrFailed++;
          stats.nrFailedPages++;
        }
        src = next;
        dst = dstNext;
      }
    }
    nrFailed += retry;
    stats.nrFailedPages += nrRetryPages;
  }
  // migrate_folios_undo(): whatever is still unmapped goes back, unlocked, to `ret`.
  for (let src = lists.first(unmap); src !== -1; src = lists.first(unmap)) {
    const dst = lists.first(dsts);
    unlockPage(c.k, src);
    lists.moveTail(ret, src);
    lists.del(dst);
    unlockPage(c.k, dst);
    releaseDst(c, dst);
  }
  lists.freeList(unmap);
  lists.freeList(dsts);
  return rcSaved || nrFailed;
}

function* migratePagesSync(
  c: Ctx,
  from: ListId,
  mode: number,
  ret: ListId,
  stats: Stats,
): KernelGen<number> {
  const lists = c.mem.pages.lists;
  const failed = lists.newList();
  const astats: Stats = { nrSucceeded: 0, nrFailedPages: 0 };
  // First the whole batch in ASYNC mode, 3 passes; its failures are not counted yet.
  let rc = yield* migratePagesBatch(
    c,
    from,
    MIGRATE_MODE.ASYNC,
    failed,
    astats,
    NR_MAX_MIGRATE_ASYNC_RETRY,
  );
  stats.nrSucceeded += astats.nrSucceeded;
  if (rc < 0) {
    stats.nrFailedPages += astats.nrFailedPages;
    lists.spliceTail(failed, ret);
    lists.freeList(failed);
    return rc;
  }
  // Then every folio that did not migrate, one at a time, in the requested mode.
  lists.spliceTail(failed, from);
  let nrFailed = 0;
  const one = failed;
  while (!lists.isEmpty(from)) {
    lists.moveTail(one, lists.first(from));
    rc = yield* migratePagesBatch(c, one, mode, ret, stats, NR_MAX_MIGRATE_SYNC_RETRY);
    lists.spliceTail(one, ret);
    if (rc < 0) {
      lists.freeList(one);
      return rc;
    }
    nrFailed += rc;
  }
  lists.freeList(one);
  return nrFailed;
}

function* migratePagesBatched(c: Ctx, from: ListId, mode: number): KernelGen<MigrateResult> {
  const lists = c.mem.pages.lists;
  const ret = lists.newList();
  const batch = lists.newList();
  const stats: Stats = { nrSucceeded: 0, nrFailedPages: 0 };
  let rcGather = 0;
  while (!lists.isEmpty(from)) {
    lists.moveFirstN(from, batch, NR_MAX_BATCHED_MIGRATION);
    const rc =
      mode === MIGRATE_MODE.ASYNC
        ? yield* migratePagesBatch(c, batch, mode, ret, stats, NR_MAX_MIGRATE_PAGES_RETRY)
        : yield* migratePagesSync(c, batch, mode, ret, stats);
    lists.spliceTail(batch, ret);
    if (rc < 0) {
      rcGather = rc;
      // The pages not yet tried stay on `from`, ahead of the returned ones.
      break;
    }
    rcGather += rc;
  }
  // Permanent failures go back on the caller's list, for putback_movable_pages.
  lists.spliceHead(ret, from);
  lists.freeList(ret);
  lists.freeList(batch);
  if (lists.isEmpty(from)) rcGather = 0;
  return { rc: rcGather, nrSucceeded: stats.nrSucceeded, nrFailedPages: stats.nrFailedPages };
}

// ---------------------------------------------------------------------------------------

/**
 * migrate_pages(from, get_new_folio, put_new_folio, mode, reason): migrate every isolated
 * movable page on `from`. Pages that did not migrate are left on `from` for the caller's
 * putback_movable_pages (called iff `rc` is non-zero) — except in v4.8, where a page that
 * failed for good is put back here, at once (`Profile.putbackPermanentInside`), and only
 * pages still failing with -EAGAIN stay on `from`. Counts pgmigrate_success /
 * pgmigrate_fail and fires mm_migrate_pages_start / mm_migrate_pages. A generator that may
 * sleep on page locks in the sync modes: call it as `yield* migratePages(m, ...)` from a
 * task.
 * @param k the machine (or `{ mem, sched }`): migration sleeps on page locks and wakes their
 *   waiters, which needs the scheduler
 * @param from the list of isolated pages (from isolateMovablePage, linked through `lru`)
 * @param getNew get_new_folio: allocates the target of each page (-1: no memory)
 * @param putNew put_new_folio: takes back an unused target; undefined to have the VM free
 *   it with folio_put
 * @param mode the {@link MIGRATE_MODE}: ASYNC never waits for a page lock (the page is
 *   retried), SYNC_LIGHT and SYNC may (spec §2.2), and so may SYNC_NO_COPY, a mode of v6.0
 *   and v6.3 only (`Profile.hasSyncNoCopy`). From v6.3 a run in a mode other than ASYNC
 *   first tries its pages in batches at ASYNC, then each page that did not move alone in
 *   `mode` (migrate_pages_sync()): a driver's migrate_page sees ASYNC first
 * @param reason the `enum migrate_reason` value ({@link MR}), as the tracepoint reports it;
 *   `Profile.migrateReasons` lists those of each release
 * @returns `rc`: the pages (folios) not migrated, or a negative errno (-ENOMEM when getNew
 *   failed, which stops the run); and the base pages migrated and failed
 * @throws {@link MopsError} `E_RANGE` for a `reason` the profile's release does not have;
 *   `E_USAGE` when `from` is not a list of the machine, for a getNew or putNew that is not
 *   a function, and when the run ends, for one that returned a page no caller may give or
 *   threw (the run went on as if memory were short)
 * @throws {@link MmBug} for a mode other than 0..2 (0..3 in v6.0 and v6.3); the machine
 *   halts
 */
export function* migratePages(
  k: Kctx,
  from: ListId,
  getNew: NewFolio,
  putNew: PutNewFolio | undefined,
  mode: number,
  reason: number,
): KernelGen<MigrateResult> {
  const { mem } = k;
  if (mode !== 0 && mode !== 1 && mode !== 2 && !(mode === 3 && mem.profile.hasSyncNoCopy))
    bug(mem, `migrate_pages: bad migrate mode ${mode}`);
  const reasons = mem.profile.migrateReasons;
  if (!Number.isInteger(reason) || reason < 0 || reason >= reasons.length)
    throw new MopsError(
      'E_RANGE',
      `migrate_pages: reason must be an integer 0..${reasons.length - 1} in ${mem.profile.name}, got ${valueKind(reason)}`,
      'reason',
    );
  checkList(mem, from, 'migrate_pages', 'from');
  if (typeof getNew !== 'function')
    throw new MopsError(
      'E_USAGE',
      `migrate_pages: getNew must be a function (src) => pfn, got ${valueKind(getNew)}`,
      'getNew',
    );
  if (putNew !== undefined && typeof putNew !== 'function')
    throw new MopsError(
      'E_USAGE',
      `migrate_pages: putNew must be a function (dst) => void or undefined, got ${valueKind(putNew)}`,
      'putNew',
    );
  const c: Ctx = {
    k,
    mem,
    getNew,
    putNew,
    reason,
    fault: undefined,
    pendingDst: -1,
    pendingPrev: 0,
    pendingOps: null,
    pendingCall: { iter: undefined as never, first: undefined as never, next: 0, prev: 0, iso: 0 },
  };
  const trace = mem.trace;
  if (mem.profile.tracepointsV6 && trace.enabled.mm_migrate_pages_start)
    trace.fire('mm_migrate_pages_start', { mode, reason });
  const r =
    mem.profile.migrateAlgo === 'batched'
      ? yield* migratePagesBatched(c, from, mode)
      : yield* migratePagesLegacy(c, from, mode);
  mem.vmstat.events[EV.pgmigrate_success] += r.nrSucceeded;
  mem.vmstat.events[EV.pgmigrate_fail] += r.nrFailedPages;
  if (trace.enabled.mm_migrate_pages)
    trace.fire('mm_migrate_pages', {
      succeeded: r.nrSucceeded,
      failed: r.nrFailedPages,
      thp_succeeded: 0,
      thp_failed: 0,
      thp_split: 0,
      large_folio_split: 0,
      mode,
      reason,
    });
  if (c.fault) throw c.fault;
  return r;
}
