/**
 * The steps that the refcount races (9b, 9c and S29) share: their kernel names per release,
 * the isolated page and its target, the end of a migration attempt, and what a finished run
 * must leave. Internal to the package.
 * @module
 */

import {
  GFP,
  getPage,
  hexPfn,
  type KernelGen,
  type Machine,
  type Profile,
  putPage,
  unlockPage,
} from '@mops/core';

/** What the kernel calls the steps of 9b and 9c, and how the release behaves in them. */
export interface RefSteps {
  readonly lock: string;
  readonly unlock: string;
  readonly put: string;
  readonly count: string;
  readonly freeze: string;
  readonly setCount: string;
  readonly unfreeze: string;
  readonly store: string;
  readonly load: string;
  readonly get: string;
  readonly reload: string;
  readonly unmap: string;
  /** See {@link Profile.migrateMappingPrecheck}. */
  readonly precheck: boolean;
  /** 9c's buggy wait: the release's own if it takes a reference, else the 5.0–5.16 one. */
  readonly wait: 'wait_on_page_locked' | 'put_and_wait_on_page_locked';
}

/**
 * The steps as `prof`'s release names them. The migrator's lock, unlock and put are the
 * release's migration steps (`Profile.pointNames`: page helpers in unmap_and_move() up to
 * v6.0, folio helpers from v6.3); the rest are the page cache's and the refcount's:
 * page-era names (page cache in a radix tree, try_to_unmap) without folios, folio-era ones
 * (XArray, try_to_migrate) with them, so v6.0 counts with folio_migrate_mapping()'s
 * `folio_ref_count`.
 */
export function refSteps(prof: Profile): RefSteps {
  const f = prof.hasFolios;
  const names = prof.pointNames;
  return {
    lock: names.lock,
    unlock: names.unlock,
    put: names.put,
    count: f ? 'folio_ref_count' : 'page_count',
    freeze: f ? 'folio_ref_freeze' : 'page_ref_freeze',
    setCount: f ? 'folio_set_count' : 'set_page_count',
    unfreeze: f ? 'folio_ref_unfreeze' : 'page_ref_unfreeze',
    store: f ? 'xas_store' : 'radix_tree_replace_slot',
    load: f ? 'xas_load' : 'radix_tree_deref_slot',
    get: prof.pageCacheGet,
    reload: f ? 'xas_reload' : 'page != *slot',
    unmap: f ? 'try_to_migrate_one' : 'try_to_unmap_one',
    precheck: prof.migrateMappingPrecheck,
    wait:
      prof.migrationEntryWait === 'wait_on_page_locked'
        ? 'wait_on_page_locked'
        : 'put_and_wait_on_page_locked',
  };
}

/**
 * The page a migrator works on, holding its user's reference (`user` names it) and the
 * migrator's isolation reference, and the target compaction_alloc() handed the migrator
 * (its one reference).
 */
export function isolatedWithTarget(m: Machine, user: string): [src: number, dst: number] {
  const src = m.allocPages(GFP.HIGHUSER_MOVABLE, 0, user);
  getPage(m.mem, src);
  return [src, m.allocPages(GFP.HIGHUSER_MOVABLE, 0, 'target')];
}

/**
 * The end of a migration attempt: unlock `src`, then drop the two references that decide
 * where the page lives on. Moved: `src`'s last (the isolation one) and the migrator's on
 * `dst`. Not moved (-EAGAIN): the unused `dst` and the isolation reference on `src`.
 */
export function* endMigration(
  m: Machine,
  names: { readonly unlock: string; readonly put: string },
  src: number,
  dst: number,
  moved: boolean,
): KernelGen {
  if (m.sched.preemptible) yield { op: names.unlock, pfn: src };
  unlockPage(m, src);
  if (m.sched.preemptible)
    yield {
      op: names.put,
      note: moved
        ? `src ${hexPfn(src)}, the migrator's ${hexPfn(dst)}`
        : `dst ${hexPfn(dst)}, isolated ${hexPfn(src)}`,
    };
  putPage(m.mem, src);
  putPage(m.mem, dst);
}

/**
 * What a finished run must leave: `kept` referenced once, by `holder`, and `gone` freed.
 */
export function settled(m: Machine, kept: number, gone: number, holder: string): string[] {
  const r = m.mem.pages.refcount;
  const out: string[] = [];
  if (r[kept] !== 1)
    out.push(`${hexPfn(kept)} has refcount ${r[kept]}; ${holder} holds the only reference`);
  if (r[gone] !== 0) out.push(`${hexPfn(gone)} has refcount ${r[gone]}; it should have been freed`);
  return out;
}
