/**
 * The VM side of a driver race: compaction-like tasks that isolate a page and then migrate
 * it or put it back, for scenarios to spawn against a driver's own tasks.
 * @module
 */

import {
  allocPages,
  callPutbackPage,
  callPutbackPageGen,
  folioPut,
  GFP,
  ISOLATED,
  isolatedOk,
  isolateMovablePage,
  type KernelGen,
  lockPage,
  type Machine,
  MIGRATE_MODE,
  migratePages,
  pageMovableOps,
  putbackMovablePages,
  unlockPage,
} from '@mops/core';

/**
 * migrate_pages() (MIGRATE_SYNC, new pages from the buddy allocator) on a list holding the
 * isolated `pfn`, putting it back if that fails.
 */
export function* migrateIsolated(m: Machine, pfn: number): KernelGen {
  const lists = m.mem.pages.lists;
  const list = lists.newList();
  lists.addTail(list, pfn);
  const getNew = (): number => allocPages(m.mem, GFP.HIGHUSER_MOVABLE, 0);
  const r = yield* migratePages(m, list, getNew, (d) => folioPut(m.mem, d), MIGRATE_MODE.SYNC, 0);
  if (r.rc !== 0) yield* putbackMovablePages(m, list);
  lists.freeList(list);
}

/**
 * A compaction-like VM task: isolate `pfn`; then migrate it (putting it back if that
 * fails) or, with `migrate` false, hold it on a list for one scheduling point and put it
 * back. Returns whether the page was isolated.
 */
export function* isolateThenMigrate(m: Machine, pfn: number, migrate: boolean): KernelGen<boolean> {
  const res = yield* isolateMovablePage(m, pfn, 0);
  if (!isolatedOk(res)) return false;
  if (migrate) yield* migrateIsolated(m, pfn);
  else yield* holdThenPutback(m, pfn);
  return true;
}

/** How a VM task gives back the pages on its migration list. */
export type Putback = (m: Machine, list: number) => KernelGen;

/**
 * The VM holds isolated page `pfn` on a migration list for one scheduling point, then puts
 * it back (with `putback`, by default putback_movable_pages()). `holders`, if given, counts
 * the page's holders until the putback starts: from then on another isolator may
 * legitimately win the page once PG_isolated is cleared.
 */
export function* holdThenPutback(
  m: Machine,
  pfn: number,
  holders?: { n: number },
  putback: Putback = putbackMovablePages,
): KernelGen {
  const lists = m.mem.pages.lists;
  const list = lists.newList();
  lists.addTail(list, pfn);
  if (holders) holders.n++;
  if (m.sched.preemptible)
    yield { op: 'putback_movable_pages', pfn, note: 'held isolated on a list until then' };
  if (holders) holders.n--;
  yield* putback(m, list);
  lists.freeList(list);
}

/**
 * putback_movable_pages() of the v3 draft (spec §4.2), where an owner releasing a page it
 * had isolated cleared PG_isolated itself: for each page, unlinked first, the VM takes the
 * page lock and, while PG_isolated is still set, calls the driver's putback_page and
 * clears the flag; a page whose flag the owner already cleared is the owner's again and
 * the VM only drops its isolation reference. Pages isolated by isolate_movable_page()
 * directly (not by the compaction scanner) are not counted in NR_ISOLATED, so there is
 * nothing to uncount. Its steps carry the names of the machine's release, as
 * putback_movable_pages() does (`Profile.pointNames`).
 */
export function* draftPutbackMovablePages(m: Machine, list: number): KernelGen {
  const { mem, sched } = m;
  const p = mem.pages;
  const names = mem.profile.pointNames;
  for (let pfn = p.lists.first(list); pfn !== -1; pfn = p.lists.first(list)) {
    p.lists.del(pfn);
    yield* lockPage(m, pfn, names.lock);
    if (p.flags[pfn] & ISOLATED) {
      const d = pageMovableOps(mem, pfn);
      if (d?.putbackGen) yield* callPutbackPageGen(mem, d, pfn);
      else if (d) callPutbackPage(mem, d, pfn);
      if (sched.preemptible) yield { op: names.clearIsolated, pfn };
      p.flags[pfn] &= ~ISOLATED;
    }
    if (sched.preemptible) yield { op: names.unlock, pfn };
    unlockPage(m, pfn);
    if (sched.preemptible) yield { op: names.put, pfn };
    folioPut(mem, pfn);
  }
}
