/**
 * Balloon race scenarios for `@mops/explorer` (spec §6.1, §6.2, §6.4, §9f, catalogue S22):
 * deflation racing compaction's isolation, migration and putback of balloon pages. Each has a
 * `buggy` variant that switches on a {@link BalloonMistakes} mistake and a `fixed` variant
 * that is the plugin as it is. No release shipped either mistake: in v4.8-v6.17 the page lock
 * and the list lock together keep deflation away from a page the VM isolates, and the 2026
 * rework put the global lock in place before it dropped the page lock.
 * @module
 */

import { createMachine, hexPfn, type KernelGen, type Machine, type ProfileName } from '@mops/core';
import {
  BUGGY_FIXED,
  isolateThenMigrate,
  registerScenario,
  type Scenario,
  type ScenarioInstance,
} from '@mops/explorer';
import { balloonInvariants } from './check.js';
import { VirtioBalloon, type VirtioBalloonOptions } from './virtio.js';

/** A race on a two-page balloon: the machine, the driver and its two pages. */
interface BalloonRace {
  readonly m: Machine;
  readonly vb: VirtioBalloon;
  /** The balloon's pages: the first is migrated, the second put back. */
  readonly pages: readonly [number, number];
  /** Free pages before the balloon was filled. */
  readonly before: number;
}

/** A 2 MiB machine with a virtio balloon of two pages, the driver built with `opts`. */
function balloonRace(profile: ProfileName, opts: VirtioBalloonOptions): BalloonRace {
  const m = createMachine({
    memory: '2M',
    zones: 'normal-only',
    minFreeKbytes: 0,
    contents: false,
    profile,
    seed: 1,
  });
  const vb = new VirtioBalloon(m, opts);
  const before = m.mem.nrFreePages();
  m.run(() => vb.fill(2));
  const [p1, p2] = vb.dev.listPages();
  return { m, vb, pages: [p1, p2], before };
}

/**
 * The racing tasks: one compaction task isolates and migrates the first page, another
 * isolates the second and puts it back, and the driver deflates the whole balloon
 * (leak_balloon; the config-change work retries while pages are isolated).
 */
function spawnRace({ m, vb, pages: [p1, p2] }: BalloonRace): void {
  m.sched.spawn('migrate', () => isolateThenMigrate(m, p1, true));
  m.sched.spawn('putback', () => isolateThenMigrate(m, p2, false));
  m.sched.spawn('leak', function* (): KernelGen {
    for (let i = 0; i < 3 && vb.numPages > 0; i++) {
      yield* vb.leak(2);
      if (m.sched.preemptible) yield { op: 'queue_work', note: 'update_balloon_size' };
    }
  });
}

/** The pages of the race the device counts isolated although deflation took them. */
function deflatedWhileIsolated({ m, vb, pages }: BalloonRace): number[] {
  const dev = vb.dev;
  return pages.filter((pfn) => dev.isCountedIsolated(pfn) && m.mem.pages.priv[pfn] !== dev.id);
}

/**
 * The checks after every step: first the race's own (`consequence` of each page deflated
 * while the VM holds it isolated), then the balloon's invariants. They run as the scenario's
 * assertions, after the machine's invariant checker, so that the kernel consequence leads.
 */
function stepCheck(r: BalloonRace, consequence: (pfn: number) => string): string[] {
  const out = deflatedWhileIsolated(r).map(consequence);
  out.push(...balloonInvariants(r.vb));
  return out;
}

/** The checks at the end: every page is in the balloon or free, nothing counted isolated. */
function finishCheck({ m, vb, before }: BalloonRace): string[] {
  const out: string[] = [];
  const lost = before - m.mem.nrFreePages() - vb.numPages;
  if (lost !== 0) out.push(`${lost} page(s) neither in the balloon nor free at the end`);
  if (vb.dev.isolatedPages !== 0)
    out.push(
      `isolated_pages is ${vb.dev.isolatedPages} with no compaction running: the balloon counts pages it no longer has, and balloon_page_dequeue's BUG for lost pages can no longer fire`,
    );
  return out;
}

/**
 * The scenario instance of a balloon race: its tasks, the checks after every step
 * (`consequence` of each page deflated while isolated, then the balloon's invariants) and
 * at the end.
 */
function raceInstance(r: BalloonRace, consequence: (pfn: number) => string): ScenarioInstance {
  return {
    machine: r.m,
    state: [r.vb],
    start: () => spawnRace(r),
    check: () => stepCheck(r, consequence),
    finish: () => finishCheck(r),
  };
}

/**
 * balloon-deflate-vs-isolate: a two-page balloon deflates completely (leak_balloon, retried
 * when pages are isolated) while one compaction task isolates and migrates one page and
 * another isolates the other page and puts it back.
 *
 * - fixed, as every release (v4.8-v6.3 here): balloon_page_list_dequeue walks the list under
 *   the list lock and only trylocks each page, so a page it takes is on the list, and the
 *   VM, which isolates with the page locked and unlinks the page under the list lock in
 *   balloon_page_isolate, cannot be isolating it (the PG_isolated skip is dead code for
 *   that reason, removed in 6.17 by "mm/balloon_compaction: we cannot have isolated pages
 *   in the balloon list"). An isolated page is not on the list; leak_balloon just gets
 *   fewer pages and retries (§6.4).
 * - buggy, a mistake no release shipped ({@link BalloonMistakes.dequeueWaitsForPageLock}):
 *   the dequeue notes a listed page, drops the list lock to sleep in lock_page while the
 *   VM isolates the page, then deflates it without re-checking PG_isolated.
 *   balloon_page_delete clears the movable mapping and `private` of a page the VM holds;
 *   the VM then ends the isolation without the balloon (putback only clears PG_isolated,
 *   migration completes as for a page its owner released), so `isolated_pages` never comes
 *   down for it. In v6.0/v6.3 the dequeue's list_add also relinks the lru the VM's
 *   migration list runs through.
 *
 * The oracle names that consequence at the step the page is deflated; the balloon's
 * invariants are checked after it, and at the end the driver, the host and the buddy
 * allocator must agree on where every page is.
 */
export const balloonDeflateVsIsolate: Scenario = {
  name: 'balloon-deflate-vs-isolate',
  description:
    'balloon deflate racing isolation, migration and putback (buggy, a mistake no release shipped: the dequeue sleeps in lock_page off the list lock and takes a page the VM isolated meanwhile; fixed: trylock under the list lock, as every release)',
  variants: BUGGY_FIXED,
  profiles: ['v6.3', 'v6.0', 'v4.8'],
  refs: 'spec §0.2, §6.2, §6.4, S22',
  setup({ variant, profile }) {
    const r = balloonRace(profile, {
      mistakes: variant === 'buggy' ? { dequeueWaitsForPageLock: true } : undefined,
    });
    const listAdd = r.vb.dev.rules.leakReleasesLifo;
    const consequence = (pfn: number): string =>
      `balloon_page_dequeue deflated pfn ${hexPfn(pfn)} while the VM holds it isolated (it slept in lock_page after finding the page on the list and did not re-check PG_isolated): balloon_page_delete cleared its movable mapping and private, so the VM ends the isolation without the balloon (putback only clears PG_isolated, migration completes as for a released page) and b_dev_info->isolated_pages never comes down for it${listAdd ? "; balloon_page_list_dequeue's list_add(&page->lru, pages) also relinked the lru the VM's migration list still runs through, corrupting that list" : ''}`;
    return raceInstance(r, consequence);
  },
};

/**
 * balloon-private-vs-isolate (spec §9f): the same race with the 2026 balloon, which no longer
 * takes the page lock, so nothing but the balloon's own lock keeps deflation (which clears
 * `page->private`) away from balloon_page_isolate (which finds the device through it).
 *
 * - fixed, the 2026 rework as merged ("mm/balloon_compaction: use a device-independent
 *   balloon (list) lock", then "... remove dependency on page lock"): one global
 *   `balloon_pages_lock` for every device; isolation reads `private` under it and refuses a
 *   page whose `private` is already clear, and deflation clears `private` under it.
 * - buggy, a combination no release or commit had
 *   ({@link BalloonMistakes.perDeviceLockWithoutPageLock}): the page lock dropped but the lock
 *   kept in balloon_dev_info, as before the rework. Isolation reads `private`, deflation
 *   dequeues the page and clears `private`, and isolation then takes the device's lock and
 *   does `list_del(&page->lru)` on a page that is on leak_balloon's list (which then never
 *   frees it, though the host hears it deflated) or, once release_pages_balloon unlinked it,
 *   LIST_POISON (list_del corruption); either way `isolated_pages` counts a page the balloon
 *   no longer has, and migrate and putback find no `b_dev_info` (WARN_ON_ONCE). The series
 *   names this race as the reason for the global lock ("The current lock in
 *   balloon_dev_info is therefore not suitable"). The v6.17 release reads `private` the same
 *   way, but under the page lock the VM holds for isolate_page, which deflation's
 *   trylock_page respects: no window there.
 */
export const balloonPrivateVsIsolate: Scenario = {
  name: 'balloon-private-vs-isolate',
  description:
    "balloon deflation clearing page->private racing balloon_page_isolate's device lookup, 2026 balloon without the page lock (buggy, a combination no release or commit had: the per-device lock found through page->private; fixed: the global balloon_pages_lock, private read under it)",
  variants: BUGGY_FIXED,
  profiles: ['v6.17'],
  refs: 'spec §6.1, §6.2, §9f',
  setup({ variant, profile }) {
    const r = balloonRace(profile, {
      design: '2026',
      mistakes: variant === 'buggy' ? { perDeviceLockWithoutPageLock: true } : undefined,
    });
    const p = r.m.mem.pages;
    const consequence = (pfn: number): string => {
      // The VM holds its isolation reference; a second one is the balloon's, which
      // release_pages_balloon drops right after its list_del.
      const lru =
        p.refcount[pfn] > 1
          ? "takes it off leak_balloon's list, so release_pages_balloon never frees it although the host hears it deflated"
          : 'runs on the LIST_POISON release_pages_balloon left in it before its put_page: list_del corruption (a GPF without CONFIG_DEBUG_LIST)';
      return `balloon_page_isolate read page->private of pfn ${hexPfn(pfn)} before taking that device's pages_lock, and leak_balloon deflated the page in between (balloon_page_list_dequeue cleared private and took it off the balloon list): the isolation's list_del(&page->lru) ${lru}, and isolated_pages counts a page the balloon no longer has (balloon_page_migrate and balloon_page_putback find no b_dev_info, WARN_ON_ONCE, and it never comes down)`;
    };
    return raceInstance(r, consequence);
  },
};

/** The balloon race scenarios. */
export const balloonScenarios: readonly Scenario[] = [
  balloonDeflateVsIsolate,
  balloonPrivateVsIsolate,
];

/**
 * Registers the balloon race scenarios with `@mops/explorer` (idempotent: a second call
 * replaces them with themselves).
 */
export function registerBalloonScenarios(): void {
  for (const s of balloonScenarios) registerScenario(s, { replace: true });
}
