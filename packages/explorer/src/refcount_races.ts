/**
 * Races on the reference count of a folio under migration (spec §9b): the freeze that
 * decides whether anyone else holds a reference.
 * @module
 */

import {
  folioRefFreeze,
  folioRefUnfreeze,
  folioTryGet,
  GFP,
  getPage,
  type KernelGen,
  putPage,
  trylockPage,
  unlockPage,
} from '@mops/core';
import { BUGGY_FIXED, EVERY_PROFILE, hex, raceMachine } from './race_machine.js';
import type { Scenario, ScenarioContext } from './scenario.js';

/** How often the lookup repeats after a failed get or a changed slot before giving up. */
const LOOKUP_ATTEMPTS = 3;

/**
 * 9b: folio_migrate_mapping() on a page-cache folio P (locked, isolated: the page cache's
 * reference and the migrator's, so 2 expected) against a lockless page-cache lookup
 * (filemap_get_entry: load the slot, folio_try_get, re-check the slot). Both variants first
 * compare the count with the expected one, a cheap bail-out. Fixed: folio_ref_freeze()
 * (compare-and-exchange expected → 0) is the only test that no one else holds a reference.
 * Buggy: the pre-check is trusted and the count is frozen with a plain store, so a reference
 * the lookup took in between is wiped out: the folio is frozen while the lookup holds it,
 * and its last put later hits a zero count.
 */
export const scenario9b: Scenario = {
  name: '9b',
  description:
    'refcount pre-check before freezing in folio_migrate_mapping (buggy: the check is trusted and the count is set to 0; fixed: folio_ref_freeze decides)',
  variants: BUGGY_FIXED,
  profiles: EVERY_PROFILE,
  refs: 'spec §9b',
  setup({ variant, profile }: ScenarioContext) {
    const m = raceMachine(profile);
    const mem = m.mem;
    const p = mem.pages;
    const folios = mem.profile.hasFolios;
    const op = {
      count: folios ? 'folio_ref_count' : 'page_count',
      freeze: folios ? 'folio_ref_freeze' : 'page_ref_freeze',
      unfreeze: folios ? 'folio_ref_unfreeze' : 'page_ref_unfreeze',
      get: folios ? 'folio_try_get' : 'page_cache_get_speculative',
      load: folios ? 'xas_load' : 'radix_tree_deref_slot',
      reload: folios ? 'xas_reload' : 'radix_tree_deref_slot recheck',
      store: folios ? 'xas_store' : 'radix_tree_replace_slot',
    };
    // P: the page cache's reference, then the migrator's isolation reference. D: the target
    // compaction_alloc() handed the migrator (its one reference).
    const P = m.allocPages(GFP.HIGHUSER_MOVABLE, 0, 'pagecache');
    getPage(mem, P);
    const D = m.allocPages(GFP.HIGHUSER_MOVABLE, 0, 'target');
    const expected = 2;
    // The page-cache slot; `held` is the folio the lookup holds a reference on (-1: none);
    // `frozen` is set while the migrator believes P's count frozen.
    const cache = { slot: P, held: -1, frozen: false };
    const preempt = (): boolean => m.sched.preemptible;

    function* migrator(): KernelGen<boolean> {
      if (preempt()) yield { op: 'folio_lock', pfn: P };
      if (!trylockPage(mem, P)) return false;
      let moved = false;
      if (preempt()) yield { op: op.count, pfn: P, note: `== ${expected}?` };
      if (p.refcount[P] === expected) {
        if (preempt())
          yield {
            op: op.freeze,
            pfn: P,
            note:
              variant === 'buggy' ? 'plain store of 0, trusting the pre-check' : `${expected} -> 0`,
          };
        if (variant === 'buggy') p.refcount[P] = 0;
        const frozen = variant === 'buggy' || folioRefFreeze(mem, P, expected);
        if (frozen) {
          cache.frozen = true;
          if (preempt()) yield { op: op.store, pfn: D, note: 'the slot now holds the new folio' };
          getPage(mem, D);
          cache.slot = D;
          if (preempt()) yield { op: op.unfreeze, pfn: P, note: `${expected - 1}` };
          cache.frozen = false;
          folioRefUnfreeze(mem, P, expected - 1);
          moved = true;
        }
      }
      if (preempt()) yield { op: 'folio_unlock', pfn: P };
      unlockPage(m, P);
      // Success: the source goes (its last reference is the isolation one) and the target
      // keeps only the page cache's. -EAGAIN: the unused target goes and P is put back.
      if (preempt()) yield { op: 'folio_put', pfn: moved ? P : D, note: moved ? 'src' : 'dst' };
      putPage(mem, P);
      putPage(mem, D);
      return moved;
    }

    // filemap_get_entry(): repeats after a failed get or a changed slot (a bounded number of
    // times here, so that a preempted migrator cannot turn a schedule into an endless loop).
    function* lookup(): KernelGen<boolean> {
      for (let attempt = 0; attempt < LOOKUP_ATTEMPTS; attempt++) {
        if (preempt()) yield { op: op.load };
        const f = cache.slot;
        if (preempt()) yield { op: op.get, pfn: f };
        if (!folioTryGet(mem, f)) continue;
        cache.held = f;
        if (preempt()) yield { op: op.reload, pfn: f };
        const again = cache.slot === f;
        if (!again && preempt()) yield { op: 'folio_put', pfn: f, note: 'slot changed: repeat' };
        if (again && preempt()) yield { op: 'folio_put', pfn: f, note: 'done with the folio' };
        cache.held = -1;
        putPage(mem, f);
        if (again) return true;
      }
      return false;
    }

    return {
      machine: m,
      state: [cache],
      start: () => {
        m.sched.spawn('migrator', migrator);
        m.sched.spawn('lookup', lookup);
      },
      // folio_ref_freeze() succeeding means nobody else holds a reference until the unfreeze.
      check: () =>
        cache.frozen && cache.held === P
          ? [`${hex(P)} is frozen while the lookup holds a reference to it`]
          : [],
      finish: () => {
        const gone = cache.slot === D ? P : D;
        const out: string[] = [];
        if (p.refcount[cache.slot] !== 1)
          out.push(
            `${hex(cache.slot)} has refcount ${p.refcount[cache.slot]}; the page cache holds the only reference`,
          );
        if (p.refcount[gone] !== 0)
          out.push(`${hex(gone)} has refcount ${p.refcount[gone]}; it should have been freed`);
        return out;
      },
    };
  },
};
