import { explore, findScenario, replay, type Scenario, scenarios } from '@mops/explorer';
import { describe, expect, it } from 'vitest';
import {
  balloonDeflateVsIsolate,
  balloonPrivateVsIsolate,
  balloonScenarios,
  registerBalloonScenarios,
} from '../src/index.js';

registerBalloonScenarios();

/**
 * What each buggy variant must report: the kernel functions and the consequence, not only
 * the state the balloon's invariants see.
 */
const CONSEQUENCE: Record<string, Record<string, RegExp>> = {
  'balloon-deflate-vs-isolate': {
    'v4.8':
      /^balloon_page_dequeue deflated pfn 0x[01] while the VM holds it isolated .*lock_page.*PG_isolated.*balloon_page_delete cleared its movable mapping and private.*isolated_pages never comes down for it$/,
    'v6.0':
      /^balloon_page_dequeue deflated pfn .*list_add\(&page->lru, pages\).*corrupting that list$/,
    'v6.3':
      /^balloon_page_dequeue deflated pfn .*list_add\(&page->lru, pages\).*corrupting that list$/,
  },
  'balloon-private-vs-isolate': {
    'v6.17':
      /^balloon_page_isolate read page->private of pfn 0x[01] before taking that device's pages_lock, and leak_balloon deflated the page in between .*list_del\(&page->lru\) (takes it off leak_balloon's list|runs on the LIST_POISON).*WARN_ON_ONCE/,
  },
};

const cases = (s: Scenario) => s.profiles.map((profile) => [s.name, profile] as const);

describe('balloon race scenarios', () => {
  it('registers both scenarios with buggy and fixed variants, idempotently', () => {
    registerBalloonScenarios();
    expect(balloonScenarios).toEqual([balloonDeflateVsIsolate, balloonPrivateVsIsolate]);
    for (const s of balloonScenarios) {
      expect(findScenario(s.name)).toBe(s);
      expect(scenarios().filter((x) => x.name === s.name)).toHaveLength(1);
      expect(s.variants).toEqual(['buggy', 'fixed']);
    }
    // The 2026 balloon (no page lock) exists only from v6.17; the dequeue mistake needs the
    // classic design of v4.8-v6.3, the releases whose dequeue re-checks PG_isolated.
    expect(balloonDeflateVsIsolate.profiles).toEqual(['v6.3', 'v6.0', 'v4.8']);
    expect(balloonPrivateVsIsolate.profiles).toEqual(['v6.17']);
  });

  it('each buggy variant is labelled a mistake no release shipped, and cites the spec', () => {
    expect(balloonDeflateVsIsolate.description).toMatch(/buggy, a mistake no release shipped/);
    expect(balloonPrivateVsIsolate.description).toMatch(/buggy, a combination no release/);
    expect(balloonPrivateVsIsolate.refs).toMatch(/§9f/);
  });

  describe.each(balloonScenarios.flatMap(cases))('%s on %s', (name, profile) => {
    it.each(['random', 'pct'] as const)(
      'buggy variant fails under %s with the kernel consequence; the shrunk schedule replays it',
      (strategy) => {
        const r = explore(name, { variant: 'buggy', strategy, profile, runs: 2000 });
        expect(r.failed).toBe(true);
        expect(r.failure?.kind).toBe('assertion');
        expect(r.failure?.message).toMatch(CONSEQUENCE[name][profile]);
        expect(r.preemptions).toBeGreaterThanOrEqual(1);
        const rep = replay(name, { variant: 'buggy', profile, schedule: r.schedule! });
        expect(rep.failed).toBe(true);
        expect(rep.diverged).toBe(false);
        expect(rep.failure).toEqual(r.failure);
      },
    );

    it('fixed variant: DFS exhausts its schedules without a failure', () => {
      const r = explore(name, { variant: 'fixed', strategy: 'dfs', profile, runs: 100_000 });
      expect(r.failed).toBe(false);
      expect(r.exhausted).toBe(true);
      expect(r.schedules).toBeGreaterThan(1000);
    }, 60_000);
  });
});
