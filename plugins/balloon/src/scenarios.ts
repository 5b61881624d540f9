/**
 * Balloon race scenarios for `@mops/explorer` (spec §6.2, §6.4, catalogue S22): deflation
 * racing compaction's isolation, migration and putback of balloon pages, with a `buggy`
 * variant that switches on a {@link BalloonMistakes} mistake and a `fixed` variant that is
 * the plugin as it is.
 * @module
 */

import { createMachine, hexPfn, type KernelGen } from '@mops/core';
import { BUGGY_FIXED, isolateThenMigrate, registerScenario, type Scenario } from '@mops/explorer';
import { balloonInvariants } from './check.js';
import type { BalloonMistakes } from './device.js';
import { VirtioBalloon } from './virtio.js';

/**
 * balloon-deflate-vs-isolate: a two-page balloon deflates completely (leak_balloon, retried
 * when pages are isolated) while one compaction task isolates and migrates one page and
 * another isolates the other page and puts it back.
 *
 * - fixed: the dequeue takes only pages on the balloon list, which an isolated page has
 *   left (§6.4), and trylocks each one (v4.8–v6.3), so it never takes a page the VM holds;
 *   leak_balloon just gets fewer pages and retries.
 * - buggy: {@link BalloonMistakes.dequeueWaitsForPageLock}: the dequeue notes a listed
 *   page, sleeps for its lock while the VM isolates it, then deflates it without
 *   re-checking PG_isolated: the page is deflated (its `private` cleared, the balloon's
 *   reference dropped) while the VM still holds it isolated and counted in
 *   `isolated_pages`. The balloon checker reports it.
 *
 * Every step checks that no page counted isolated has been deflated; at the end the
 * driver, the host and the buddy allocator agree on where every page is.
 */
export const balloonDeflateVsIsolate: Scenario = {
  name: 'balloon-deflate-vs-isolate',
  description:
    'balloon deflate racing isolation, migration and putback (buggy: dequeue sleeps for the page lock and skips no isolated page)',
  variants: BUGGY_FIXED,
  profiles: ['v6.3', 'v6.0', 'v4.8'],
  refs: 'spec §6.2, §6.4, S22',
  setup({ variant, profile }) {
    const m = createMachine({
      memory: '2M',
      zones: 'normal-only',
      minFreeKbytes: 0,
      contents: false,
      profile,
      seed: 1,
    });
    const mistakes: BalloonMistakes | undefined =
      variant === 'buggy' ? { dequeueWaitsForPageLock: true } : undefined;
    const vb = new VirtioBalloon(m, { mistakes });
    m.registerInvariantChecker('balloon', () => balloonInvariants(vb));
    const before = m.mem.nrFreePages();
    m.run(() => vb.fill(2));
    const [p1, p2] = vb.dev.listPages();
    const p = m.mem.pages;
    return {
      machine: m,
      state: [vb],
      start: () => {
        m.sched.spawn('migrate', () => isolateThenMigrate(m, p1, true));
        m.sched.spawn('putback', () => isolateThenMigrate(m, p2, false));
        m.sched.spawn('leak', function* (): KernelGen {
          // The config-change work retries a short leak later.
          for (let i = 0; i < 3 && vb.numPages > 0; i++) {
            yield* vb.leak(2);
            if (m.sched.preemptible) yield { op: 'queue_work', note: 'update_balloon_size' };
          }
        });
      },
      check: () => {
        const out: string[] = [];
        for (const pfn of [p1, p2])
          if (vb.dev.isCountedIsolated(pfn) && p.priv[pfn] !== vb.dev.id)
            out.push(`pfn ${hexPfn(pfn)} was deflated while isolated`);
        return out;
      },
      finish: () => {
        const out: string[] = [];
        const lost = before - m.mem.nrFreePages() - vb.numPages;
        if (lost !== 0) out.push(`${lost} page(s) neither in the balloon nor free at the end`);
        if (vb.dev.isolatedPages !== 0)
          out.push(`isolated_pages is ${vb.dev.isolatedPages} with no compaction running`);
        return out;
      },
    };
  },
};

/** The balloon race scenarios. */
export const balloonScenarios: readonly Scenario[] = [balloonDeflateVsIsolate];

/**
 * Registers the balloon race scenarios with `@mops/explorer` (idempotent: a second call
 * replaces them with themselves).
 */
export function registerBalloonScenarios(): void {
  for (const s of balloonScenarios) registerScenario(s, { replace: true });
}
