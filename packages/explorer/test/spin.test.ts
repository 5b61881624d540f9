import {
  folioRefFreeze,
  folioRefUnfreeze,
  folioTryGet,
  GFP,
  getPage,
  hexPfn,
  type KernelGen,
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
  raceMachine,
  registerScenario,
  replay,
  type Scenario,
  unregisterScenario,
} from '../src/index.js';

/**
 * A page-cache lookup that repeats until its folio_try_get() succeeds, as filemap_get_entry()
 * does (`goto repeat`), against a migrator that freezes the folio's count. `relax`: the
 * lookup yields cpu_relax after a failed get. Variants: `fixed` (folio_ref_freeze decides),
 * `buggy` (a pre-check of the count is trusted and 0 stored plainly, wiping out a reference
 * taken in between), `stuck` (the migrator never unfreezes: nothing ends the spin),
 * `sleeps` (the migrator then sleeps on a wait queue nobody wakes).
 */
function spinScenario(name: string, relax: boolean): Scenario {
  return {
    name,
    description: 'a lookup spinning on folio_try_get against a migrator freezing the count',
    variants: ['buggy', 'fixed', 'stuck', 'sleeps'],
    profiles: ['v6.3'],
    setup({ variant, profile }) {
      const m = raceMachine(profile);
      const mem = m.mem;
      const p = mem.pages;
      // P: in the page cache, isolated (2 references); D: the migration target.
      const P = m.allocPages(GFP.HIGHUSER_MOVABLE, 0, 'pagecache');
      getPage(mem, P);
      const D = m.allocPages(GFP.HIGHUSER_MOVABLE, 0, 'target');
      const cache = { slot: P, held: -1, frozen: false };
      const preempt = (): boolean => m.sched.preemptible;

      function* freeze(): KernelGen<boolean> {
        if (variant === 'buggy') {
          if (preempt()) yield { op: 'folio_ref_count', pfn: P, note: '== 2?' };
          if (p.refcount[P] !== 2) return false;
          if (preempt()) yield { op: 'folio_set_count', pfn: P, note: '0' };
          p.refcount[P] = 0;
          return true;
        }
        if (preempt()) yield { op: 'folio_ref_freeze', pfn: P, note: '2 -> 0' };
        return folioRefFreeze(mem, P, 2);
      }

      function* migrator(): KernelGen<boolean> {
        if (preempt()) yield { op: 'folio_lock', pfn: P };
        trylockPage(mem, P);
        const moved = yield* freeze();
        if (moved) {
          cache.frozen = true;
          if (variant === 'stuck') return true;
          if (variant === 'sleeps') {
            yield { op: 'block', key: 'never', what: 'a wait queue nobody wakes' };
            return true;
          }
          if (preempt()) yield { op: 'xas_store', pfn: D };
          getPage(mem, D);
          cache.slot = D;
          if (preempt()) yield { op: 'folio_ref_unfreeze', pfn: P, note: '1' };
          cache.frozen = false;
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
          cache.held = f;
          if (preempt()) yield { op: 'xas_reload', pfn: f };
          const again = cache.slot === f;
          if (preempt()) yield { op: 'folio_put', pfn: f };
          cache.held = -1;
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
        check: () =>
          cache.frozen && cache.held === P
            ? [`${hexPfn(P)} is frozen while the lookup holds a reference to it`]
            : [],
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

  it('DFS exhausts the fixed variant at bound 2 without a failure', () => {
    const r = explore(SPIN, { variant: 'fixed', strategy: 'dfs', bound: 2, runs: 100_000 });
    expect(r).toMatchObject({ failed: false, exhausted: true, bound: 2 });
    expect(r.schedules).toBeGreaterThan(1);
  });

  it('DFS finds the buggy variant, and the failing schedule passes on the fixed one', () => {
    const r = explore(SPIN, { variant: 'buggy', strategy: 'dfs', bound: 2, runs: 100_000 });
    expect(r.failed).toBe(true);
    expect(r.failure?.kind).toBe('assertion');
    expect(r.failure?.message).toMatch(/frozen while the lookup holds a reference/);
    expect(r.reproduced).toBe(true);
    expect(replay(SPIN, { variant: 'fixed', schedule: r.schedule! }).failed).toBe(false);
  });

  it.each(['random', 'pct'] as const)('%s runs of the fixed variant all end', (strategy) => {
    expect(explore(SPIN, { variant: 'fixed', strategy, runs: 300 })).toMatchObject({
      failed: false,
      schedules: 300,
    });
    expect(explore(SPIN, { variant: 'buggy', strategy, runs: 2000 }).failed).toBe(true);
  });

  it('the spinner is not run right after its cpu_relax, and leaving it is no preemption', () => {
    const sc = spinScenario(SPIN, true);
    for (let seed = 1; seed <= 200; seed++) {
      const e = execute(sc, 'fixed', 'v6.3', new RandomChooser(seed), { trace: true });
      expect(e.failure).toBeUndefined();
      const rows = e.trace!;
      // Once the migrator is done, the lookup is alone: it goes on.
      const alone = rows.findIndex((row) => row.point.op === 'done');
      rows.forEach((row, i) => {
        if (row.point.op !== CPU_RELAX || i + 1 >= rows.length) return;
        if (alone < 0 || i < alone) expect(rows[i + 1].task).not.toBe(row.task);
        expect(rows[i + 1].preempted).toBe(false);
      });
    }
    // The lookup does spin in some schedule: the migrator's frozen window is preempted.
    let spins = 0;
    for (let seed = 1; seed <= 200 && spins === 0; seed++) {
      const e = execute(sc, 'fixed', 'v6.3', new RandomChooser(seed), { trace: true });
      spins += e.trace!.filter((row) => row.point.op === CPU_RELAX).length;
    }
    expect(spins).toBeGreaterThan(0);
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
