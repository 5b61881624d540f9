/**
 * The bit-field word of v6.0–v6.4's `struct zspage` that holds both `fullness` and
 * `isolated` (spec §7.3, §9f), for pools with `ZsMistakes.sharedIsolationWord`: the writes
 * of zs_malloc's and zs_free's fix_fullness_group and of the isolation count
 * (zs_page_isolate, putback and migrate) are read-modify-writes of the whole word, with a
 * scheduling point between the load and the store. zs_compact's stores are not split: in
 * 6.0–6.4 it held the zspage write locks of its source and target while it stored, which
 * the racy isolation count takes too.
 * @module
 */

import { bug, type KernelGen } from '@mops/core';
import type { ZsPool } from './pool.js';
import { POINTS, type Zspage } from './zspage.js';

/**
 * set_zspage_mapping() at the end of zs_malloc's or zs_free's fix_fullness_group (class
 * lock held): the zspage is on the list of its new group `fg`, which the word (still
 * `loaded`) lacks. The word is loaded, and after the scheduling point stored with the new
 * group and the isolated count of the load. Returns the new group.
 * @see mm/zsmalloc.c fix_fullness_group(), set_zspage_mapping()
 */
export function* storeFullnessWord(
  pool: ZsPool,
  zs: Zspage,
  loaded: number,
  fg: number,
): KernelGen<number> {
  // Until the store, the word holds the group it was loaded with.
  zs.fullness = loaded;
  const isolated = zs.isolated;
  if (pool.k.sched.preemptible)
    yield {
      op: 'set_zspage_mapping',
      pfn: zs.pages[0],
      note: `store fullness ${fg} with isolated ${isolated} as loaded`,
    };
  zs.fullness = fg;
  zs.isolated = isolated;
  return fg;
}

/**
 * Whether `pool` models the shared word: the option is set and the profile counts isolated
 * sub-pages without taking the zspage off its list (v6.0, v6.3).
 */
export function modelsIsolationWord(pool: ZsPool): boolean {
  return pool.mistakes.sharedIsolationWord !== undefined && pool.rules.putback === 'uncount';
}

/** Whether `pool` models the word and counts isolation outside the class lock (6.0–6.4). */
export function racyIsolationWord(pool: ZsPool): boolean {
  return modelsIsolationWord(pool) && pool.mistakes.sharedIsolationWord === 'racy';
}

/** dec_zspage_isolation()'s VM_BUG_ON(zspage->isolated == 0), on the count as loaded. */
export function checkUncount(pool: ZsPool, isolated: number, page: number): void {
  if (isolated === 0)
    bug(pool.mem, 'VM_BUG_ON(zspage->isolated == 0) in dec_zspage_isolation', page);
}

/**
 * The read-modify-write of inc_zspage_isolation() / dec_zspage_isolation() on `page`'s
 * zspage, with the caller's lock held: load the word, and after a scheduling point store
 * the count changed by `delta` with the group as loaded. Decrementing a count of 0 is the
 * kernel's VM_BUG_ON(zspage->isolated == 0).
 */
function* rmwIsolated(pool: ZsPool, zs: Zspage, page: number, delta: 1 | -1): KernelGen {
  const fullness = zs.fullness;
  const isolated = zs.isolated;
  if (delta < 0) checkUncount(pool, isolated, page);
  if (pool.k.sched.preemptible)
    yield {
      op: delta > 0 ? 'inc_zspage_isolation' : 'dec_zspage_isolation',
      pfn: page,
      note: `store isolated ${isolated + delta} with fullness ${fullness} as loaded`,
    };
  zs.fullness = fullness;
  zs.isolated = isolated + delta;
}

/**
 * zs_page_migrate()'s dec_zspage_isolation() in 6.0–6.4: after the class lock is dropped,
 * under the zspage lock only (the caller holds it). The 2023 fix moved it inside the lock.
 */
export function decIsolationWord(pool: ZsPool, zs: Zspage, page: number): KernelGen {
  return rmwIsolated(pool, zs, page, -1);
}

/**
 * inc_zspage_isolation() / dec_zspage_isolation() of zs_page_isolate / zs_page_putback on
 * `page`'s zspage: under the zspage lock (`'racy'`, 6.0–6.4) or the class lock (`'fixed'`).
 * @see mm/zsmalloc.c zs_page_isolate(), zs_page_putback()
 */
export function* updateIsolationWord(
  pool: ZsPool,
  zs: Zspage,
  page: number,
  delta: 1 | -1,
): KernelGen {
  const sched = pool.k.sched;
  const cls = zs.cls;
  const fixed = pool.mistakes.sharedIsolationWord === 'fixed';
  if (fixed) yield* cls.lock.lock();
  else yield* zs.lock.writeLockSpin();
  yield* rmwIsolated(pool, zs, page, delta);
  if (fixed) {
    if (sched.preemptible) yield cls.lock.points.unlock;
    cls.lock.unlock();
  } else {
    if (sched.preemptible) yield POINTS.writeUnlock;
    zs.lock.writeUnlock();
  }
}
