/**
 * Faulting threads that find a migration entry where their page was and wait for the
 * migration to finish (spec §9c): one fault against one migration pass (9c), and S29 in
 * full, four threads that keep faulting against the ten passes of migrate_pages() in
 * MIGRATE_SYNC, as move_pages() makes them (9c-passes).
 * @module
 */

import {
  GFP,
  getPage,
  getPageUnlessZero,
  hexPfn,
  type KernelGen,
  lockPage,
  type Machine,
  NR_MAX_MIGRATE_ASYNC_RETRY,
  NR_MAX_MIGRATE_PAGES_RETRY,
  NR_MAX_MIGRATE_SYNC_RETRY,
  PageLocked,
  PG,
  pageWaitKey,
  putPage,
  SpinLock,
  trylockPage,
  unlockPage,
} from '@mops/core';
import {
  endMigration,
  isolatedWithTarget,
  type RefSteps,
  refSteps,
  settled,
} from './migration_steps.js';
import { BUGGY_FIXED, EVERY_PROFILE, raceMachine } from './race_machine.js';
import type { Scenario, ScenarioContext } from './scenario.js';

/** A page table entry: a present mapping of `pfn`, or a migration entry standing for it. */
interface Pte {
  migration: boolean;
  pfn: number;
}

/** What the faulting side of 9c and 9c-passes works with. */
interface FaultCtx {
  readonly m: Machine;
  readonly op: RefSteps;
  readonly ptl: SpinLock;
  readonly pte: Pte;
  /** `buggy`, `fixed` or `no-ptl` (see {@link scenario9c}). */
  readonly variant: string;
  /** References the faulting threads hold on the page, and a queue on a freed page. */
  readonly seen: { faultRefs: number; queuedOnFree: boolean };
}

/**
 * Queue on the page lock of `page` (PG_waiters set, so that the unlock wakes us). On a page
 * already freed that write would land in a free struct page: it is reported instead of made.
 */
function queue(c: FaultCtx, page: number): void {
  const p = c.m.mem.pages;
  if (p.refcount[page] === 0) c.seen.queuedOnFree = true;
  else p.flags[page] |= 1 << PG.waiters;
}

/**
 * Sleep once queued: unless the page was unlocked meanwhile, until its unlock. With
 * `again`, as v4.8's wait_on_page_locked() (__wait_on_bit), until the page is found
 * unlocked: a waiter woken by an unlock that runs after the page was locked again goes
 * back to sleep.
 */
function* sleep(c: FaultCtx, page: number, again = false): KernelGen {
  while (PageLocked(c.m.mem, page)) {
    yield {
      op: 'block',
      key: pageWaitKey(page),
      what: `wait_on_page_locked pfn ${hexPfn(page)}`,
      pfn: page,
    };
    if (!again) return;
    queue(c, page);
  }
}

/**
 * A fault that found the migration entry of `page`, entered with the PTE lock held: wait
 * until the migration is over, the way the variant does. Returns with the PTE lock dropped;
 * false when the buggy wait could not get its reference (the page was being freed).
 */
function* migrationEntryWait(c: FaultCtx, page: number): KernelGen<boolean> {
  const { m, op, ptl, seen } = c;
  const preempt = (): boolean => m.sched.preemptible;
  if (c.variant === 'buggy') {
    if (preempt()) yield { op: 'get_page_unless_zero', pfn: page };
    const got = getPageUnlessZero(m.mem, page);
    if (got) seen.faultRefs++;
    if (preempt()) yield ptl.points.unlock;
    ptl.unlock();
    if (!got) return false;
    if (preempt()) yield { op: op.wait, pfn: page };
    queue(c, page);
    const dropsBeforeSleep = op.wait === 'put_and_wait_on_page_locked';
    if (dropsBeforeSleep) {
      seen.faultRefs--;
      putPage(m.mem, page);
    }
    yield* sleep(c, page, !dropsBeforeSleep);
    if (!dropsBeforeSleep) {
      if (preempt()) yield { op: 'put_page', pfn: page };
      seen.faultRefs--;
      putPage(m.mem, page);
    }
  } else if (c.variant === 'fixed') {
    if (preempt())
      yield { op: 'migration_entry_wait_on_locked', pfn: page, note: 'queue under the PTL' };
    queue(c, page);
    if (preempt()) yield ptl.points.unlock;
    ptl.unlock();
    yield* sleep(c, page);
  } else {
    if (preempt()) yield ptl.points.unlock;
    ptl.unlock();
    if (preempt()) yield { op: 'migration_entry_wait', pfn: page, note: 'queue, PTL dropped' };
    queue(c, page);
    yield* sleep(c, page);
  }
  return true;
}

/**
 * do_swap_page() on the address: a migration entry sends the thread to wait, then it
 * refaults. Returns whether the refault found the PTE present.
 */
function* fault(c: FaultCtx): KernelGen<boolean> {
  const { m, ptl, pte } = c;
  yield* ptl.lock();
  if (m.sched.preemptible) yield { op: 'pte_offset_map_lock', note: 'read the PTE' };
  if (!pte.migration) {
    if (m.sched.preemptible) yield ptl.points.unlock;
    ptl.unlock();
    return true;
  }
  if (!(yield* migrationEntryWait(c, pte.pfn))) return false;
  // The refault finds the PTE present again (the new page, or the old one after a failure).
  yield* ptl.lock();
  if (m.sched.preemptible) yield { op: 'pte_offset_map_lock', note: 'refault' };
  const present = !pte.migration;
  if (m.sched.preemptible) yield ptl.points.unlock;
  ptl.unlock();
  return present;
}

/** The migrator's try_to_migrate(): a migration entry replaces the PTE of `page`. */
function* installMigrationEntry(c: FaultCtx, page: number): KernelGen {
  const { m, op, ptl, pte } = c;
  yield* ptl.lock();
  if (m.sched.preemptible) yield { op: op.unmap, pfn: page, note: 'install migration entry' };
  pte.migration = true;
  // The mapping's reference goes with the PTE.
  putPage(m.mem, page);
  if (m.sched.preemptible) yield ptl.points.unlock;
  ptl.unlock();
}

/** remove_migration_ptes(): the migration entry becomes a present PTE of `to`. */
function* removeMigrationPtes(c: FaultCtx, to: number): KernelGen {
  const { m, ptl, pte } = c;
  yield* ptl.lock();
  if (m.sched.preemptible) yield { op: 'remove_migration_pte', pfn: to };
  pte.migration = false;
  pte.pfn = to;
  getPage(m.mem, to);
  if (m.sched.preemptible) yield ptl.points.unlock;
  ptl.unlock();
}

/** The faulting side's shared state on a fresh race machine, and the page and target. */
function faultSetup(variant: string, profile: ScenarioContext['profile']) {
  const m = raceMachine(profile);
  const op = refSteps(m.mem.profile);
  const ptl = new SpinLock(m.sched, 'ptl');
  const [X, D] = isolatedWithTarget(m, 'anon');
  const c: FaultCtx = {
    m,
    op,
    ptl,
    pte: { migration: false, pfn: X },
    variant,
    seen: { faultRefs: 0, queuedOnFree: false },
  };
  return { m, c, X, D };
}

/** The check a queue on a freed page fails. */
function queuedOnFree(c: FaultCtx, page: number): string[] {
  return c.seen.queuedOnFree
    ? [`a fault queued on the page lock of ${hexPfn(page)} after ${hexPfn(page)} was freed`]
    : [];
}

/**
 * 9c / S29: the migrator has locked anonymous page X (mapped by one PTE, isolated) and
 * replaced the PTE by a migration entry; a thread faults on that address.
 * - `buggy`, as before 5.17 (`__migration_entry_wait`): the fault takes a reference on X
 *   under the PTE lock and drops the lock; then it queues on X's page lock and drops the
 *   reference (put_and_wait_on_page_locked, 5.0–5.16) or sleeps holding it
 *   (wait_on_page_locked then put_page, v4.8). A migrator counting X's references while the
 *   fault holds one finds one too many and fails with -EAGAIN.
 * - `fixed` (5.17, `migration_entry_wait_on_locked`): the fault queues while still holding
 *   the PTE lock and takes no reference; the migrator's own reference keeps X alive, as it
 *   is dropped only after the migration entry is gone, which needs the PTE lock.
 * - `no-ptl`: no reference and the PTE lock dropped before queueing, which is why the fix
 *   queues under the lock: X may be freed first, and the fault then waits on a free page.
 *
 * One faulting thread and one migration pass: a single avoidable -EAGAIN. S29 in full, four
 * threads against ten passes, is {@link scenario9cPasses}.
 */
export const scenario9c: Scenario = {
  name: '9c',
  description:
    'a fault waiting on a migration entry holds a page reference (buggy: the migrator sees it and fails with -EAGAIN; fixed: waiters queue under the PTL without a reference; no-ptl: without the PTL either)',
  variants: [...BUGGY_FIXED, 'no-ptl'],
  profiles: EVERY_PROFILE,
  refs: 'spec §9c, S29',
  setup({ variant, profile }: ScenarioContext) {
    const { m, c, X, D } = faultSetup(variant, profile);
    const p = m.mem.pages;
    const { op, pte, seen } = c;
    const out = { eagain: '' };

    function* migrator(): KernelGen<boolean> {
      if (m.sched.preemptible) yield { op: op.lock, pfn: X };
      if (!trylockPage(m.mem, X)) return false;
      yield* installMigrationEntry(c, X);
      // An anonymous page moves only if the isolation reference is the last one.
      if (m.sched.preemptible) yield { op: op.count, pfn: X, note: '== 1?' };
      const moved = p.refcount[X] === 1;
      if (!moved && seen.faultRefs > 0)
        out.eagain = `migration of ${hexPfn(X)} failed with -EAGAIN: refcount ${p.refcount[X]}, expected 1; a fault that found its migration entry holds a reference (get_page_unless_zero)`;
      yield* removeMigrationPtes(c, moved ? D : X);
      yield* endMigration(m, op, X, D, moved);
      return moved;
    }

    return {
      machine: m,
      state: [pte, seen, out, c.ptl],
      start: () => {
        m.sched.spawn('migrator', migrator);
        m.sched.spawn('fault', () => fault(c));
      },
      check: () => (out.eagain ? [out.eagain, ...queuedOnFree(c, X)] : queuedOnFree(c, X)),
      finish: () => settled(m, pte.pfn, pte.pfn === D ? X : D, 'its PTE'),
    };
  },
};

/** Threads of {@link scenario9cPasses} that keep touching the page. */
export const S29_THREADS = 4;

/**
 * S29 in full: four threads of one process keep touching anonymous page X (mapped by one
 * PTE, isolated) while move_pages() migrates it: do_move_pages_to_node() calls
 * migrate_pages() with MIGRATE_SYNC, which makes ten passes over X. A touch enters the
 * kernel only when the PTE is a migration entry: each thread sleeps until the migrator
 * installs one, then faults (do_swap_page) and waits as in {@link scenario9c}, and after
 * waking refaults and touches again. A pass counts X's references after the migration
 * entry is in place: the isolation reference must be the last. What happens between passes
 * is the profile's:
 * - v4.8, v6.0 (`unmap_and_move()` per pass): a failed pass restores the PTE, unlocks X
 *   (waking the waiters) and releases the target; the next one takes a new target, locks X
 *   and installs the migration entry again;
 * - v6.3, v6.17 (`migrate_pages_sync()`): a `migrate_pages_batch()` in MIGRATE_ASYNC with
 *   NR_MAX_MIGRATE_ASYNC_RETRY (3) passes unmaps X once and keeps it locked and unmapped
 *   while the move is retried; after its third pass the batch's cleanup loop
 *   (`migrate_folio_undo_src()`, `migrate_folio_undo_dst()`) restores the PTE, unlocks X
 *   (waking the waiters, which refault on X and touch it again) and releases the target.
 *   X is then migrated alone by `migrate_pages_batch()` in MIGRATE_SYNC with
 *   NR_MAX_MIGRATE_SYNC_RETRY (7) passes: a new target, X locked and unmapped again, seven
 *   move attempts, and the same undo if the last one fails.
 *
 * Variants:
 * - `buggy`, as before 5.17: every waiter takes a reference on X. With `wait_on_page_locked`
 *   (v4.8) it holds it while it sleeps, and sleeps again if woken onto a page locked
 *   again, so threads that fault faster than the migrator counts make every pass fail with
 *   -EAGAIN, and after ten passes the migration fails. With `put_and_wait_on_page_locked`
 *   (5.0–5.16, the buggy variant of the 6.x profiles) the reference is dropped once the
 *   thread is queued, and a pass fails only while a thread stays between its get and its
 *   put.
 * - `fixed` (5.17): waiters queue under the PTE lock without a reference; the first pass
 *   migrates X, and the waiters, woken by its unlock, refault on the new page.
 *
 * The run fails when the migration failed after its ten passes. `explore` searches it with
 * PCT unless told otherwise.
 */
export const scenario9cPasses: Scenario = {
  name: '9c-passes',
  description:
    'S29: four threads keep faulting on a page that move_pages migrates with MIGRATE_SYNC, ten passes (v6.3+: three in an async batch, which is then undone, and seven on the page alone; buggy: their references fail every pass with -EAGAIN and the migration fails; fixed: they wait without one and the first pass migrates)',
  variants: BUGGY_FIXED,
  profiles: EVERY_PROFILE,
  refs: 'spec §9c, S29',
  // A pass fails only while a waiter that took its reference stays preempted.
  strategy: 'pct',
  setup({ variant, profile }: ScenarioContext) {
    const { m, c, X, D } = faultSetup(variant, profile);
    const p = m.mem.pages;
    const { op, pte } = c;
    /** Wait key of the threads touching X while its PTE is present. */
    const touching = `touch:${X}`;
    // The target, the count each failed pass found, and whether the migration is over.
    const run = { dst: D, counts: [] as number[], over: false, moved: false };

    /** Lock X: a trylock, sleeping for it if another task holds it. */
    function* lockX(): KernelGen {
      if (m.sched.preemptible) yield { op: op.lock, pfn: X };
      if (!trylockPage(m.mem, X)) yield* lockPage(m, X, op.lock);
    }

    /** Unmap X: the threads touching it now fault on the migration entry. */
    function* unmap(): KernelGen {
      yield* installMigrationEntry(c, X);
      m.sched.wake(touching);
    }

    /** The reference count check of the move; whether X may move. */
    function* count(): KernelGen<boolean> {
      if (m.sched.preemptible) yield { op: op.count, pfn: X, note: '== 1?' };
      const n = p.refcount[X];
      if (n !== 1) run.counts.push(n);
      return n === 1;
    }

    /** The migration is over: the PTE maps `moved ? dst : X` again, X is unlocked. */
    function* end(moved: boolean): KernelGen<boolean> {
      yield* removeMigrationPtes(c, moved ? run.dst : X);
      yield* endMigration(m, op, X, run.dst, moved);
      run.over = true;
      run.moved = moved;
      m.sched.wake(touching);
      return moved;
    }

    /**
     * A failed attempt undone: the migration entry becomes X's PTE again, X is unlocked
     * (waking the waiters) and the target is released.
     */
    function* undo(unlockNote: string, putNote: string): KernelGen {
      yield* removeMigrationPtes(c, X);
      if (m.sched.preemptible) yield { op: op.unlock, pfn: X, note: unlockNote };
      unlockPage(m, X);
      if (m.sched.preemptible) yield { op: op.put, pfn: run.dst, note: putNote };
      putPage(m.mem, run.dst);
    }

    /** get_new_page(): a fresh target for the next attempt. */
    function* newTarget(note: string): KernelGen {
      if (m.sched.preemptible) yield { op: 'get_new_page', note };
      run.dst = m.allocPages(GFP.HIGHUSER_MOVABLE, 0, 'target');
    }

    /** v4.8, v6.0: ten calls of unmap_and_move(), each with a target of its own. */
    function* unmapAndMovePasses(): KernelGen<boolean> {
      for (let pass = 1; ; pass++) {
        if (pass > 1) yield* newTarget('a new target');
        yield* lockX();
        yield* unmap();
        const moved = yield* count();
        if (moved || pass === NR_MAX_MIGRATE_PAGES_RETRY) return yield* end(moved);
        yield* undo(`pass ${pass}: -EAGAIN`, 'put_new_page');
      }
    }

    /**
     * One migrate_pages_batch() on X alone with `nrPass` passes: lock X, unmap it, then
     * retry the move while X stays locked and unmapped. Returns whether X moved; with
     * `last`, a failure ends the migration, else the caller undoes it.
     */
    function* batch(nrPass: number, mode: string, last: boolean): KernelGen<boolean> {
      yield* lockX();
      yield* unmap();
      for (let pass = 1; ; pass++) {
        const moved = yield* count();
        if (moved || (last && pass === nrPass)) return yield* end(moved);
        if (pass === nrPass) return false;
        if (m.sched.preemptible)
          yield {
            op: 'migrate_folio_move',
            pfn: X,
            note: `${mode} pass ${pass}: -EAGAIN, X stays locked and unmapped`,
          };
      }
    }

    /**
     * v6.3, v6.17: migrate_pages_sync(), as move_pages() (MIGRATE_SYNC) calls it. First a
     * migrate_pages_batch() in MIGRATE_ASYNC with NR_MAX_MIGRATE_ASYNC_RETRY (3) passes; its
     * cleanup loop then undoes what did not move (migrate_folio_undo_src: the migration
     * entry becomes X's PTE again and X is unlocked, waking the waiters;
     * migrate_folio_undo_dst: the target is released). Then X is migrated alone with
     * migrate_pages_batch(MIGRATE_SYNC, NR_MAX_MIGRATE_SYNC_RETRY = 7): a fresh target, and
     * X locked and unmapped again.
     */
    function* syncPasses(): KernelGen<boolean> {
      if (yield* batch(NR_MAX_MIGRATE_ASYNC_RETRY, 'async', false)) return true;
      yield* undo(
        'migrate_folio_undo_src after the async batch',
        'migrate_folio_undo_dst: put_new_folio',
      );
      yield* newTarget('a new target, X alone');
      return yield* batch(NR_MAX_MIGRATE_SYNC_RETRY, 'sync', true);
    }

    const migrator = m.mem.profile.migrateAlgo === 'batched' ? syncPasses : unmapAndMovePasses;

    /** A thread touching X until the migration is over. */
    function* thread(): KernelGen<boolean> {
      for (;;) {
        if (run.over) return true;
        if (!pte.migration) {
          yield {
            op: 'block',
            key: touching,
            what: 'touching the page (no fault while its PTE is present)',
            pfn: pte.pfn,
          };
          continue;
        }
        yield* fault(c);
      }
    }

    return {
      machine: m,
      state: [c.pte, c.seen, c.ptl, run],
      start: () => {
        m.sched.spawn('migrator', migrator);
        for (let i = 0; i < S29_THREADS; i++) m.sched.spawn(`thread${i}`, thread);
      },
      check: () => {
        const out = queuedOnFree(c, X);
        if (run.over && !run.moved) {
          const extra = run.counts.map((n) => n - 1);
          const most = Math.max(...extra);
          const who =
            most === 1
              ? 'a faulting thread'
              : `${extra.every((n) => n === most) ? '' : 'up to '}${most} faulting threads`;
          out.push(
            `migration of ${hexPfn(X)} failed after ${run.counts.length} passes with -EAGAIN (refcount ${run.counts.join(', ')}; expected 1): ` +
              `at every count, ${who} held a reference taken on its migration entry ` +
              (c.op.wait === 'put_and_wait_on_page_locked'
                ? '(put_and_wait_on_page_locked drops it only once the thread is queued: each count ran between a get and its put)'
                : '(wait_on_page_locked holds it while the thread sleeps on the page lock)'),
          );
        }
        return out;
      },
      finish: () => settled(m, pte.pfn, pte.pfn === run.dst ? X : run.dst, 'its PTE'),
    };
  },
};
