/**
 * migrate_pages() as v4.8 and v6.0 run it (mm/migrate.c; spec §3.3-§3.5): unmap_and_move()
 * one page at a time, up to ten passes, with each profile's counting and putback.
 * @module
 */

import { folioPut } from '../buddy/free_page.js';
import type { ListId } from '../memory/list.js';
import { ISOLATED, PG } from '../page/flags.js';
import { lockPage, trylockPage, unlockPage } from '../page/lock.js';
import type { KernelGen } from '../sched/types.js';
import { callMigratePageGen } from './callbacks.js';
import { ownerDroppedStillMovable } from './driver_faults.js';
import {
  type Ctx,
  EAGAIN,
  ENOMEM,
  mayNotSleep,
  migrateFolioDone,
  newTarget,
  releaseDst,
  uncountIsolated,
} from './migrate_ctx.js';
import { __PageMovable, PageMovable } from './movable.js';
import { moveToNewFolioBegin, moveToNewFolioEnd } from './move.js';
import { putbackMovablePage } from './putback.js';
import { MIGRATE_MODE, type MigrateResult, NR_MAX_MIGRATE_PAGES_RETRY } from './types.js';

// ---------------------------------------------------------------------------------------
// v4.8 / v6.0: unmap_and_move()

function* unmapAndMoveInner(
  c: Ctx,
  src: number,
  dst: number,
  force: boolean,
  mode: number,
): KernelGen<number> {
  const { k, mem } = c;
  const { sched } = k;
  if (sched.preemptible) yield { op: mem.profile.pointNames.trylock, pfn: src };
  if (!trylockPage(mem, src)) {
    if (!force || mode === MIGRATE_MODE.ASYNC) return EAGAIN;
    // Direct compaction must not sleep on a page lock: it may hold other page locks.
    if (mayNotSleep(c)) return EAGAIN;
    yield* lockPage(k, src, mem.profile.pointNames.lock);
  }
  if (sched.preemptible) yield { op: mem.profile.pointNames.trylock, pfn: dst };
  if (!trylockPage(mem, dst)) {
    unlockPage(k, src);
    return EAGAIN;
  }
  const d = moveToNewFolioBegin(mem, dst, src);
  let rc = 0;
  if (d !== null)
    rc = moveToNewFolioEnd(mem, src, yield* callMigratePageGen(mem, d, dst, src, mode));
  if (sched.preemptible) yield { op: mem.profile.pointNames.unlock, pfn: dst };
  unlockPage(k, dst);
  unlockPage(k, src);
  // The VM's allocation reference on dst; the owner holds its own (or, if it released
  // src, nobody does and dst goes back to the buddy allocator).
  if (rc === 0) folioPut(mem, dst);
  return rc;
}

function* unmapAndMove(
  c: Ctx,
  src: number,
  force: boolean,
  mode: number,
  ret: ListId | undefined,
): KernelGen<number> {
  const { k, mem } = c;
  const prof = mem.profile;
  const p = mem.pages;
  let rc = 0;
  let dst = -1;
  if (prof.allocBeforeShortcut) {
    dst = newTarget(c, src);
    if (dst < 0) return ENOMEM;
  }
  if (k.sched.preemptible) yield { op: prof.pointNames.refCount, pfn: src };
  if (p.refcount[src] === 1) {
    // The page was freed from under us (its owner dropped its references): done.
    p.flags[src] &= ~((1 << PG.active) | (1 << PG.unevictable));
    if (prof.shortcutLocks && __PageMovable(mem, src)) {
      yield* lockPage(k, src, prof.pointNames.lock);
      if (!PageMovable(mem, src)) p.flags[src] &= ~ISOLATED;
      else ownerDroppedStillMovable(mem, src, 'unmap_and_move');
      unlockPage(k, src);
    } else ownerDroppedStillMovable(mem, src, 'unmap_and_move');
    if (dst >= 0) releaseDst(c, dst);
  } else {
    if (dst < 0) {
      dst = newTarget(c, src);
      if (dst < 0) return ENOMEM;
    }
    rc = yield* unmapAndMoveInner(c, src, dst, force, mode);
  }
  if (rc !== EAGAIN) {
    p.lists.del(src);
    uncountIsolated(mem, src);
  }
  if (rc === 0) {
    migrateFolioDone(c, src);
  } else if (rc !== EAGAIN) {
    // v4.8: a permanent failure is put back inside migrate_pages.
    if (prof.putbackPermanentInside) yield* putbackMovablePage(k, src, 'unmap_and_move');
    else if (ret !== undefined) p.lists.addTail(ret, src);
  }
  // put_new: the target of a failed move goes back last, after the putback (v4.8 holds
  // it while it sleeps on the page lock there).
  if (rc !== 0) releaseDst(c, dst);
  return rc;
}

export function* migratePagesLegacy(c: Ctx, from: ListId, mode: number): KernelGen<MigrateResult> {
  const { mem } = c;
  const lists = mem.pages.lists;
  const prof = mem.profile;
  const ret = prof.putbackPermanentInside ? undefined : lists.newList();
  let nrSucceeded = 0;
  let nrFailed = 0;
  let nrFailedPages = 0;
  let retry = 1;
  let rc = 0;
  let enomem = false;
  for (let pass = 0; pass < NR_MAX_MIGRATE_PAGES_RETRY && retry; pass++) {
    retry = 0;
    for (let src = lists.first(from); src !== -1 && !enomem; ) {
      const next = lists.nextOf(src);
      const r = yield* unmapAndMove(c, src, pass > 2, mode, ret);
      if (r === ENOMEM) {
        nrFailed++;
        nrFailedPages++;
        enomem = true;
      } else if (r === EAGAIN) retry++;
      else if (r === 0) nrSucceeded++;
      else {
        nrFailed++;
        nrFailedPages++;
      }
      src = next;
    }
    if (enomem) break;
  }
  if (enomem) rc = ENOMEM;
  else {
    nrFailed += retry;
    rc = nrFailed;
  }
  if (ret !== undefined) {
    lists.spliceHead(ret, from);
    lists.freeList(ret);
  }
  return { rc, nrSucceeded, nrFailedPages: prof.countRetryFailures ? nrFailed : nrFailedPages };
}
