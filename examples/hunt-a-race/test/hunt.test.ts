import { explore } from '@mops/explorer';
import { describe, expect, it } from 'vitest';
import { hunt, huntOwnRace, registerOnePageRelease } from '../src/index.js';

describe('hunt-a-race example', () => {
  it('finds 9a, reproduces it by replay, and proves the fix within the bound', () => {
    const h = hunt();
    expect(h.bug.report).toContain('isolated page');
    expect(h.bug.report).toContain('mops replay 9a --variant buggy');
    expect(h.replayFails).toBe(true);
    expect(h.fixed).toEqual({ schedules: expect.any(Number), exhausted: true, failed: false });
    expect(h.fixed.schedules).toBeGreaterThan(0);
  });

  it.each(['v6.3', 'v6.0', 'v4.8'])(
    "%s: finds a driver's early release of an isolated page, and clears the release by the rule",
    (profile) => {
      const h = huntOwnRace(profile);
      // The VM reports the release itself, meeting the page with only its isolation
      // reference left; the scenario's own check (the putback_page call) follows.
      expect(h.bug.message).toMatch(
        /^protocol_violation: onepage: the owner dropped its references to an isolated page but left it PageMovable \(only the VM's isolation reference is left at putback_movable_pages\)/,
      );
      expect(h.bug.report).toContain('mops replay onepage-release --variant buggy');
      expect(h.fixed).toEqual({ schedules: expect.any(Number), exhausted: true, failed: false });
      expect(h.fixed.schedules).toBeGreaterThan(1);
    },
  );

  it('the README’s pct hunt reports a shrunk size only when shrinking made it smaller', () => {
    registerOnePageRelease();
    const r = explore('onepage-release', { variant: 'buggy', strategy: 'pct' });
    expect(r.failed).toBe(true);
    const m = /^schedule: (.*?)(?: \(shrunk from (.*)\))?$/m.exec(r.report ?? '');
    expect(m).not.toBeNull();
    if (m?.[2] !== undefined) expect(m[2]).not.toBe(m[1]);
    if (r.shrunkFrom)
      expect(r.shrunkFrom).not.toEqual({ steps: r.steps, preemptions: r.preemptions });
  });
});
