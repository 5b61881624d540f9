/**
 * Races on the reference count of a folio under migration: the freeze that decides whether
 * anyone else holds a reference (spec §9b). The faulting threads that wait for a migration
 * to finish (§9c, S29) are in ./migration_entry.ts.
 * @module
 */

import {
  folioRefFreeze,
  folioRefUnfreeze,
  folioTryGet,
  getPage,
  hexPfn,
  type KernelGen,
  putPage,
  trylockPage,
} from '@mops/core';
import { endMigration, isolatedWithTarget, refSteps, settled } from './migration_steps.js';
import { BUGGY_FIXED, EVERY_PROFILE, raceMachine } from './race_machine.js';
import { cpuRelax } from './relax.js';
import type { Scenario, ScenarioContext } from './scenario.js';

/**
 * 9b: migration of a page-cache folio P (locked, isolated: the page cache's reference and
 * the migrator's, so 2 expected) against a lockless page-cache lookup (filemap_get_entry,
 * find_get_entry in v4.8: load the slot, get the folio unless its count is zero, re-check
 * the slot; a failed get or a changed slot repeats from the load, with no bound, so the
 * lookup spins while P's count is frozen, and yields the cpu_relax point that marks a busy
 * loop in each such round). Fixed: the
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
    'refcount pre-check trusted in place of the freeze in folio_migrate_mapping (buggy, a mistake no release shipped: check, then store 0; fixed: folio_ref_freeze decides, with or without the pre-check of v4.8)',
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
    // `frozen` is set while the migrator believes P's count frozen; `checked` is the count
    // the pre-check read and `before` the count the freeze replaced; `found` is the folio the
    // lookup returned (-1: not yet).
    const cache = { slot: P, held: -1, frozen: false, checked: -1, before: -1, found: -1 };
    const preempt = (): boolean => m.sched.preemptible;
    // What the release calls the page-cache entry: v4.8 has no folios.
    const unit = mem.profile.hasFolios ? 'folio' : 'page';

    /** The count becomes 0: by compare-and-exchange, or (buggy) by a plain store. */
    function* freeze(): KernelGen<boolean> {
      if (buggy) {
        if (preempt()) yield { op: op.setCount, pfn: P, note: '0, trusting the pre-check' };
        cache.before = p.refcount[P];
        p.refcount[P] = 0;
        return true;
      }
      if (preempt()) yield { op: op.freeze, pfn: P, note: `${expected} -> 0` };
      cache.before = p.refcount[P];
      return folioRefFreeze(mem, P, expected);
    }

    function* migrator(): KernelGen<boolean> {
      if (preempt()) yield { op: op.lock, pfn: P };
      if (!trylockPage(mem, P)) return false;
      let moved = false;
      let ok = true;
      if (buggy || op.precheck) {
        if (preempt()) yield { op: op.count, pfn: P, note: `== ${expected}?` };
        cache.checked = p.refcount[P];
        ok = cache.checked === expected;
      }
      if (ok && (yield* freeze())) {
        cache.frozen = true;
        if (preempt())
          yield {
            op: op.store,
            pfn: D,
            note: `the slot now holds the new ${unit}`,
          };
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

    // filemap_get_entry() (find_get_entry() in v4.8): `goto repeat` after a failed get or a
    // changed slot, for as long as it takes. A failed get waits for another task (the
    // migrator's unfreeze, or its store of the new folio in the slot once P is freed): that
    // round ends at the cpu_relax point, which marks the busy loop for the scheduler (the
    // kernel's loop is a bare `goto repeat`, with no cpu_relax() call). A changed slot waits
    // for no one: the next round loads the new folio.
    function* lookup(): KernelGen<number> {
      for (;;) {
        if (preempt()) yield { op: op.load };
        const f = cache.slot;
        if (preempt()) yield { op: op.get, pfn: f };
        if (!folioTryGet(mem, f)) {
          yield* cpuRelax(f, `${op.get} failed: repeat`);
          continue;
        }
        cache.held = f;
        if (preempt()) yield { op: op.reload, pfn: f };
        const again = cache.slot === f;
        if (preempt())
          yield {
            op: op.put,
            pfn: f,
            note: again ? `done with the ${unit}` : 'slot changed: repeat',
          };
        cache.held = -1;
        putPage(mem, f);
        if (again) {
          cache.found = f;
          return f;
        }
      }
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
          ? [
              `${hexPfn(P)} is frozen while the lookup holds a reference to it: the pre-check read ${cache.checked} (expected ${expected}), the lookup's get made it ${cache.before}, and the plain store of 0 wiped that reference out (a step no release took: ${op.freeze}'s compare-and-exchange fails on ${cache.before}), so the lookup's put will find a zero count`,
            ]
          : [],
      finish: () => [
        ...(cache.found < 0
          ? [
              `the lookup returned no ${unit} although the slot held one throughout (a lookup repeats until its get succeeds on the ${unit} the slot still holds)`,
            ]
          : []),
        ...settled(m, cache.slot, cache.slot === D ? P : D, 'the page cache'),
      ],
    };
  },
};
