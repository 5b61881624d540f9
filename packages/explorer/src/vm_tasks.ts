/**
 * The VM side of a driver race: compaction-like tasks that isolate a page and then migrate
 * it or put it back, for scenarios to spawn against a driver's own tasks.
 * @module
 */

import {
  allocPages,
  folioPut,
  GFP,
  isolatedOk,
  isolateMovablePage,
  type KernelGen,
  type Machine,
  MIGRATE_MODE,
  migratePages,
  putbackMovablePages,
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

/**
 * The VM holds isolated page `pfn` on a migration list for one scheduling point, then puts
 * it back. `holders`, if given, counts the page's holders until the putback starts: from
 * then on another isolator may legitimately win the page once PG_isolated is cleared.
 */
export function* holdThenPutback(m: Machine, pfn: number, holders?: { n: number }): KernelGen {
  const lists = m.mem.pages.lists;
  const list = lists.newList();
  lists.addTail(list, pfn);
  if (holders) holders.n++;
  if (m.sched.preemptible) yield { op: 'migrate_pages', pfn, note: 'on the list' };
  if (holders) holders.n--;
  yield* putbackMovablePages(m, list);
  lists.freeList(list);
}
