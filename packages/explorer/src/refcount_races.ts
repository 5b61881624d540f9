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
  type Profile,
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

/** What the kernel calls the steps of 9b and 9c, and how the release behaves in them. */
interface RefSteps {
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
  /** 9c's buggy wait: the release's own if it takes a reference, else the 4.19–5.16 one. */
  readonly wait: 'wait_on_page_locked' | 'put_and_wait_on_page_locked';
}

/**
 * The steps as `prof`'s release names them: page-era names (page cache in a radix tree,
 * try_to_unmap) without folios, folio-era ones (XArray, try_to_migrate) with them.
 */
function refSteps(prof: Profile): RefSteps {
  const f = prof.hasFolios;
  return {
    lock: f ? 'folio_lock' : 'lock_page',
    unlock: f ? 'folio_unlock' : 'unlock_page',
    put: f ? 'folio_put' : 'put_page',
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
function isolatedWithTarget(m: Machine, user: string): [src: number, dst: number] {
  const src = m.allocPages(GFP.HIGHUSER_MOVABLE, 0, user);
  getPage(m.mem, src);
  return [src, m.allocPages(GFP.HIGHUSER_MOVABLE, 0, 'target')];
}

/**
 * The end of a migration attempt: unlock `src`, then drop the two references that decide
 * where the page lives on. Moved: `src`'s last (the isolation one) and the migrator's on
 * `dst`. Not moved (-EAGAIN): the unused `dst` and the isolation reference on `src`.
 */
function* endMigration(
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
        ? `src ${hex(src)}, the migrator's ${hex(dst)}`
        : `dst ${hex(dst)}, isolated ${hex(src)}`,
    };
  putPage(m.mem, src);
  putPage(m.mem, dst);
}

/**
 * What a finished run must leave: `kept` referenced once, by `holder`, and `gone` freed.
 */
function settled(m: Machine, kept: number, gone: number, holder: string): string[] {
  const r = m.mem.pages.refcount;
  const out: string[] = [];
  if (r[kept] !== 1)
    out.push(`${hex(kept)} has refcount ${r[kept]}; ${holder} holds the only reference`);
  if (r[gone] !== 0) out.push(`${hex(gone)} has refcount ${r[gone]}; it should have been freed`);
  return out;
}

/**
 * 9b: migration of a page-cache folio P (locked, isolated: the page cache's reference and
 * the migrator's, so 2 expected) against a lockless page-cache lookup (filemap_get_entry:
 * load the slot, get the folio unless its count is zero, re-check the slot). Fixed: the
 * freeze (compare-and-exchange expected → 0) is the only test that no one else holds a
 * reference; a release that compares the count first only bails out early on it. Buggy:
 * no release ever shipped this, it is the mistake the 2021 patch's reasoning rules out — the
 * pre-check is trusted and the count is set to 0 with a plain store, so a reference the
 * lookup took in between is wiped out: the folio is frozen while the lookup holds it, and a
 * last put later hits a zero count.
 */
export const scenario9b: Scenario = {
  name: '9b',
  description:
    'refcount pre-check trusted in place of the freeze in folio_migrate_mapping (buggy: check, then set the count to 0; fixed: folio_ref_freeze decides)',
  variants: BUGGY_FIXED,
  profiles: EVERY_PROFILE,
  refs: 'spec §9b',
  setup({ variant, profile }: ScenarioContext) {
    const m = raceMachine(profile);
    const mem = m.mem;
    const p = mem.pages;
    const op = refSteps(mem.profile);
    const buggy = variant === 'buggy';
    const [P, D] = isolatedWithTarget(m, 'pagecache');
    const expected = 2;
    // The page-cache slot; `held` is the folio the lookup holds a reference on (-1: none);
    // `frozen` is set while the migrator believes P's count frozen.
    const cache = { slot: P, held: -1, frozen: false };
    const preempt = (): boolean => m.sched.preemptible;

    /** The count becomes 0: by compare-and-exchange, or (buggy) by a plain store. */
    function* freeze(): KernelGen<boolean> {
      if (buggy) {
        if (preempt()) yield { op: op.setCount, pfn: P, note: '0, trusting the pre-check' };
        p.refcount[P] = 0;
        return true;
      }
      if (preempt()) yield { op: op.freeze, pfn: P, note: `${expected} -> 0` };
      return folioRefFreeze(mem, P, expected);
    }

    function* migrator(): KernelGen<boolean> {
      if (preempt()) yield { op: op.lock, pfn: P };
      if (!trylockPage(mem, P)) return false;
      let moved = false;
      let ok = true;
      if (buggy || op.precheck) {
        if (preempt()) yield { op: op.count, pfn: P, note: `== ${expected}?` };
        ok = p.refcount[P] === expected;
      }
      if (ok && (yield* freeze())) {
        cache.frozen = true;
        if (preempt()) yield { op: op.store, pfn: D, note: 'the slot now holds the new folio' };
        getPage(mem, D);
        cache.slot = D;
        if (preempt()) yield { op: op.unfreeze, pfn: P, note: `${expected - 1}` };
        cache.frozen = false;
        folioRefUnfreeze(mem, P, expected - 1);
        moved = true;
      }
      yield* endMigration(m, op, P, D, moved);
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
        if (preempt())
          yield {
            op: op.put,
            pfn: f,
            note: again ? 'done with the folio' : 'slot changed: repeat',
          };
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
      // A frozen count means nobody else holds a reference until the unfreeze.
      check: () =>
        cache.frozen && cache.held === P
          ? [`${hex(P)} is frozen while the lookup holds a reference to it`]
          : [],
      finish: () => settled(m, cache.slot, cache.slot === D ? P : D, 'the page cache'),
    };
  },
};

/** A page table entry: a present mapping of `pfn`, or a migration entry standing for it. */
interface Pte {
  migration: boolean;
  pfn: number;
}

/**
 * 9c / S29: the migrator has locked anonymous page X (mapped by one PTE, isolated) and
 * replaced the PTE by a migration entry; a thread faults on that address.
 * - `buggy`, as before 5.17 (`__migration_entry_wait`): the fault takes a reference on X
 *   under the PTE lock and drops the lock; then it queues on X's page lock and drops the
 *   reference (put_and_wait_on_page_locked, 4.19–5.16) or sleeps holding it
 *   (wait_on_page_locked then put_page, v4.8). A migrator counting X's references while the
 *   fault holds one finds one too many and fails with -EAGAIN.
 * - `fixed` (5.17, `migration_entry_wait_on_locked`): the fault queues while still holding
 *   the PTE lock and takes no reference; the migrator's own reference keeps X alive, as it
 *   is dropped only after the migration entry is gone, which needs the PTE lock.
 * - `no-ptl`: no reference and the PTE lock dropped before queueing, which is why the fix
 *   queues under the lock: X may be freed first, and the fault then waits on a free page.
 *
 * One faulting thread and one migration pass: a single avoidable -EAGAIN stands for the
 * repeated failures of S29 (four faulting threads; after ten passes the migration fails).
 */
export const scenario9c: Scenario = {
  name: '9c',
  description:
    'a fault waiting on a migration entry holds a page reference (buggy: the migrator sees it and fails with -EAGAIN; fixed: waiters queue under the PTL without a reference; no-ptl: without the PTL either)',
  variants: [...BUGGY_FIXED, 'no-ptl'],
  profiles: EVERY_PROFILE,
  refs: 'spec §9c, S29',
  setup({ variant, profile }: ScenarioContext) {
    const m = raceMachine(profile);
    const mem = m.mem;
    const p = mem.pages;
    const op = refSteps(mem.profile);
    const ptl = new SpinLock(m.sched, 'ptl');
    const [X, D] = isolatedWithTarget(m, 'anon');
    const pte: Pte = { migration: false, pfn: X };
    // References the faulting thread holds on X, and what went wrong.
    const seen = { faultRefs: 0, eagain: '', queuedOnFree: false };
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
      if (preempt()) yield { op: op.lock, pfn: X };
      if (!trylockPage(mem, X)) return false;
      // A migration entry in place of the PTE; the mapping's reference goes.
      yield* ptl.lock();
      if (preempt()) yield { op: op.unmap, pfn: X, note: 'install migration entry' };
      pte.migration = true;
      putPage(mem, X);
      if (preempt()) yield ptl.points.unlock;
      ptl.unlock();
      // An anonymous page moves only if the isolation reference is the last one.
      if (preempt()) yield { op: op.count, pfn: X, note: '== 1?' };
      const moved = p.refcount[X] === 1;
      if (!moved && seen.faultRefs > 0)
        seen.eagain = `migration of ${hex(X)} failed with -EAGAIN: refcount ${p.refcount[X]}, expected 1; a fault that found its migration entry holds a reference (get_page_unless_zero)`;
      yield* removeMigrationPtes(moved ? D : X);
      yield* endMigration(m, op, X, D, moved);
      return moved;
    }

    /**
     * Queue on the page lock of `page` (PG_waiters set, so that the unlock wakes us). On a
     * page already freed that write would land in a free struct page: it is reported
     * instead of made.
     */
    function queue(page: number): void {
      if (p.refcount[page] === 0) seen.queuedOnFree = true;
      else p.flags[page] |= 1 << PG.waiters;
    }

    /** Sleep once queued: unless the page was unlocked meanwhile, until its unlock. */
    function* sleep(page: number): KernelGen {
      if (PageLocked(mem, page))
        yield { op: 'block', key: pageWaitKey(page), what: `page lock of ${hex(page)}`, pfn: page };
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
        if (preempt()) yield { op: op.wait, pfn: page };
        queue(page);
        const dropsBeforeSleep = op.wait === 'put_and_wait_on_page_locked';
        if (dropsBeforeSleep) {
          seen.faultRefs--;
          putPage(mem, page);
        }
        yield* sleep(page);
        if (!dropsBeforeSleep) {
          if (preempt()) yield { op: 'put_page', pfn: page };
          seen.faultRefs--;
          putPage(mem, page);
        }
      } else if (variant === 'fixed') {
        if (preempt())
          yield { op: 'migration_entry_wait_on_locked', pfn: page, note: 'queue under the PTL' };
        queue(page);
        if (preempt()) yield ptl.points.unlock;
        ptl.unlock();
        yield* sleep(page);
      } else {
        if (preempt()) yield ptl.points.unlock;
        ptl.unlock();
        if (preempt()) yield { op: 'migration_entry_wait', pfn: page, note: 'queue, PTL dropped' };
        queue(page);
        yield* sleep(page);
      }
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
        if (seen.queuedOnFree)
          out.push(`a fault queued on the page lock of ${hex(X)} after ${hex(X)} was freed`);
        return out;
      },
      finish: () => settled(m, pte.pfn, pte.pfn === D ? X : D, 'its PTE'),
    };
  },
};
