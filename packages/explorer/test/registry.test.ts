import { __GFP, checkInvariants, GFP, type KernelGen, MmBug, putPage, SpinLock } from '@mops/core';
import { describe, expect, it } from 'vitest';
import {
  type ExploreOptions,
  explore,
  fillFreePages,
  parseShard,
  type ReplayOptions,
  raceMachine,
  registerScenario,
  replay,
  type Scenario,
  scenarios,
  unregisterScenario,
} from '../src/index.js';
import { RACES, usageError } from './helpers.js';

describe('scenario registry', () => {
  it('lists the built-in races with buggy and fixed variants', () => {
    const list = scenarios();
    for (const name of RACES) {
      const s = list.find((x) => x.name === name);
      expect(s?.variants.slice(0, 2)).toEqual(['buggy', 'fixed']);
      expect(s?.description.length).toBeGreaterThan(10);
    }
  });

  it('describes what each buggy variant does: 9c-passes the MIGRATE_SYNC passes, 9e an MM that keeps data in a tail refcount slot', () => {
    const list = scenarios();
    const passes = list.find((x) => x.name === '9c-passes')!.description;
    expect(passes).toMatch(/move_pages migrates with MIGRATE_SYNC/);
    expect(passes).toMatch(/three in an async batch, which is then undone, and seven/);
    const e = list.find((x) => x.name === '9e')!.description;
    expect(e).toMatch(/total mapcount in tail page 1's refcount slot, which the get corrupts/);
    expect(e).toMatch(/a tail's refcount stays 0, so the get fails/);
  });

  it('lets plugins add scenarios and rejects bad or duplicate names', () => {
    const toy: Scenario = {
      name: 'toy-registry',
      description: 'one task',
      variants: ['only'],
      profiles: ['v6.3'],
      setup: ({ profile }) => {
        const m = raceMachine(profile);
        m.sched.spawn('t', function* (): KernelGen {});
        return { machine: m };
      },
    };
    registerScenario(toy);
    try {
      expect(scenarios().some((s) => s.name === 'toy-registry')).toBe(true);
      expect(() => registerScenario(toy)).toThrow(/already registered/);
      expect(() => registerScenario({ ...toy, name: 'Bad Name' })).toThrow(/must match/);
      expect(() =>
        registerScenario({ ...toy, strategy: 'dfs' as 'pct' }, { replace: true }),
      ).toThrow(/strategy must be 'random' or 'pct', got "dfs"/);
      // A malformed scenario is E_PLUGIN naming the field, not a TypeError.
      const bad = (s: object) => () =>
        registerScenario({ ...toy, ...s } as typeof toy, { replace: true });
      expect(bad({ profiles: undefined })).toThrow(
        'scenario toy-registry: profiles must be a non-empty array of names, got nothing',
      );
      expect(bad({ variants: 'buggy' })).toThrow(
        'scenario toy-registry: variants must be a non-empty array of names, got "buggy"',
      );
      expect(bad({ profiles: ['v5.10'] })).toThrow(
        'scenario toy-registry: unknown profile v5.10; profiles are v4.8, v6.0, v6.3, v6.17',
      );
      expect(bad({ setup: undefined })).toThrow('scenario toy-registry: setup must be a function');
      expect(bad({ name: undefined })).toThrow(
        'scenario name undefined must match [a-z0-9][a-z0-9-]*',
      );
      expect(bad({ description: undefined })).toThrow(
        'scenario toy-registry: description must be a string, got undefined',
      );
      expect(bad({ refs: 9 })).toThrow('scenario toy-registry: refs must be a string, got 9');
      expect(() => registerScenario(null as unknown as Scenario)).toThrow(
        expect.objectContaining({
          code: 'E_PLUGIN',
          field: 'scenario',
          message:
            'a scenario must be an object { name, description, variants, profiles, setup }, got null',
        }),
      );
      expect(() => registerScenario(toy, null as unknown as { replace?: boolean })).toThrow(
        expect.objectContaining({
          code: 'E_PLUGIN',
          field: 'options',
          message:
            'registerScenario(toy-registry): options must be an object { replace }, got null',
        }),
      );
      // A setup that throws: E_PLUGIN when the scenario is explored, before any step.
      registerScenario(
        {
          ...toy,
          setup: () => {
            throw new Error('boom');
          },
        },
        { replace: true },
      );
      expect(() => explore('toy-registry', { runs: 3 })).toThrow(
        'scenario toy-registry: setup() threw (Error: boom) before any step ran; fix the scenario',
      );
      registerScenario(toy, { replace: true });
      expect(explore('toy-registry', { runs: 3 })).toMatchObject({
        failed: false,
        strategy: 'random',
      });
      registerScenario({ ...toy, strategy: 'pct' }, { replace: true });
      expect(explore('toy-registry', { runs: 3 }).strategy).toBe('pct');
      expect(explore('toy-registry', { runs: 3, strategy: 'random' }).strategy).toBe('random');
      expect(scenarios().find((s) => s.name === 'toy-registry')?.strategy).toBe('pct');
    } finally {
      unregisterScenario('toy-registry');
    }
  });
});

describe('what a scenario’s setup returns and its checks answer', () => {
  /** A scenario of two tasks, one with two steps, whose instance is `shape(machine, st)`. */
  const toy = (shape: (m: ReturnType<typeof raceMachine>, st: { n: number }) => unknown) =>
    ({
      name: 'toy-instance',
      description: 'two tasks',
      variants: ['only'],
      profiles: ['v6.3'],
      setup: ({ profile }) => {
        const m = raceMachine(profile);
        const st = { n: 0 };
        m.sched.spawn('a', function* (): KernelGen {
          st.n++;
          yield { op: 'x' };
          st.n++;
        });
        m.sched.spawn('b', function* (): KernelGen {
          yield { op: 'y' };
        });
        return shape(m, st);
      },
    }) as Scenario;
  const run = (shape: Parameters<typeof toy>[0], opts: ExploreOptions = { runs: 20 }) => {
    registerScenario(toy(shape), { replace: true });
    try {
      return explore('toy-instance', opts);
    } finally {
      unregisterScenario('toy-instance');
    }
  };
  const plugin = (shape: Parameters<typeof toy>[0], message: string) =>
    expect(() => run(shape)).toThrow(
      expect.objectContaining({ code: 'E_PLUGIN', message: expect.stringContaining(message) }),
    );

  it('a setup that returns no instance, or no machine, is E_PLUGIN naming the field', () => {
    plugin(() => undefined, 'setup() must return { machine');
    plugin(() => ({}), 'machine is not a mops Machine (createMachine), got undefined');
    plugin((m) => ({ machine: m, check: 'yes' }), 'check is not a function');
    plugin((m) => ({ machine: m, state: [1] }), 'state is not an array of objects');
  });

  it('a scenario whose runs take no step (no task spawned) is E_PLUGIN, not a pass', () => {
    const empty: Scenario = {
      name: 'toy-empty',
      description: 'spawns nothing',
      variants: ['only'],
      profiles: ['v6.3'],
      setup: ({ profile }) => ({ machine: raceMachine(profile) }),
    };
    registerScenario(empty);
    try {
      for (const strategy of ['random', 'pct', 'dfs'] as const)
        expect(() => explore('toy-empty', { strategy, runs: 5 })).toThrow(
          expect.objectContaining({
            code: 'E_PLUGIN',
            message: expect.stringContaining('a run took no step'),
          }),
        );
    } finally {
      unregisterScenario('toy-empty');
    }
  });

  it('a check or finish answering something other than an array is E_PLUGIN', () => {
    plugin((m) => ({ machine: m, check: () => 'oops' }), 'check() must return an array');
    plugin((m) => ({ machine: m, finish: () => 7 }), 'finish() must return an array');
  });

  it('a check that throws fails the run where it threw, with a replayable schedule', () => {
    const shape = (m: ReturnType<typeof raceMachine>, st: { n: number }) => ({
      machine: m,
      check: () => {
        if (st.n === 2) throw new MmBug('VM_BUG_ON in check');
        return [];
      },
    });
    const r = run(shape);
    expect(r.failed).toBe(true);
    expect(r.failure).toMatchObject({ kind: 'mmbug', message: 'VM_BUG_ON in check' });
    registerScenario(toy(shape), { replace: true });
    try {
      expect(replay('toy-instance', { schedule: r.schedule ?? '' }).failure?.kind).toBe('mmbug');
    } finally {
      unregisterScenario('toy-instance');
    }
    const e = run((m) => ({
      machine: m,
      check: () => {
        throw new RangeError('check blew up');
      },
    }));
    expect(e.failure).toMatchObject({ kind: 'error', message: 'check blew up' });
  });
});

describe('a race machine in use', () => {
  it('recycles a freed folio without merging it: the next order-0 allocation is its head', () => {
    const m = raceMachine('v6.3');
    const H = m.allocPages(GFP.HIGHUSER_MOVABLE | __GFP.COMP, 2, 'thp');
    expect(fillFreePages(m)).toBe(m.nrPages - 4);
    const zone = m.mem.populatedZones[0];
    expect(zone.nrFreePages).toBe(0);
    putPage(m.mem, H);
    // An order-2 block on its own: its buddy is in use.
    expect(zone.nrFree[2]).toBe(1);
    expect(m.allocPages(GFP.HIGHUSER_MOVABLE, 0)).toBe(H);
    expect([zone.nrFree[0], zone.nrFree[1], zone.nrFreePages]).toEqual([1, 1, 3]);
    expect(checkInvariants(m).ok).toBe(true);
  });
});
describe('usage errors (E_USAGE, one line)', () => {
  it('unknown scenario, strategy, variant, profile', () => {
    usageError(() => explore('nope'), /unknown scenario "nope"/);
    usageError(() => explore('9a', { strategy: 'bfs' }), /unknown strategy 'bfs'/);
    usageError(
      () => explore('9a', { variant: 'broken' }),
      /no variant 'broken'; choose one of buggy, fixed$/,
    );
    usageError(() => explore('9d', { profile: 'v6.17' }), /does not run on profile 'v6.17'/);
    usageError(() => replay('nope', { schedule: 'v1:nope:' }), /unknown scenario/);
    usageError(() => explore(Symbol('s') as never), /unknown scenario Symbol\(s\); known: /);
    usageError(() => explore({} as never), /unknown scenario an object; known: /);
  });

  it('runs, seed, depth, bound out of range', () => {
    usageError(() => explore('9a', { runs: 0 }), /--runs/);
    usageError(() => explore('9a', { runs: -3 }), /--runs/);
    usageError(() => explore('9a', { runs: 1.5 }), /--runs/);
    usageError(() => explore('9a', { strategy: 'pct', depth: 0 }), /--depth/);
    usageError(() => explore('9a', { strategy: 'dfs', bound: -1 }), /--bound/);
    // An option of another strategy is refused, not ignored.
    usageError(() => explore('9a', { strategy: 'random', bound: 2 }), /bound \(--bound\) is DFS's/);
    usageError(() => explore('9a', { bound: 2 }), /strategy is random/);
    usageError(() => explore('9a', { strategy: 'dfs', depth: 3 }), /depth \(--depth\) is PCT's/);
  });

  it('options that are not an object, not an option, or not of the documented type', () => {
    const explored = 'variant, strategy, runs, seed, depth, bound, shard, profile, shrink';
    usageError(
      () => explore('9a', null as unknown as ExploreOptions),
      new RegExp(`^options must be an object of ${explored}; got null$`),
    );
    usageError(
      () => replay('9a', undefined as unknown as ReplayOptions),
      /^options must be an object of variant, schedule, profile; got undefined$/,
    );
    // A misspelt option would silently leave its default.
    usageError(
      () => explore('9a', { runz: 1, variant: 'fixed' } as ExploreOptions),
      new RegExp(`^unknown option 'runz'; the options are ${explored}$`),
    );
    usageError(
      () => replay('9a', { schedule: 'v1:9a:', seed: 1 } as ReplayOptions),
      /^unknown option 'seed'; the options are variant, schedule, profile$/,
    );
    usageError(
      () => explore('9a', { shard: { index: 1, count: 2 } } as unknown as ExploreOptions),
      /^shard \(--shard\) must be a string, got an object$/,
    );
    usageError(
      () => parseShard(2 as unknown as string),
      /^shard \(--shard\) must be a string i\/n, e.g. 1\/4, got 2$/,
    );
    usageError(
      () => explore('9a', { variant: ['fixed'] } as unknown as ExploreOptions),
      /^variant \(--variant\) must be a string, got an array$/,
    );
    usageError(
      () => explore('9a', { shrink: 'no' } as unknown as ExploreOptions),
      /^shrink \(--no-shrink\) must be true or false, got "no"$/,
    );
    usageError(
      () => explore('9a', { runs: '5' } as unknown as ExploreOptions),
      /^runs \(--runs\) must be an integer ≥ 1, got "5"$/,
    );
    usageError(
      () => replay('9a', { schedule: 12 } as unknown as ReplayOptions),
      /^schedule \(--schedule\) must be a string, got 12$/,
    );
    // Each names the option it refuses.
    expect(() => explore('9a', { runz: 1 } as ExploreOptions)).toThrow(
      expect.objectContaining({ field: 'runz' }),
    );
    expect(() => explore('9a', { profile: 6.3 } as unknown as ExploreOptions)).toThrow(
      expect.objectContaining({ field: 'profile' }),
    );
  });

  it('malformed and foreign schedule strings', () => {
    usageError(() => replay('9a', { schedule: 'garbage' }), /malformed schedule/);
    usageError(() => replay('9a', { schedule: 'v1:9a:12!' }), /malformed schedule/);
    usageError(() => replay('9a', { schedule: 'v1:9a:102' }), /malformed schedule/);
    usageError(() => replay('9a', { schedule: 'v1:9d:12' }), /recorded for scenario 9d, not 9a/);
    usageError(() => replay('9a', { schedule: 'v3:9a:12' }), /encoding version 3/);
    usageError(() => replay('9a', { schedule: '' }), /schedule \(--schedule\) is required/);
  });

  it('bad shards', () => {
    usageError(() => explore('9a', { shard: '3/2' }), /shard \(--shard\) 3\/2/);
    usageError(() => explore('9a', { shard: '0/2' }), /--shard/);
    usageError(() => explore('9a', { shard: '1/0' }), /--shard/);
    usageError(() => explore('9a', { shard: 'x' }), /--shard/);
    usageError(() => explore('9a', { strategy: 'dfs', shard: '1/2' }), /not dfs/);
  });
});

describe('tasks sharing a CPU', () => {
  /**
   * Two tasks bump one counter, each under a spinlock of its own (the bug: the locks do not
   * exclude each other). On two CPUs an update is lost; on one CPU the holder's disabled
   * preemption keeps the other task off the CPU, so no schedule loses one.
   */
  const twoLocks: Scenario = {
    name: 'toy-two-locks',
    description: 'two tasks bump a counter under two different spinlocks',
    variants: ['two-cpus', 'one-cpu'],
    profiles: ['v6.3'],
    setup: ({ variant, profile }) => {
      const m = raceMachine(profile);
      const s = m.sched;
      const counter = { x: 0 };
      for (const name of ['a', 'b']) {
        const lock = new SpinLock(s, `lock_${name}`);
        s.spawn(
          name,
          function* (): KernelGen {
            yield* lock.lock();
            yield { op: 'load' };
            const v = counter.x;
            yield { op: 'store' };
            counter.x = v + 1;
            lock.unlock();
          },
          { cpu: variant === 'one-cpu' ? 0 : name === 'a' ? 0 : 1 },
        );
      }
      return {
        machine: m,
        finish: () => (counter.x === 2 ? [] : [`lost update: counter ${counter.x}`]),
      };
    },
  };

  it('the report gives a work item queued during the run its own column, on its CPU', () => {
    const toy: Scenario = {
      name: 'toy-worker',
      description: 'a task queues a work item that loses an update',
      variants: ['only'],
      profiles: ['v6.3'],
      setup: ({ profile }) => {
        const m = raceMachine(profile);
        const s = m.sched;
        const counter = { x: 0 };
        s.spawn(
          'a',
          function* (): KernelGen {
            s.queueWork('kworker', function* (): KernelGen {
              yield { op: 'load' };
              const v = counter.x;
              yield { op: 'store' };
              counter.x = v + 1;
            });
            yield { op: 'load' };
            const v = counter.x;
            yield { op: 'store' };
            counter.x = v + 1;
          },
          { cpu: 3 },
        );
        s.spawn('b', function* (): KernelGen {
          yield { op: 'nop' };
        });
        return {
          machine: m,
          finish: () => (counter.x === 2 ? [] : [`lost update: counter ${counter.x}`]),
        };
      },
    };
    registerScenario(toy);
    try {
      const r = explore('toy-worker', { strategy: 'dfs' });
      expect(r.failed).toBe(true);
      const header = r.report!.split('\n').find((l) => l.startsWith(' step |'))!;
      // b takes the lowest CPU no live task runs on: a is on 3, so 0.
      expect(header).toMatch(/cpu3 a\/1 +\| cpu0 b\/2 +\| cpu3 kworker\/3/);
    } finally {
      unregisterScenario('toy-worker');
    }
  });

  it('a race across two spinlocks needs two CPUs: dfs finds it on two, exhausts one', () => {
    registerScenario(twoLocks);
    try {
      const two = explore('toy-two-locks', { variant: 'two-cpus', strategy: 'dfs' });
      expect(two.failed).toBe(true);
      expect(two.failure?.message).toMatch(/lost update/);
      const one = explore('toy-two-locks', { variant: 'one-cpu', strategy: 'dfs' });
      expect(one).toMatchObject({ failed: false, exhausted: true });
      // Each task is two units: the step to its spin_lock point, then its whole critical
      // section (taken, preemption off, to the unlock): C(4, 2) = 6 orders.
      expect(one.schedules).toBe(6);
    } finally {
      unregisterScenario('toy-two-locks');
    }
  });
});
