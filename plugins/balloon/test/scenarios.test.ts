import { explore, findScenario, replay, scenarios } from '@mops/explorer';
import { describe, expect, it } from 'vitest';
import { balloonDeflateVsIsolate, registerBalloonScenarios } from '../src/index.js';

registerBalloonScenarios();

const NAME = 'balloon-deflate-vs-isolate';

describe('balloon race scenarios', () => {
  it('registers balloon-deflate-vs-isolate with buggy and fixed variants, idempotently', () => {
    registerBalloonScenarios();
    expect(findScenario(NAME)).toBe(balloonDeflateVsIsolate);
    expect(scenarios().filter((s) => s.name === NAME)).toHaveLength(1);
    expect(findScenario(NAME)?.variants).toEqual(['buggy', 'fixed']);
  });

  describe.each(balloonDeflateVsIsolate.profiles)('on %s', (profile) => {
    it.each(['random', 'pct'] as const)(
      'buggy variant fails under %s; the shrunk schedule replays the failure',
      (strategy) => {
        const r = explore(NAME, { variant: 'buggy', strategy, profile, runs: 2000 });
        expect(r.failed).toBe(true);
        expect(r.failure?.message).toMatch(/private 0|deflated while isolated/);
        expect(r.preemptions).toBeGreaterThanOrEqual(1);
        const rep = replay(NAME, { variant: 'buggy', profile, schedule: r.schedule! });
        expect(rep.failed).toBe(true);
        expect(rep.diverged).toBe(false);
        expect(rep.failure).toEqual(r.failure);
      },
    );

    it('fixed variant passes random and PCT runs', () => {
      expect(
        explore(NAME, { variant: 'fixed', strategy: 'random', profile, runs: 500 }),
      ).toMatchObject({ failed: false, schedules: 500 });
      expect(
        explore(NAME, { variant: 'fixed', strategy: 'pct', profile, runs: 500 }),
      ).toMatchObject({
        failed: false,
        schedules: 500,
      });
    }, 60_000);
  });
});
