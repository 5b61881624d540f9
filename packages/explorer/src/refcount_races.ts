/**
 * Races on the reference count of a folio under migration: the freeze that decides whether
 * anyone else holds a reference (spec §9b), and the faulting threads that wait for a
 * migration to finish (spec §9c, S29).
 * @module
 */

import {
  folioRefFreeze,
  folioRefUnfreeze,
  folioTryGet,
  GFP,
  getPage,
  getPageUnlessZero,
  type KernelGen,
  type Machine,
  PageLocked,
  PG,
  pageWaitKey,
  putPage,
  SpinLock,
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

/** A page table entry: a present mapping of `pfn`, or a migration entry standing for it. */
interface Pte {
  migration: boolean;
  pfn: number;
}

/**
 * Sleeps until the page lock of `pfn` is released, without taking it (folio_wait_bit with
 * PG_waiters set, so that folio_unlock() wakes the sleeper).
 */
function* waitOnPageLocked(m: Machine, pfn: number): KernelGen {
  const p = m.mem.pages;
  while (PageLocked(m.mem, pfn)) {
    p.flags[pfn] |= 1 << PG.waiters;
    yield { op: 'block', key: pageWaitKey(pfn), what: `page lock of ${hex(pfn)}`, pfn };
  }
}

/**
 * 9c / S29: the migrator has locked anonymous page X (mapped by one PTE, isolated) and
 * replaced the PTE by a migration entry; a thread faults on that address. Buggy (5.15
 * `__migration_entry_wait`): the fault takes a reference on X under the PTE lock, drops the
 * lock, then queues on X's page lock and only then drops the reference; a migrator counting
 * X's references in that window finds one too many and fails with -EAGAIN. Fixed (5.17
 * `migration_entry_wait_on_locked`): the fault queues while still holding the PTE lock and
 * takes no reference; the migrator's own reference keeps X alive, because it is dropped
 * only after the migration entry is gone, which needs the PTE lock.
 */
export const scenario9c: Scenario = {
  name: '9c',
  description:
    'a fault waiting on a migration entry holds a page reference (buggy: the migrator sees it and fails with -EAGAIN; fixed: waiters take no reference)',
  variants: BUGGY_FIXED,
  profiles: EVERY_PROFILE,
  refs: 'spec §9c, S29',
  setup({ variant, profile }: ScenarioContext) {
    const m = raceMachine(profile);
    const mem = m.mem;
    const p = mem.pages;
    const ptl = new SpinLock(m.sched, 'ptl');
    // X: the mapping's reference and the migrator's isolation reference. D: the target.
    const X = m.allocPages(GFP.HIGHUSER_MOVABLE, 0, 'anon');
    getPage(mem, X);
    const D = m.allocPages(GFP.HIGHUSER_MOVABLE, 0, 'target');
    const pte: Pte = { migration: false, pfn: X };
    // References the faulting thread holds on X, and what went wrong.
    const seen = { faultRefs: 0, eagain: '', freedWhileWaiting: false };
    const preempt = (): boolean => m.sched.preemptible;

    /** remove_migration_ptes(): the migration entry becomes a present PTE of `to`. */
    function* removeMigrationPtes(to: number): KernelGen {
      yield* ptl.lock();
      if (preempt()) yield { op: 'remove_migration_pte', pfn: to };
      pte.migration = false;
      pte.pfn = to;
      getPage(mem, to);
      if (preempt()) yield ptl.points.unlock;
      ptl.unlock();
    }

    function* migrator(): KernelGen<boolean> {
      if (preempt()) yield { op: 'folio_lock', pfn: X };
      if (!trylockPage(mem, X)) return false;
      // try_to_migrate(): a migration entry in place of the PTE; the mapping's reference goes.
      yield* ptl.lock();
      if (preempt()) yield { op: 'try_to_migrate_one', pfn: X, note: 'install migration entry' };
      pte.migration = true;
      putPage(mem, X);
      if (preempt()) yield ptl.points.unlock;
      ptl.unlock();
      // migrate_folio(): an anonymous folio may move only if the isolation reference is the
      // last one.
      if (preempt()) yield { op: 'folio_ref_count', pfn: X, note: '== 1?' };
      const moved = p.refcount[X] === 1;
      if (!moved && seen.faultRefs > 0)
        seen.eagain = `migration of ${hex(X)} failed with -EAGAIN: refcount ${p.refcount[X]}, expected 1, a fault waiting on its migration entry holds a reference`;
      yield* removeMigrationPtes(moved ? D : X);
      if (preempt()) yield { op: 'folio_unlock', pfn: X };
      unlockPage(m, X);
      if (preempt()) yield { op: 'folio_put', pfn: moved ? X : D, note: moved ? 'src' : 'dst' };
      putPage(mem, X);
      putPage(mem, D);
      return moved;
    }

    // do_swap_page() on the address: a migration entry sends it to wait, then it refaults.
    function* fault(): KernelGen<boolean> {
      yield* ptl.lock();
      if (preempt()) yield { op: 'pte_offset_map_lock', note: 'read the PTE' };
      if (!pte.migration) {
        if (preempt()) yield ptl.points.unlock;
        ptl.unlock();
        return true;
      }
      const page = pte.pfn;
      if (variant === 'buggy') {
        if (preempt()) yield { op: 'get_page_unless_zero', pfn: page };
        const got = getPageUnlessZero(mem, page);
        if (got) seen.faultRefs++;
        if (preempt()) yield ptl.points.unlock;
        ptl.unlock();
        if (!got) return false;
        // put_and_wait_on_page_locked(): queue, drop the reference, sleep.
        if (preempt()) yield { op: 'put_and_wait_on_page_locked', pfn: page };
        seen.faultRefs--;
        putPage(mem, page);
      } else {
        if (preempt())
          yield { op: 'migration_entry_wait_on_locked', pfn: page, note: 'queue under the PTL' };
        if (p.refcount[page] === 0) seen.freedWhileWaiting = true;
        if (preempt()) yield ptl.points.unlock;
        ptl.unlock();
      }
      yield* waitOnPageLocked(m, page);
      // The refault finds the PTE present again (the new page, or X after a failure).
      yield* ptl.lock();
      if (preempt()) yield { op: 'pte_offset_map_lock', note: 'refault' };
      const present = !pte.migration;
      if (preempt()) yield ptl.points.unlock;
      ptl.unlock();
      return present;
    }

    return {
      machine: m,
      state: [pte, seen, ptl],
      start: () => {
        m.sched.spawn('migrator', migrator);
        m.sched.spawn('fault', fault);
      },
      check: () => {
        const out: string[] = [];
        if (seen.eagain) out.push(seen.eagain);
        if (seen.freedWhileWaiting) out.push(`a fault queued on ${hex(X)} after it was freed`);
        return out;
      },
      finish: () => {
        const gone = pte.pfn === D ? X : D;
        const out: string[] = [];
        if (p.refcount[pte.pfn] !== 1)
          out.push(
            `${hex(pte.pfn)} has refcount ${p.refcount[pte.pfn]}; its PTE holds the only reference`,
          );
        if (p.refcount[gone] !== 0)
          out.push(`${hex(gone)} has refcount ${p.refcount[gone]}; it should have been freed`);
        return out;
      },
    };
  },
};
