import { type KernelGen } from '@mops/core';
import { describe, expect, it } from 'vitest';
import {
  DfsExplorer,
  decodeSchedule,
  encodeSchedule,
  execute,
  explore,
  failureSignature,
  inShard,
  mergeShardResults,
  PctChooser,
  parseShard,
  pctSteps,
  RandomChooser,
  ReplayChooser,
  raceMachine,
  registerScenario,
  replay,
  resolveScenario,
  type Scenario,
  shrinkSchedule,
  unregisterScenario,
} from '../src/index.js';
import { RACES, usageError } from './helpers.js';

describe('DFS enumerates every interleaving when unbounded', () => {
  /** Two tasks of a and b points each, every point yielded (manual mode). */
  function toy(a: number, b: number): Scenario {
    return {
      name: `toy-${a}-${b}`,
      description: 'independent tasks',
      variants: ['only'],
      profiles: ['v6.3'],
      setup: ({ profile }) => {
        const m = raceMachine(profile);
        m.sched.manual = true;
        const body = (n: number) =>
          function* (): KernelGen {
            for (let i = 0; i < n; i++) yield { op: `p${i}` };
          };
        m.sched.spawn('a', body(a));
        m.sched.spawn('b', body(b));
        return { machine: m };
      },
    };
  }

  it.each([
    [1, 1, 6],
    [2, 3, 35],
    [3, 3, 70],
  ])('tasks of %i and %i points: C(a+b+2, a+1) = %i schedules, all distinct', (a, b, n) => {
    const sc = toy(a, b);
    const dfs = new DfsExplorer(100);
    const seen = new Set<string>();
    for (let c = dfs.next(); c !== undefined; c = dfs.next()) {
      const e = execute(sc, 'only', 'v6.3', c);
      seen.add(e.decisions.join(''));
      dfs.backtrack(e.decisions.length);
    }
    expect(dfs.exhausted).toBe(true);
    expect(dfs.schedules).toBe(n);
    expect(seen.size).toBe(n);
  });

  it('bound 0 runs each task to completion in turn: one schedule per first task', () => {
    const sc = toy(3, 3);
    const dfs = new DfsExplorer(0);
    for (let c = dfs.next(); c !== undefined; c = dfs.next()) {
      const e = execute(sc, 'only', 'v6.3', c);
      expect(e.preemptions).toBe(0);
      dfs.backtrack(e.decisions.length);
    }
    expect(dfs.schedules).toBe(2);
  });
});

describe('shrinking', () => {
  it('removes needless preemptions and keeps the failure', () => {
    const sc = resolveScenario('9d').scenario;
    let worst: ReturnType<typeof execute> | undefined;
    for (let s = 1; s < 500; s++) {
      const e = execute(sc, 'buggy', 'v6.3', new RandomChooser(s));
      if (e.failure && (!worst || e.preemptions > worst.preemptions)) worst = e;
    }
    expect(worst!.preemptions).toBeGreaterThanOrEqual(2);
    const { execution, attempts } = shrinkSchedule(sc, 'buggy', 'v6.3', worst!);
    expect(attempts).toBeGreaterThan(0);
    expect(execution.failure?.kind).toBe(worst!.failure!.kind);
    expect(execution.preemptions).toBe(1);
    const again = execute(sc, 'buggy', 'v6.3', new ReplayChooser(execution.decisions));
    expect(again.failure).toEqual(execution.failure);
  });

  it('keeps the bug it was given: a smaller schedule that fails another way is not taken', () => {
    // Two ways to fail: a first (an assertion) or b first (b throws).
    const sc: Scenario = {
      name: 'toy-two-ways',
      description: 'fails one way or the other, depending on who is first',
      variants: ['only'],
      profiles: ['v6.3'],
      setup: ({ profile }) => {
        const m = raceMachine(profile);
        m.sched.manual = true;
        const state = { first: '' };
        m.sched.spawn('a', function* (): KernelGen {
          yield { op: 'a0' };
          yield { op: 'a1' };
          if (!state.first) state.first = 'a';
          yield { op: 'a2' };
        });
        m.sched.spawn('b', function* (): KernelGen {
          yield { op: 'b0' };
          yield { op: 'b1' };
          yield { op: 'b2' };
          if (!state.first) {
            state.first = 'b';
            throw new Error('b was first');
          }
        });
        return {
          machine: m,
          check: () => (state.first === 'a' ? ['a was first'] : []),
        };
      },
    };
    const kinds = new Set<string>();
    let failing = 0;
    for (let s = 1; s <= 80; s++) {
      const e = execute(sc, 'only', 'v6.3', new RandomChooser(s), { reuse: false });
      if (!e.failure) continue;
      failing++;
      kinds.add(e.failure.kind);
      const { execution } = shrinkSchedule(sc, 'only', 'v6.3', e);
      expect(failureSignature(execution)).toBe(failureSignature(e));
      const again = execute(sc, 'only', 'v6.3', new ReplayChooser(execution.decisions), {
        reuse: false,
      });
      expect(failureSignature(again)).toBe(failureSignature(e));
    }
    expect(failing).toBeGreaterThan(5);
    expect([...kinds].sort()).toEqual(['assertion', 'error']);
  });

  it('can be turned off', () => {
    const r = explore('9d', { variant: 'buggy', shrink: false });
    expect(r.failed).toBe(true);
    expect(r.shrinkAttempts).toBe(0);
    // Nothing was shrunk: no "shrunk from" in the result or the report.
    expect(r.shrunkFrom).toBeUndefined();
    expect(r.report).toMatch(/^schedule: \d+ steps?, \d+ preemptions?$/m);
    expect(r.report).not.toMatch(/shrunk from/);
  });

  it('a schedule shrinking cannot make smaller is not reported as shrunk (9a)', () => {
    const r = explore('9a', { variant: 'buggy' });
    const plain = explore('9a', { variant: 'buggy', shrink: false });
    expect(r.schedule).toBe(plain.schedule);
    expect(r.shrinkAttempts).toBeGreaterThan(0);
    expect(r.shrunkFrom).toBeUndefined();
    expect(r.report).not.toMatch(/shrunk from/);
  });
});

describe('replay', () => {
  it('a buggy counterexample replayed on the fixed variant passes', () => {
    for (const name of RACES) {
      const r = explore(name, { variant: 'buggy' });
      const fixed = replay(name, { variant: 'fixed', schedule: r.schedule! });
      expect(fixed.failed).toBe(false);
      expect(fixed.report).toContain('passed: no oracle fired');
    }
  });

  it('the 9a trace shows the owner freeing the folio between the head lookup and the reference', () => {
    const r = explore('9a', { variant: 'buggy' });
    expect(r.failure?.message).toMatch(/isolated page 0x0 != examined page 0x1/);
    const lines = r.report!.split('\n');
    const tryGet = lines.findIndex((l) => l.includes('folio_try_get'));
    const put = lines.findIndex((l) => l.includes('folio_put pfn=0x0'));
    expect(tryGet).toBeGreaterThan(0);
    expect(put).toBeGreaterThan(tryGet);
  });

  it('a traced run says at which step a failure arose when a task running alone came before the check', () => {
    // 9a buggy, v6.3: the scanner's isolation warns in step 8; the owner is done by then, so
    // the scanner runs alone to its end (step 9), where an untraced run checks the oracles.
    const r = replay('9a', { variant: 'buggy', profile: 'v6.3', schedule: 'v1:9a:12' });
    expect(r.failure).toMatchObject({ kind: 'warning', step: 9, raisedAt: 8 });
    expect(r.report).toContain(
      'FAILED: warning after step 8 (a task running alone, checked after step 9): vm_protocol_violation: isolated page 0x0 != examined page 0x1',
    );
    // The row of step 8 is the scanner's next point after the unlock that raised it.
    const row = (k: number) =>
      r.report.split('\n').find((l) => l.startsWith(`${String(k).padStart(5)} |`));
    expect(row(7)).toContain('folio_unlock pfn=0x0');
    // The driver callbacks each step called, before the point it reached; then the caller
    // links the page it examined, not the one isolated (which stays isolated, on no list).
    expect(row(7)).toContain('| isolate_page(0x0) → folio_unlock pfn=0x0');
    expect(row(8)).toContain(
      '| list_add pfn=0x1 (the page examined; 0x0, the one isolated, is on no list)',
    );
    expect(r.report).not.toContain('migrate_pages pfn');
    // An untraced run sees it where the oracles run; the failing run found by explore too.
    const e = explore('9a', { variant: 'buggy', profile: 'v6.3' });
    expect(e.failure?.raisedAt).toBe(8);
    // A failure seen right where it arose has no raisedAt.
    const b = explore('9b', { variant: 'buggy', profile: 'v6.3' });
    expect(b.failure).toBeDefined();
    expect(b.failure?.raisedAt).toBeUndefined();
  });

  it('shrinking finds the fewest preemptions the failure needs, even two moves away', () => {
    // 9b's random failure comes with 4 preemptions; no single one can go, yet DFS under
    // bound 2 fails the same way: the shrunk schedule has 2.
    const r = explore('9b', { variant: 'buggy', profile: 'v6.3', seed: 1 });
    expect(r.preemptions).toBe(2);
    const dfs = explore('9b', { variant: 'buggy', profile: 'v6.3', strategy: 'dfs', bound: 1 });
    expect(dfs.failed).toBe(false);
    expect(r.report).toMatch(/shrunk from \d+ steps, [3-9] preemptions/);
    // Both starts are edited and the smaller report wins: the same preemptions, then fewer
    // rows (here the failing schedule's own edits: 8 rows, against 9 for v1:9d:112).
    const d = explore('9d', { variant: 'buggy', profile: 'v6.3', seed: 3 });
    expect([d.steps, d.preemptions, d.schedule]).toEqual([8, 1, 'v1:9d:22221']);
  });

  it("a traced run decides as an untraced one, even when a check() cannot judge a lone task's passing state; the run leaves the machine as it found it", () => {
    const st = { x: 0, aDone: false };
    // Outside the scenario's state, which each run restores.
    const mode = { throwAtEnd: false };
    const sc = {
      name: 'traced-transient',
      description: 'b breaks and repairs x while running alone',
      variants: ['buggy'],
      profiles: ['v6.3' as const],
      setup: () => {
        const m = raceMachine('v6.3');
        return {
          machine: m,
          state: [st],
          start: () => {
            m.sched.spawn('a', function* (): KernelGen {
              yield { op: 'queue_work', note: 'a' };
              st.aDone = true;
            });
            m.sched.spawn('b', function* (): KernelGen {
              while (!st.aDone) yield { op: 'queue_work', note: 'b waits' };
              st.x = 1;
              if (m.sched.preemptible) yield { op: 'queue_work', note: 'b mid' };
              st.x = mode.throwAtEnd ? 2 : 0;
            });
          },
          check: () => {
            if (st.x !== 0) throw new TypeError(`cannot judge x = ${st.x}`);
            return [];
          },
        };
      },
    };
    registerScenario(sc);
    try {
      const untraced = execute(sc, 'buggy', 'v6.3', new RandomChooser(1));
      expect(untraced.failure).toBeUndefined();
      const traced = execute(sc, 'buggy', 'v6.3', new RandomChooser(1), { trace: true });
      expect(traced.failure).toBeUndefined();
      expect(traced.trace?.some((r) => r.point.note === 'b mid')).toBe(true);
      // A check that throws where both runs check fails both there, alike; the hook and
      // step-by-step mode are undone.
      mode.throwAtEnd = true;
      const thrown = { kind: 'error', message: 'cannot judge x = 2' };
      expect(execute(sc, 'buggy', 'v6.3', new RandomChooser(1)).failure).toMatchObject(thrown);
      const tracedThrow = execute(sc, 'buggy', 'v6.3', new RandomChooser(1), { trace: true });
      expect(tracedThrow.failure).toMatchObject(thrown);
      expect(untraced.machine.mem.onDriverCall).toBeUndefined();
      expect(untraced.machine.sched.manual).toBe(false);
    } finally {
      unregisterScenario('traced-transient');
    }
  });

  it('the empty schedule runs without preemption', () => {
    const r = replay('9a', { variant: 'buggy', schedule: 'v1:9a:' });
    expect(r.preemptions).toBe(0);
    expect(r.failed).toBe(false);
  });

  it('marks schedules that do not fit the run as diverged', () => {
    const r = replay('9a', { variant: 'fixed', schedule: 'v1:9a:77' });
    expect(r.diverged).toBe(true);
  });
});
describe('schedule strings', () => {
  it('round-trip', () => {
    const d = [1, 2, 3, 10, 35];
    const s = encodeSchedule('9d-double', d);
    expect(s).toBe('v1:9d-double:123az');
    expect(decodeSchedule(s, '9d-double')).toEqual({ scenario: '9d-double', decisions: d });
  });
});

describe('sharding and determinism', () => {
  it('shards partition the seed space by s mod n', () => {
    expect(parseShard('2/3')).toEqual({ index: 2, count: 3 });
    for (let s = -5; s < 20; s++) {
      const owners = [1, 2, 3].filter((i) => inShard(s, i, 3));
      expect(owners).toEqual([(((s % 3) + 3) % 3) + 1]);
    }
    const total = [1, 2, 3, 4]
      .map((i) => explore('9a', { variant: 'fixed', runs: 50, seed: 7, shard: `${i}/4` }).schedules)
      .reduce((a, b) => a + b, 0);
    expect(total).toBe(50);
  });

  it('the shard holding the failing seed finds the same failure as the whole run', () => {
    const whole = explore('9d', { variant: 'buggy', runs: 200, seed: 1 });
    const n = 3;
    const i = (((whole.seed! % n) + n) % n) + 1;
    const part = explore('9d', { variant: 'buggy', runs: 200, seed: 1, shard: `${i}/${n}` });
    expect(part.seed).toBe(whole.seed);
    expect(part.schedule).toBe(whole.schedule);
  });

  it('the same options give the same result', () => {
    for (const strategy of ['random', 'pct', 'dfs'] as const) {
      const opts = { variant: 'buggy', strategy, ...(strategy === 'dfs' ? {} : { seed: 11 }) };
      const a = explore('9e', opts);
      const b = explore('9e', opts);
      expect(b).toEqual(a);
      expect(JSON.parse(JSON.stringify(a))).toEqual(a);
    }
  });
});
describe('PCT', () => {
  it('finds the depth-2 race 9a about as often as its guarantee 1/(n·k) promises', () => {
    const sc = resolveScenario('9a').scenario;
    const k = execute(sc, 'buggy', 'v6.3', new ReplayChooser([])).steps;
    const n = 2;
    let hits = 0;
    const runs = 1000;
    for (let s = 1; s <= runs; s++)
      if (execute(sc, 'buggy', 'v6.3', new PctChooser(s, 2, k)).failure) hits++;
    // Here the guarantee is exact (the scanner must start and lose its priority at step 1),
    // so allow for sampling: 1000 fixed seeds, 80 % of the expected rate.
    expect(hits / runs).toBeGreaterThanOrEqual(0.8 / (n * k));
    expect(hits / runs).toBeLessThanOrEqual(1.2 / (n * k));
  });

  it('k covers the runs PCT makes, not only the run without preemptions (9c-passes)', () => {
    const { scenario: sc, profile } = resolveScenario('9c-passes');
    for (const variant of ['buggy', 'fixed']) {
      const first = execute(sc, variant, profile, new ReplayChooser([])).steps;
      const k = pctSteps(sc, variant, profile, 3);
      const lens: number[] = [];
      for (let s = 1; s <= 100; s++)
        lens.push(execute(sc, variant, profile, new PctChooser(s, 3, k)).steps);
      lens.sort((a, b) => a - b);
      // A run spinning on a lock whose holder PCT keeps off the CPU takes several times
      // the steps of the run without preemptions; k is at least as long as most runs.
      expect(lens[90]).toBeGreaterThan(2 * first);
      expect(k).toBeGreaterThanOrEqual(lens[90]);
      expect(pctSteps(sc, variant, profile, 3)).toBe(k);
    }
  });

  it('depth 1 never preempts: the highest-priority task runs to completion first', () => {
    const sc = resolveScenario('9d').scenario;
    for (let s = 1; s <= 50; s++) {
      const e = execute(sc, 'buggy', 'v6.3', new PctChooser(s, 1, 10));
      expect(e.preemptions).toBe(0);
      expect(e.failure).toBeUndefined();
    }
  });
});
describe('merging shard results', () => {
  it('gives the failure an unsharded run reports', () => {
    const whole = explore('9e', { variant: 'buggy', strategy: 'pct', runs: 100, seed: 3 });
    const parts = [1, 2, 3].map((i) =>
      explore('9e', { variant: 'buggy', strategy: 'pct', runs: 100, seed: 3, shard: `${i}/3` }),
    );
    const merged = mergeShardResults(parts);
    expect(merged.failed).toBe(true);
    expect(merged.seed).toBe(whole.seed);
    expect(merged.schedule).toBe(whole.schedule);
    expect(merged.report).toBe(whole.report);
    expect(merged.shard).toBeUndefined();
  });

  it('passes when every shard passes, counting all schedules', () => {
    const parts = [1, 2].map((i) => explore('9a', { variant: 'fixed', runs: 40, shard: `${i}/2` }));
    expect(mergeShardResults(parts)).toMatchObject({ failed: false, schedules: 40 });
    usageError(
      () => mergeShardResults([parts[0], explore('9d', { variant: 'fixed', runs: 2 })]),
      /cannot be merged/,
    );
    // Shards of one split only: not an unsharded result, not a shard twice, not another N.
    const whole = explore('9a', { variant: 'fixed', runs: 40 });
    usageError(() => mergeShardResults([parts[0], whole]), /does not belong with shard 1\/2/);
    usageError(() => mergeShardResults([parts[0], parts[0]]), /each shard once/);
    const third = explore('9a', { variant: 'fixed', runs: 40, shard: '2/3' });
    usageError(() => mergeShardResults([parts[0], third]), /shard 2\/3 does not belong/);
    // Shards of another range (--runs): their merge would name the wrong first failing seed.
    const longer = explore('9a', { variant: 'fixed', runs: 400, shard: '2/2' });
    expect(longer.runs).toBe(400);
    usageError(
      () => mergeShardResults([parts[0], longer]),
      /shard 2\/2 does not belong with shard 1\/2: .* the same --seed, --runs and --depth/,
    );
    // Shards are numbers: 01/2 is 1/2 again, and 2/02 is 2/2.
    usageError(
      () => mergeShardResults([parts[0], { ...parts[0], shard: '01/2' }]),
      /each shard once/,
    );
    expect(mergeShardResults([parts[0], { ...parts[1], shard: '2/02' }]).schedules).toBe(40);
    usageError(() => mergeShardResults(null as never), /takes an array of ExploreResult, got null/);
    usageError(() => mergeShardResults([parts[0], null] as never), /item 1 is null/);
  });
});
