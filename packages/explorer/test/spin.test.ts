import {
  folioRefFreeze,
  folioRefUnfreeze,
  folioTryGet,
  GFP,
  getPage,
  hexPfn,
  type KernelGen,
  Livelock,
  PROFILE_NAMES,
  putPage,
  trylockPage,
  unlockPage,
} from '@mops/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CPU_RELAX,
  cpuRelax,
  execute,
  explore,
  MAX_TABLE_ROWS,
  RandomChooser,
  ReplayChooser,
  raceMachine,
  registerScenario,
  replay,
  resolveScenario,
  type Scenario,
  unregisterScenario,
} from '../src/index.js';

/**
 * 9b cut down to what the runner's spin handling needs beyond it: a page-cache lookup that
 * repeats until its folio_try_get() succeeds against a migrator that freezes the folio's
 * count, in variants no kernel has. `relax`: the lookup yields cpu_relax after a failed get
 * (without it, the loop spins inside the migrator's frozen window). Variants: `fixed` (the
 * migrator unfreezes), `stuck` (the migrator never unfreezes: nothing ends the spin),
 * `sleeps` (the migrator then sleeps on a wait queue nobody wakes).
 */
function spinScenario(name: string, relax: boolean): Scenario {
  return {
    name,
    description: 'a lookup spinning on folio_try_get against a migrator freezing the count',
    variants: ['fixed', 'stuck', 'sleeps'],
    profiles: ['v6.3'],
    setup({ variant, profile }) {
      const m = raceMachine(profile);
      const mem = m.mem;
      const p = mem.pages;
      // P: in the page cache, isolated (2 references); D: the migration target.
      const P = m.allocPages(GFP.HIGHUSER_MOVABLE, 0, 'pagecache');
      getPage(mem, P);
      const D = m.allocPages(GFP.HIGHUSER_MOVABLE, 0, 'target');
      const cache = { slot: P };
      const preempt = (): boolean => m.sched.preemptible;

      function* migrator(): KernelGen<boolean> {
        if (preempt()) yield { op: 'folio_lock', pfn: P };
        trylockPage(mem, P);
        if (preempt()) yield { op: 'folio_ref_freeze', pfn: P, note: '2 -> 0' };
        const moved = folioRefFreeze(mem, P, 2);
        if (moved) {
          if (variant === 'stuck') return true;
          if (variant === 'sleeps') {
            yield { op: 'block', key: 'never', what: 'a wait queue nobody wakes' };
            return true;
          }
          if (preempt()) yield { op: 'xas_store', pfn: D };
          getPage(mem, D);
          cache.slot = D;
          if (preempt()) yield { op: 'folio_ref_unfreeze', pfn: P, note: '1' };
          folioRefUnfreeze(mem, P, 1);
        }
        if (preempt()) yield { op: 'folio_unlock', pfn: P };
        unlockPage(m, P);
        if (preempt()) yield { op: 'folio_put', note: 'src and dst' };
        putPage(mem, P);
        putPage(mem, D);
        return moved;
      }

      function* lookup(): KernelGen {
        for (;;) {
          if (preempt()) yield { op: 'xas_load' };
          const f = cache.slot;
          if (preempt()) yield { op: 'folio_try_get', pfn: f };
          if (!folioTryGet(mem, f)) {
            if (relax) yield* cpuRelax(f, 'count frozen: repeat');
            continue;
          }
          if (preempt()) yield { op: 'xas_reload', pfn: f };
          const again = cache.slot === f;
          if (preempt()) yield { op: 'folio_put', pfn: f };
          putPage(mem, f);
          if (again) return;
        }
      }

      return {
        machine: m,
        state: [cache],
        start: () => {
          m.sched.spawn('migrator', migrator);
          m.sched.spawn('lookup', lookup);
        },
        finish: () => {
          const gone = cache.slot === P ? D : P;
          const out: string[] = [];
          if (p.refcount[cache.slot] !== 1)
            out.push(`${hexPfn(cache.slot)} has refcount ${p.refcount[cache.slot]}`);
          if (p.refcount[gone] !== 0) out.push(`${hexPfn(gone)} was not freed`);
          return out;
        },
      };
    },
  };
}

const SPIN = 'test-spin-relax';
const NO_RELAX = 'test-spin-busy';

beforeAll(() => {
  registerScenario(spinScenario(SPIN, true), { replace: true });
  registerScenario(spinScenario(NO_RELAX, false), { replace: true });
});
afterAll(() => {
  unregisterScenario(SPIN);
  unregisterScenario(NO_RELAX);
});

describe('cpu_relax: a spin-wait lets the other tasks progress', () => {
  it('cpuRelax yields one cpu_relax point, with the page and note when given', () => {
    expect([...cpuRelax()]).toEqual([{ op: CPU_RELAX }]);
    expect([...cpuRelax(3, 'frozen')]).toEqual([{ op: 'cpu_relax', pfn: 3, note: 'frozen' }]);
  });

  it('a spin nobody can end is a livelock at once, naming the tasks', () => {
    // The migrator froze the count and finished: the lookup spins alone.
    const r = explore(SPIN, { variant: 'stuck', strategy: 'dfs' });
    expect(r.failed).toBe(true);
    expect(r.failure?.kind).toBe('livelock');
    expect(r.failure?.message).toBe(
      'lookup/2 spins at cpu_relax pfn=0x0 (count frozen: repeat) and no other task can run (no other task is live)',
    );
    expect(r.steps).toBeLessThan(20);
    expect(r.report).toContain('no other task is live: nothing can end the spin');
    expect(r.reproduced).toBe(true);
    // The other task asleep: it is listed with what it waits on.
    const s = explore(SPIN, { variant: 'sleeps', strategy: 'random', runs: 50 });
    expect(s.failure?.kind).toBe('livelock');
    expect(s.failure?.message).toMatch(
      /no other task can run \(1 other live: migrator\/1 blocked\)/,
    );
    expect(s.report).toContain(
      'INFO: task migrator/1 (cpu 0) blocked on a wait queue nobody wakes [never]',
    );
    expect(s.steps).toBeLessThan(20);
  });
});

describe("the runner's spin rule and livelock report are core's", () => {
  /** The spin scenario, logging every point its tasks reach as `name:op` into `log`. */
  function logged(log: string[]): Scenario {
    const sc = spinScenario('spin-logged', true);
    return {
      ...sc,
      setup(ctx) {
        const inst = sc.setup(ctx);
        inst.machine.sched.onStep = (t, p) => {
          log.push(`${t.name}:${p.op}`);
        };
        return inst;
      },
    };
  }

  it.each([
    ['stuck', 'run-to-completion', []],
    ['stuck', 'round-robin', [1, 2, 1, 2, 1, 2]],
    ['sleeps', 'run-to-completion', []],
    ['sleeps', 'round-robin', [1, 2, 1, 2, 1, 2]],
  ] as const)(
    '%s, %s: the runner following the same picks fails with the Livelock runAll throws, at the same point',
    (variant, strategy, picks) => {
      const coreLog: string[] = [];
      const inst = logged(coreLog).setup({ variant, profile: 'v6.3' });
      inst.start?.();
      let err: unknown;
      try {
        inst.machine.sched.runAll(strategy);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(Livelock);
      const core = err as Livelock;
      expect(core.spinner?.name).toBe('lookup');
      // Its first cpu_relax with the migrator done or asleep, then one more round alone that
      // ends at cpu_relax again: the spin cannot end.
      expect(coreLog.at(-1)).toBe('lookup:cpu_relax');
      expect(coreLog.filter((x) => x === 'lookup:cpu_relax')).toHaveLength(2);
      const log: string[] = [];
      const e = execute(logged(log), variant, 'v6.3', new ReplayChooser(picks), {
        reuse: false,
        memo: false,
      });
      expect(e.failure).toMatchObject({
        kind: 'livelock',
        message: core.reason,
        detail: core.dump,
      });
      expect(log).toEqual(coreLog);
    },
  );
});

describe('9b: the lookup repeats as filemap_get_entry does, with cpu_relax after a failed get', () => {
  const sc = () => resolveScenario('9b').scenario;

  it.each([
    ['v6.3', 1452],
    ['v6.0', 1452],
    ['v4.8', 2152],
    ['v6.17', 2152],
  ] as const)(
    'DFS runs every schedule of the fixed variant on %s (%i): no failure, no livelock',
    (profile, count) => {
      // No schedule of 9b has more than 12 preemptions: bound 64 leaves none out.
      const r = explore('9b', {
        variant: 'fixed',
        profile,
        strategy: 'dfs',
        bound: 64,
        runs: 100_000,
      });
      expect(r).toMatchObject({ failed: false, exhausted: true, schedules: count });
      const fewer = explore('9b', {
        variant: 'fixed',
        profile,
        strategy: 'dfs',
        bound: 12,
        runs: 100_000,
      });
      expect(fewer).toMatchObject({ failed: false, exhausted: true, schedules: count });
    },
  );

  it.each(PROFILE_NAMES)(
    'DFS finds the buggy variant on %s, a schedule the fixed one passes',
    (profile) => {
      const r = explore('9b', {
        variant: 'buggy',
        profile,
        strategy: 'dfs',
        bound: 2,
        runs: 100_000,
      });
      expect(r.failure?.kind).toBe('assertion');
      expect(r.failure?.message).toMatch(
        /^0x0 is frozen while the lookup holds a reference to it: the pre-check read 2 \(expected 2\), the lookup's get made it 3/,
      );
      expect(r.schedule).toBe('v1:9b:1112221');
      expect(r.reproduced).toBe(true);
      expect(replay('9b', { variant: 'fixed', profile, schedule: r.schedule! }).failed).toBe(false);
    },
  );

  it.each(['random', 'pct'] as const)('%s runs of the fixed variant all end', (strategy) => {
    expect(explore('9b', { variant: 'fixed', strategy, runs: 300 })).toMatchObject({
      failed: false,
      schedules: 300,
    });
    expect(explore('9b', { variant: 'buggy', strategy, runs: 2000 }).failure?.kind).toBe(
      'assertion',
    );
  });

  it('the frozen count makes the migrator run: the lookup repeats past three failed rounds and finds D', () => {
    // The migrator runs until P's count is frozen, then the lookup is chosen whenever it may
    // run. Each failed get ends at cpu_relax, so the migrator stores D and unfreezes before
    // the lookup's next round; a loop giving up after three attempts would spend them all on
    // the frozen P and return no folio.
    const e = execute(sc(), 'fixed', 'v6.3', new ReplayChooser([1, 1, 1, ...Array(20).fill(2)]), {
      reuse: false,
      trace: true,
    });
    expect(e.failure).toBeUndefined();
    const rows = e.trace!.map(
      (r) => `${r.task} ${r.point.op}${r.point.pfn === undefined ? '' : ` ${r.point.pfn}`}`,
    );
    expect(rows).toEqual([
      '1 folio_lock 0',
      '1 folio_ref_freeze 0',
      '1 xas_store 1',
      '2 xas_load',
      '2 folio_try_get_rcu 0',
      '2 cpu_relax 0',
      '1 folio_ref_unfreeze 0',
      '2 xas_load',
      '2 folio_try_get_rcu 1',
      '2 xas_reload 1',
      '2 folio_put 1',
      '2 done',
      '1 folio_unlock 0',
      '1 folio_put',
      '1 done',
    ]);
    expect(e.trace![5].point.note).toBe('folio_try_get_rcu failed: repeat');
    // D is in the page cache alone, P freed.
    expect([e.machine.mem.pages.refcount[1], e.machine.mem.pages.refcount[0]]).toEqual([1, 0]);
  });

  it('the lookup is not run right after its cpu_relax, and leaving it is no preemption', () => {
    let spins = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const e = execute(sc(), 'fixed', 'v6.3', new RandomChooser(seed), { trace: true });
      expect(e.failure).toBeUndefined();
      const rows = e.trace!;
      // Once the migrator is done, the lookup is alone: it goes on.
      const alone = rows.findIndex((row) => row.point.op === 'done' && row.task === 1);
      rows.forEach((row, i) => {
        if (row.point.op !== CPU_RELAX || i + 1 >= rows.length) return;
        spins++;
        if (alone < 0 || i < alone) expect(rows[i + 1].task).not.toBe(row.task);
        expect(rows[i + 1].preempted).toBe(false);
      });
    }
    // The lookup does spin in some schedules: the migrator's frozen window is preempted.
    expect(spins).toBeGreaterThan(0);
  });
});

describe('a loop that spins without cpu_relax', () => {
  it('is stopped at maxSteps with advice, and its long report keeps only both ends', () => {
    const r = explore(NO_RELAX, { variant: 'fixed', strategy: 'dfs', shrink: false });
    expect(r.failed).toBe(true);
    expect(r.failure?.message).toMatch(/^no end after 10000 steps \(livelock\? .*cpu_relax/);
    expect(r.steps).toBe(10_000);
    // The JSON keeps every step; the report's table its first and last rows.
    expect(r.trace?.rows).toHaveLength(10_000);
    const report = r.report!;
    expect(report.split('\n').length).toBeLessThan(MAX_TABLE_ROWS);
    expect(report).toMatch(/\n {2}\.\.\. \| 9800 steps left out \(101 to 9900\)/);
    expect(report).toMatch(/\n {4}1 \| /);
    expect(report).toMatch(/\n {2}100 \| /);
    expect(report).not.toMatch(/\n {2}101 \| /);
    expect(report).toMatch(/\n 9901 \| /);
    expect(report).toMatch(/\n10000 \| /);
    // The detail says where each task was.
    expect(report).toMatch(/task lookup\/2 \(cpu 1\) runnable, \d+ points, last at xas_load/);
    expect(report).toContain('task migrator/1 (cpu 0) runnable, 3 points, last at xas_store');
  }, 60_000);
});
