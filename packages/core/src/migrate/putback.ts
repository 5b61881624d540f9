/**
 * putback_movable_pages() (mm/migrate.c; spec §3.2): return isolated pages to their owners.
 * @module
 */

import { folioPut } from '../buddy/free_page.js';
import { bug } from '../debug/dump_page.js';
import type { ListId } from '../memory/list.js';
import type { Memory } from '../memory/mem.js';
import { ISOLATED } from '../page/flags.js';
import { type Kctx, lockPage, lockPageFast, unlockPage } from '../page/lock.js';
import type { KernelGen } from '../sched/types.js';
import { callPutbackPageGen } from './callbacks_putback.js';
import { ownerDroppedStillMovable } from './driver_faults.js';
import { checkList, uncountIsolated } from './migrate_ctx.js';
import { PageMovable, page_has_movable_ops, pageMovableOps } from './movable.js';

/**
 * putback_movable_page() for one page already unlinked from the caller's list: lock it
 * (sleeping), call the driver's `putback_page` unless the owner released the page
 * (v4.8–v6.3: no longer PageMovable), clear the isolated flag, unlock, and drop the
 * isolation reference — which frees the page if its owner already let go. The scheduling
 * points carry the release's names (`Profile.pointNames`): `lock_page`,
 * `__ClearPageIsolated`, `unlock_page`, `put_page` in v4.8; `ClearPageIsolated` in v6.0;
 * `folio_lock`, `folio_clear_isolated`, `folio_unlock`, `folio_put` in v6.3; and
 * `ClearPageMovableOpsIsolated` in v6.17.
 * @param k the machine (or `{ mem, sched }`): putback sleeps on the page lock, which needs
 *   the scheduler
 * @param pfn an isolated page, unlinked from every list, its isolation reference held
 * @param step the caller, as reports name it: putback_movable_pages(), or v4.8's
 *   unmap_and_move(), which puts a page that failed for good back itself
 * @throws {@link MmBug} `VM_BUG_ON_PAGE(!PageIsolated(page))` (v4.8–v6.3) when the page is
 *   not isolated; v6.17 warns once and puts it back
 */
export function* putbackMovablePage(
  k: Kctx,
  pfn: number,
  step = 'putback_movable_pages',
): KernelGen {
  const { mem, sched } = k;
  const p = mem.pages;
  if (!(p.flags[pfn] & ISOLATED)) notIsolated(mem, pfn);
  if (!lockPageFast(k, pfn)) yield* lockPage(k, pfn, mem.profile.pointNames.lock);
  const released = mem.profile.coreDetectsRelease && !PageMovable(mem, pfn);
  if (!released && mem.profile.putbackRechecksIsolated && !(p.flags[pfn] & ISOLATED))
    bug(mem, 'VM_BUG_ON_PAGE(!PageIsolated(page))', pfn);
  if (!released) {
    if (p.refcount[pfn] === 1) ownerDroppedStillMovable(mem, pfn, step);
    const d = pageMovableOps(mem, pfn);
    if (!d) bug(mem, 'BUG: kernel NULL pointer dereference (movable_ops->putback_page)', pfn);
    yield* callPutbackPageGen(mem, d, pfn);
  }
  if (sched.preemptible) yield { op: mem.profile.pointNames.clearIsolated, pfn };
  p.flags[pfn] &= ~ISOLATED;
  if (sched.preemptible) yield { op: mem.profile.pointNames.unlock, pfn };
  unlockPage(k, pfn);
  if (sched.preemptible) yield { op: mem.profile.pointNames.put, pfn };
  folioPut(mem, pfn);
  // The owner let the page go: nobody should hold it now (see Memory.migratedHeld).
  if (released && p.refcount[pfn] !== 0) mem.migratedHeld.add(pfn);
}

/**
 * A page on the putback list without the isolated flag: v4.8–v6.3 BUG; v6.17 warns once
 * (VM_WARN_ON_ONCE_PAGE in putback_movable_ops_page) and puts the page back all the same.
 */
function notIsolated(mem: Memory, pfn: number): void {
  if (!mem.profile.isolatedCheckWarns) bug(mem, 'VM_BUG_ON_PAGE(!PageIsolated(page))', pfn);
  mem.warnOnce(
    'putback_movable_ops_page:isolated',
    'WARNING: VM_WARN_ON_ONCE_PAGE(!PageMovableOpsIsolated(page)) in putback_movable_ops_page',
    pfn,
  );
}

/**
 * putback_movable_pages(list): for each page, unlink it from the list first, then give it
 * back to its owner ({@link putbackMovablePage}). A generator that may sleep on page locks:
 * call it as `yield* putbackMovablePages(m, list)` from a task.
 * @param k the machine (or `{ mem, sched }`): putback sleeps on page locks, which needs the
 *   scheduler
 * @param list the list of isolated pages (linked through `lru`), e.g. what migratePages
 *   left on `from`; empty afterwards
 * @throws {@link MopsError} `E_USAGE` when `list` is not a list of the machine
 * @throws {@link MmBug} for a page on the list that has no movable_ops (mops models no LRU
 *   pages) or is not isolated (v4.8–v6.3); the machine halts
 */
export function* putbackMovablePages(k: Kctx, list: ListId): KernelGen {
  const { mem } = k;
  checkList(mem, list, 'putback_movable_pages', 'list');
  const lists = mem.pages.lists;
  for (let pfn = lists.first(list); pfn !== -1; pfn = lists.first(list)) {
    lists.del(pfn);
    uncountIsolated(mem, pfn);
    if (!page_has_movable_ops(mem, pfn))
      bug(mem, 'putback_movable_pages: not a movable page (mops models no LRU pages)', pfn);
    yield* putbackMovablePage(k, pfn);
  }
}
