import { explore, findScenario, replay, scenarios } from '@mops/explorer';
import { describe, expect, it } from 'vitest';
import { registerZsmallocScenarios, zsmallocScenarios } from '../src/index.js';

registerZsmallocScenarios();

const cases = zsmallocScenarios.flatMap((s) => s.profiles.map((p) => [s.name, p] as const));

describe('zsmalloc race scenarios', () => {
  it('registers the scenarios with buggy and fixed variants, idempotently', () => {
    registerZsmallocScenarios();
    for (const name of [
      'zsmalloc-free-vs-migrate',
      'zsmalloc-read-vs-migrate',
      'zsmalloc-fullness-vs-isolated',
      'zsmalloc-malloc-vs-isolated',
    ]) {
      expect(findScenario(name)).toBeDefined();
      expect(scenarios().filter((s) => s.name === name)).toHaveLength(1);
      expect(findScenario(name)?.variants).toEqual(['buggy', 'fixed']);
    }
  });

  describe.each(cases)('%s on %s', (name, profile) => {
    it.each(['random', 'pct'] as const)(
      'buggy variant fails under %s; the shrunk schedule replays the failure',
      (strategy) => {
        const r = explore(name, { variant: 'buggy', strategy, profile, runs: 2000 });
        expect(r.failed).toBe(true);
        expect(r.schedule).toMatch(new RegExp(`^v1:${name}:`));
        expect(r.preemptions).toBeGreaterThanOrEqual(1);
        const rep = replay(name, { variant: 'buggy', profile, schedule: r.schedule! });
        expect(rep.failed).toBe(true);
        expect(rep.diverged).toBe(false);
        expect(rep.failure).toEqual(r.failure);
        // The same interleaving is harmless with the fix.
        expect(replay(name, { variant: 'fixed', profile, schedule: r.schedule! }).failed).toBe(
          false,
        );
      },
    );

    it('fixed variant passes random and PCT runs', () => {
      expect(
        explore(name, { variant: 'fixed', strategy: 'random', profile, runs: 500 }),
      ).toMatchObject({ failed: false, schedules: 500 });
      expect(
        explore(name, { variant: 'fixed', strategy: 'pct', profile, runs: 500 }),
      ).toMatchObject({
        failed: false,
        schedules: 500,
      });
    }, 60_000);
  });

  it('free-vs-migrate: the buggy variant fails on the oracle its mistake trips', () => {
    const v63 = explore('zsmalloc-free-vs-migrate', { variant: 'buggy', profile: 'v6.3' });
    expect(['mmbug', 'warning', 'invariant', 'assertion']).toContain(v63.failure?.kind);
    const v617 = explore('zsmalloc-free-vs-migrate', { variant: 'buggy', profile: 'v6.17' });
    expect(v617.failure).toMatchObject({ kind: 'mmbug' });
    expect(v617.failure?.message).toMatch(/NULL pointer dereference/);
  });

  it.each([
    // zs_free (task 1) stores the word with the count it loaded before the migrating task
    // (3) counted its isolation; the migration's uncount, outside the class lock, finds 0.
    ['fullness', '11113', 'mmbug', /VM_BUG_ON\(zspage->isolated == 0\) in dec_zspage_isolation/],
    // The same lost count, found by the putback (task 2).
    [
      'fullness',
      '13222131122233222212',
      'mmbug',
      /VM_BUG_ON\(zspage->isolated == 0\) in dec_zspage_isolation/,
    ],
    // The isolation stores the word with the group it loaded before zs_free's store.
    ['fullness', '333331', 'invariant', /records fullness group 6 but is on list 3/],
    // zs_free stores the count it loaded before the putback uncounted: counted for good,
    // which the checker finds once no task is left.
    [
      'fullness',
      '332221321322112',
      'invariant',
      /isolated count 1, but the VM has isolated 0 of its pages/,
    ],
    // zs_malloc (task 1) loads the word and the putback's isolation (2) counts itself in;
    // zs_malloc's store of the fuller group brings back the count it loaded, 0, and the
    // putback's uncount finds it.
    ['malloc', '112222221', 'mmbug', /VM_BUG_ON\(zspage->isolated == 0\) in dec_zspage_isolation/],
    // The same lost count, found by the migration's uncount (task 3).
    ['malloc', '113', 'mmbug', /VM_BUG_ON\(zspage->isolated == 0\) in dec_zspage_isolation/],
    // The isolation stores the word with the group it loaded before zs_malloc's store.
    ['malloc', '333331', 'invariant', /records fullness group 6 but is on list 8/],
    // zs_malloc stores the count it loaded before the putback uncounted: counted for good,
    // which the checker finds once no task is left.
    [
      'malloc',
      '222222112',
      'invariant',
      /isolated count 1, but the VM has isolated 0 of its pages/,
    ],
  ] as const)(
    'zsmalloc-%s-vs-isolated %s: one store of the shared word overwrites another (%s)',
    (writer, decisions, kind, message) => {
      const name = `zsmalloc-${writer}-vs-isolated`;
      for (const profile of ['v6.3', 'v6.0'] as const) {
        const schedule = `v1:${name}:${decisions}`;
        const r = replay(name, { variant: 'buggy', profile, schedule });
        expect(r.diverged).toBe(false);
        expect(r.failure?.kind).toBe(kind);
        expect(r.failure?.message).toMatch(message);
        expect(replay(name, { variant: 'fixed', profile, schedule }).failed).toBe(false);
      }
    },
  );

  it.each([
    ['zsmalloc-fullness-vs-isolated', 'v6.3', 3669],
    ['zsmalloc-fullness-vs-isolated', 'v6.0', 3669],
    ['zsmalloc-malloc-vs-isolated', 'v6.3', 2997],
    ['zsmalloc-malloc-vs-isolated', 'v6.0', 2997],
  ] as const)(
    '%s fixed (%s): with the count under the class lock, DFS bound 2 exhausts without a failure',
    (name, profile, schedules) => {
      const r = explore(name, {
        variant: 'fixed',
        profile,
        strategy: 'dfs',
        bound: 2,
        runs: 100_000,
      });
      expect(r).toMatchObject({ failed: false, exhausted: true, schedules });
    },
    60_000,
  );

  it('read-vs-migrate: the buggy reader sees the old bytes', () => {
    const r = explore('zsmalloc-read-vs-migrate', { variant: 'buggy', strategy: 'pct' });
    expect(r.failure).toMatchObject({ kind: 'assertion' });
    expect(r.failure?.message).toMatch(/object bytes changed/);
  });
});
