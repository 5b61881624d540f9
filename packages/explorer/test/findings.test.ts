import { type KernelGen, PROFILE_NAMES } from '@mops/core';
import { describe, expect, it } from 'vitest';
import {
  type Execution,
  execute,
  explore,
  formatReport,
  formatTrace,
  inShard,
  mergeShardResults,
  ReplayChooser,
  raceMachine,
  replay,
  resolveScenario,
  type Scenario,
  scenarios,
} from '../src/index.js';
import { usageError } from './helpers.js';

describe('mergeShardResults takes every shard of a split or none', () => {
  it('refuses a part of the shards, whose merge would pass for the whole range', () => {
    const opts = { variant: 'buggy', strategy: 'random', runs: 200 } as const;
    const whole = explore('9d', opts);
    expect(whole.failed).toBe(true);
    const n = 4;
    const parts = [1, 2, 3, 4].map((i) => explore('9d', { ...opts, shard: `${i}/${n}` }));
    const home = [1, 2, 3, 4].find((i) => inShard(whole.seed!, i, n))!;
    const without = parts.filter((_, k) => k + 1 !== home);
    usageError(
      () => mergeShardResults(without),
      new RegExp(`3 of 4 shards given: shard ${home}/4 missing; merge the results of --shard 1/4`),
    );
    usageError(() => mergeShardResults([parts[0]]), /1 of 4 shards given: shard 2\/4, 3\/4, 4\/4/);
    // All of them: the unsharded answer.
    const merged = mergeShardResults(parts);
    expect([merged.seed, merged.schedule, merged.shard]).toEqual([
      whole.seed,
      whole.schedule,
      undefined,
    ]);
    // One shard of one is the whole range.
    const only = explore('9d', { ...opts, shard: '1/1' });
    expect(mergeShardResults([only]).seed).toBe(whole.seed);
  });
});

describe('options of another strategy are refused', () => {
  it('seed with DFS, as depth with random and bound with PCT', () => {
    usageError(
      () => explore('9a', { strategy: 'dfs', seed: 5 }),
      /^seed \(--seed\) is the first seed of random and PCT runs; DFS takes none/,
    );
    usageError(() => explore('9a', { strategy: 'dfs', seed: 1 }), /DFS takes none/);
    // 9c-passes explores with PCT unless told otherwise: a seed is its own.
    expect(explore('9a', { strategy: 'dfs', variant: 'fixed', bound: 1 }).failed).toBe(false);
    expect(explore('9a', { variant: 'fixed', seed: 5, runs: 10 }).failed).toBe(false);
  });
});

describe('a passing replay has its report, table included', () => {
  it("the buggy variant's failing schedule on the fixed variant", () => {
    const r = replay('9d', { variant: 'fixed', schedule: 'v1:9d:22221' });
    expect(r.failed).toBe(false);
    expect(r.report).toContain('passed: no oracle fired');
    expect(r.report).toMatch(/\n step \| cpu0 scanner\/1 +\| cpu1 owner\/2 *\n/);
    expect(r.trace.rows).toHaveLength(r.steps);
    expect(r.report.split('\n').filter((l) => /^ {4}\d \| /.test(l))).toHaveLength(
      Math.min(r.steps, 9),
    );
  });
});

describe('the report table', () => {
  /** Three tasks; the first one's first step breaks an assertion. */
  const early: Scenario = {
    name: 'toy-early-failure',
    description: 'a failure before two of the tasks ran',
    variants: ['only'],
    profiles: ['v6.3'],
    setup: ({ profile }) => {
      const m = raceMachine(profile);
      // A task of the setup's own, ended before the race: its CPU is free again, so the
      // racing tasks run on cpu0..cpu2 while their ids start at 2.
      m.run(function* (): KernelGen {});
      const bad = { now: false };
      const body = (first: boolean) =>
        function* (): KernelGen {
          if (m.sched.preemptible) yield { op: 'step one' };
          if (first) bad.now = true;
          if (m.sched.preemptible) yield { op: 'step two' };
        };
      m.sched.spawn('a', body(true));
      m.sched.spawn('b', body(false));
      m.sched.spawn('c', body(false));
      return { machine: m, check: () => (bad.now ? ['a broke it'] : []) };
    },
  };

  it('has a column for each task that ran, headed by its CPU, and names those that did not', () => {
    // a, then b, then a breaks the assertion: c never runs.
    const e = execute(early, 'only', 'v6.3', new ReplayChooser([2, 3, 2]), { trace: true });
    expect(e.failure?.message).toBe('a broke it');
    expect(e.tasks.map((t) => `${t.cpu}:${t.name}/${t.id}`)).toEqual(['0:a/2', '1:b/3', '2:c/4']);
    const table = formatTrace(e.tasks, e.trace!).split('\n');
    expect(table[0]).toMatch(/^ step \| cpu0 a\/2 +\| cpu1 b\/3 *$/);
    expect(table.at(-1)).toBe('no step: cpu2 c/4 (the run ended before it ran)');
    const report = formatReport(
      { scenario: early.name, variant: 'only', profile: 'v6.3', strategy: 'replay', schedule: '' },
      e as Execution,
    );
    expect(report).toContain('\nno step: cpu2 c/4 (the run ended before it ran)\n');
  });
});

describe('labels', () => {
  it.each(['v6.3', 'v6.0', 'v4.8'] as const)(
    '9d-double buggy (%s): the v3 draft is at fault, not the driver that followed it',
    (profile) => {
      const r = replay('9d-double', {
        variant: 'buggy',
        profile,
        schedule: 'v1:9d-double:1111122223',
      });
      expect(r.failure?.message).toBe(
        'draft protocol fault (v3 draft of spec §4.2): page isolated twice: after isolate_page its lru is still linked into another list',
      );
      expect(r.report).toContain(
        "racedrv did what the v3 draft of spec §4.2 says: the draft protocol is at fault here, not the driver (the core records it as the driver's protocol_violation)",
      );
      expect(scenarios().find((s) => s.name === '9d-double')?.description).toMatch(
        /the draft's fault, not the driver's/,
      );
    },
  );

  /** The names a traced replay of `schedule` shows, points and notes, on `profile`. */
  function words(name: string, variant: string, profile: string, decisions: number[]): string {
    const sc = resolveScenario(name).scenario;
    const e = execute(sc, variant, profile as never, new ReplayChooser(decisions), {
      trace: true,
      reuse: false,
    });
    return [
      e.failure?.message ?? '',
      ...e.trace!.map((r) => `${r.point.op} ${r.point.note ?? ''}`),
    ].join('\n');
  }

  it.each([
    ['9a', 'fixed', [1, 2]],
    ['9b', 'buggy', [1, 1, 1, 2, 2, 2, 1]],
    ['9b', 'fixed', [1, 1, 1, 2, 2, 2, 1]],
    ['9e', 'buggy', [1, 2]],
    ['9e', 'fixed', [1, 2]],
    ['9e-split', 'buggy', [1, 2]],
    ['9e-split', 'fixed', [1, 2]],
  ] as const)('%s %s on v4.8 speaks of pages, not folios', (name, variant, decisions) => {
    const text = words(name, variant, 'v4.8', [...decisions]);
    expect(text).not.toMatch(/folio/);
    expect(text.length).toBeGreaterThan(0);
  });

  it('9b names its store and freeze as each release does', () => {
    const buggy = [1, 1, 1, 2, 2, 2, 1];
    expect(words('9b', 'buggy', 'v4.8', buggy)).toMatch(
      /page_ref_freeze's compare-and-exchange[\s\S]*radix_tree_replace_slot the slot now holds the new page/,
    );
    expect(words('9b', 'buggy', 'v6.3', buggy)).toMatch(
      /folio_ref_freeze's compare-and-exchange[\s\S]*xas_store the slot now holds the new folio/,
    );
  });

  it('9e-split names the split and the walker as each release does', () => {
    expect(words('9e-split', 'fixed', 'v4.8', [1, 2])).toMatch(
      /page_cache_get_speculative compound_head\(0x2\)[\s\S]*lock_page[\s\S]*split_huge_page[\s\S]*unlock_page[\s\S]*compound_head recheck/,
    );
    for (const profile of PROFILE_NAMES.filter((p) => p !== 'v4.8'))
      expect(words('9e-split', 'fixed', profile, [1, 2])).toMatch(
        /folio_try_get page_folio\(0x2\)[\s\S]*folio_lock[\s\S]*split_folio[\s\S]*page_folio recheck/,
      );
  });
});
