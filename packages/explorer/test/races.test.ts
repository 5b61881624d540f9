import { describe, expect, it } from 'vitest';
import {
  execute,
  explore,
  ReplayChooser,
  replay,
  resolveScenario,
  type Scenario,
  scenarios,
} from '../src/index.js';
import { LEAST_PREEMPTIONS, RACES } from './helpers.js';

describe.each(RACES)('race %s', (name) => {
  it.each(['random', 'pct'] as const)(
    'buggy variant fails under %s with a shrunk counterexample whose replay reproduces it',
    (strategy) => {
      const r = explore(name, { variant: 'buggy', strategy, runs: 2000, seed: 1 });
      expect(r.failed).toBe(true);
      expect(r.schedule).toMatch(new RegExp(`^v1:${name}:[1-9a-z]*$`));
      expect(r.failure?.kind).toBeDefined();
      // Confirmed on a fresh instance before it was reported.
      expect(r.reproduced).toBe(true);
      expect(r.note).toBeUndefined();
      // Shrinking never makes it worse: fewer preemptions, or as many and no more steps
      // (a schedule it left as found has no shrunkFrom).
      const from = r.shrunkFrom ?? { steps: r.steps!, preemptions: r.preemptions! };
      expect(
        r.preemptions! < from.preemptions ||
          (r.preemptions === from.preemptions && r.steps! <= from.steps),
      ).toBe(true);
      expect(r.preemptions).toBeGreaterThanOrEqual(1);
      // The report names everything needed to understand and replay the failure.
      expect(r.report).toContain(`mops race report: ${name} (variant buggy, profile v6.3)`);
      expect(r.report).toContain(`strategy ${strategy}`);
      expect(r.report).toContain(`seed ${r.seed}`);
      expect(r.report).toContain(r.failure!.message);
      expect(r.report).toMatch(/ step \| cpu0 /);
      expect(r.command).toBe(
        `mops replay ${name} --variant buggy --profile v6.3 --schedule ${r.schedule}`,
      );
      expect(r.report).toContain(`replay: ${r.command}`);
      // Replay reproduces the same failure at the same step, and gives back the same schedule.
      const rep = replay(name, { variant: 'buggy', schedule: r.schedule! });
      expect(rep.failed).toBe(true);
      expect(rep.diverged).toBe(false);
      expect(rep.failure).toEqual(r.failure);
      expect(rep.schedule).toBe(r.schedule);
      expect(rep.steps).toBe(r.steps);
    },
  );

  it('fixed variant passes random and PCT runs', () => {
    expect(explore(name, { variant: 'fixed', strategy: 'random', runs: 300 })).toMatchObject({
      failed: false,
      schedules: 300,
    });
    expect(explore(name, { variant: 'fixed', strategy: 'pct', runs: 300, depth: 3 })).toMatchObject(
      { failed: false, schedules: 300 },
    );
  });

  it('fixed variant passes DFS with preemption bound 1, exhausting it', () => {
    const r = explore(name, { variant: 'fixed', strategy: 'dfs', bound: 1, runs: 100_000 });
    expect(r).toMatchObject({ failed: false, exhausted: true, bound: 1 });
    expect(r.schedules).toBeGreaterThan(1);
  });

  it('buggy variant fails under DFS with the fewest preemptions the race needs', () => {
    const bound = LEAST_PREEMPTIONS[name] ?? 1;
    if (bound > 1) {
      const below = explore(name, { variant: 'buggy', strategy: 'dfs', bound: bound - 1 });
      expect(below).toMatchObject({ failed: false, exhausted: true });
    }
    const r = explore(name, { variant: 'buggy', strategy: 'dfs', bound, runs: 100_000 });
    expect(r.failed).toBe(true);
    expect(replay(name, { variant: 'buggy', schedule: r.schedule! }).failed).toBe(true);
  });
});

describe('DFS with preemption bound 2 exhausts the fixed variants', () => {
  it.each([
    ['9a', 9],
    ['9b', 57],
    ['9c', 65],
    ['9d', 67],
    ['9e', 22],
    ['9d-double', 1484],
    ['9e-split', 26],
  ] as const)('%s: %i schedules', (name, count) => {
    const r = explore(name, { variant: 'fixed', strategy: 'dfs', bound: 2, runs: 100_000 });
    expect(r).toMatchObject({ failed: false, exhausted: true, bound: 2, schedules: count });
  });

  it('reports a bound not exhausted within the schedule budget', () => {
    const r = explore('9d-double', { variant: 'fixed', strategy: 'dfs', bound: 2, runs: 50 });
    expect(r).toMatchObject({ failed: false, exhausted: false, schedules: 50 });
  });

  it('bounded counts grow with the bound and stop growing once it covers every schedule', () => {
    const counts = [0, 1, 2, 3, 4, 5].map(
      (bound) =>
        explore('9a', { variant: 'fixed', strategy: 'dfs', bound, runs: 100_000 }).schedules,
    );
    for (let i = 1; i < counts.length; i++) expect(counts[i]).toBeGreaterThanOrEqual(counts[i - 1]);
    expect(counts[5]).toBe(counts[4]);
  });
});
describe('catalogue interleavings, replayed on both variants', () => {
  it.each([
    ['S04', '9a', 'v1:9a:12', /isolated page 0x0 != examined page 0x1/],
    [
      '§9b',
      '9b',
      'v1:9b:1112221',
      /0x0 is frozen while the lookup holds a reference to it: the pre-check read 2 \(expected 2\), the lookup's get made it 3, and the plain store of 0 wiped that reference out/,
    ],
    ['S29', '9c', 'v1:9c:1111122221', /failed with -EAGAIN: refcount 2, expected 1/],
    ['S29', '9c-passes', 'v1:9c-passes:11111555554', /failed after 10 passes with -EAGAIN/],
    ['S26', '9d', 'v1:9d:22221', /NULL pointer dereference/],
    ['S27', '9d-double', 'v1:9d-double:1111122223', /page isolated twice/],
    [
      'S30',
      '9e',
      'v1:9e:12',
      /get succeeded on 0x1, now tail page 1 of F2: its refcount slot held F2's total mapcount 5 and the get made it 6/,
    ],
    [
      'S31',
      '9e-split',
      'v1:9e-split:12',
      /^0x2 has refcount 0 although its owner still holds it: the walker put a reference it never took/,
    ],
  ] as const)(
    '%s (%s): the buggy variant fails as the spec says, the fixed one passes',
    (_id, name, schedule, message) => {
      const buggy = replay(name, { variant: 'buggy', schedule });
      expect(buggy.failed).toBe(true);
      expect(buggy.diverged).toBe(false);
      expect(buggy.failure?.message).toMatch(message);
      if (name === '9e-split')
        expect(buggy.report).toContain(
          '0x0 has refcount 2 after the walker let go: the walker kept a reference it took there',
        );
      const fixed = replay(name, { variant: 'fixed', schedule });
      expect(fixed.failed).toBe(false);
    },
  );

  it('S04 (9a) buggy: the caller links the page it examined; the page isolated stays isolated, on no list', () => {
    const r = replay('9a', { variant: 'buggy', schedule: 'v1:9a:12' });
    expect(r.report).toContain(
      'list_add pfn=0x1 (the page examined; 0x0, the one isolated, is on no list)',
    );
    expect(r.report).not.toContain('putback_movable_pages');
    // Before folios the draft's get is get_page_unless_zero on compound_head(page).
    const old = replay('9a', { variant: 'buggy', profile: 'v4.8', schedule: 'v1:9a:12' });
    expect(old.report).toContain('get_page_unless_zero pfn=0x0');
    expect(old.report).not.toContain('folio');
  });

  it.each([
    [
      'v4.8',
      'mmbug',
      /^VM_BUG_ON_PAGE\(PageTail\(page\)\) in page_cache_get_speculative$/,
      'page_cache_get_speculative',
    ],
    ['v6.0', 'assertion', /the get made it 6/, 'folio_ref_try_add_rcu'],
    ['v6.3', 'assertion', /the get made it 6/, 'folio_ref_try_add_rcu'],
    ['v6.17', 'assertion', /the get made it 6/, 'folio_ref_try_add pfn'],
  ] as const)('S30 (9e) buggy on %s: %s, through %s', (profile, kind, message, get) => {
    const r = replay('9e', { variant: 'buggy', profile, schedule: 'v1:9e:12' });
    expect(r.failure?.kind).toBe(kind);
    expect(r.failure?.message).toMatch(message);
    expect(r.report).toContain(get);
  });

  it.each(['v6.3', 'v6.0', 'v4.8'] as const)(
    'S27 (9d-double) on %s: the v3 draft reports the second isolation, not the owner clearing PG_isolated',
    (profile) => {
      // The draft's putback tolerates the flag the owner cleared: neither putback_page's
      // flag check nor VM_BUG_ON_PAGE(!PageIsolated(page)) is what the search finds.
      for (const strategy of [undefined, 'dfs'] as const) {
        const r = explore('9d-double', { variant: 'buggy', profile, strategy });
        expect(r.failed).toBe(true);
        expect(r.failure?.message).toMatch(/page isolated twice/);
        expect(r.failure?.message).not.toMatch(/cleared before putback_page|PageIsolated/);
        expect(
          replay('9d-double', { variant: 'fixed', profile, schedule: r.schedule! }).failed,
        ).toBe(false);
      }
    },
  );

  it('S27 (9d-double) buggy: when the owner clears PG_isolated before A puts T back, the putback only drops the isolation reference', () => {
    const sc = resolveScenario('9d-double').scenario;
    // A isolates T and holds it; the owner clears the flag; A puts T back; B never runs first.
    const e = execute(sc, 'buggy', 'v6.3', new ReplayChooser([1, 1, 1, 1, 1, 2, 2, 2, 2, 1]), {
      reuse: false,
      trace: true,
    });
    expect(e.failure).toBeUndefined();
    const a = e.trace!.filter((row) => row.task === 1).map((row) => row.point.op);
    expect(a).not.toContain('folio_clear_isolated');
    // T is the owner's again: its one reference, no flag, on no list.
    const p = e.machine.mem.pages;
    expect(p.refcount[0]).toBe(1);
  });

  it('§9b fixed (v6.17): a reference taken after the early count check makes the freeze fail, and P stays', () => {
    const sc = resolveScenario('9b').scenario;
    // The lookup takes its reference between the migrator's count check and its freeze.
    const e = execute(sc, 'fixed', 'v6.17', new ReplayChooser([1, 1, 1, 2, 2, 2, 1]), {
      reuse: false,
      trace: true,
    });
    expect(e.failure).toBeUndefined();
    const migrator = e.trace!.filter((row) => row.task === 1).map((row) => row.point.op);
    expect(migrator).toEqual([
      'folio_lock',
      'folio_ref_count',
      'folio_ref_freeze',
      'folio_unlock',
      'folio_put',
      'done',
    ]);
    const p = e.machine.mem.pages;
    expect(p.refcount[0]).toBe(1);
    expect(p.refcount[1]).toBe(0);
  });

  it.each([
    ['v4.8', 'lock_page', 'page_count', 'page_cache_get_speculative'],
    ['v6.0', 'lock_page', 'folio_ref_freeze', 'folio_try_get_rcu'],
    ['v6.3', 'folio_lock', 'folio_ref_freeze', 'folio_try_get_rcu'],
    ['v6.17', 'folio_lock', 'folio_ref_count', 'folio_try_get'],
  ] as const)(
    '§9b on %s: the migrator starts with %s, %s; the lookup gets with %s',
    (profile, lock, test, get) => {
      const sc = resolveScenario('9b').scenario;
      // The migrator runs alone up to its first count test, then the lookup takes its turn.
      const e = execute(sc, 'fixed', profile, new ReplayChooser([1, 1, 2, 2]), {
        reuse: false,
        trace: true,
      });
      expect(e.failure).toBeUndefined();
      const ops = (task: number) => e.trace!.filter((r) => r.task === task).map((r) => r.point.op);
      expect(ops(1).slice(0, 2)).toEqual([lock, test]);
      expect(ops(2)).toContain(get);
    },
  );

  it('§9b buggy: without the check, the wiped-out reference ends in a put on a zero count', () => {
    const sc = resolveScenario('9b').scenario;
    const unchecked: Scenario = {
      ...sc,
      name: '9b-unchecked',
      setup: (ctx) => ({ ...sc.setup(ctx), check: undefined }),
    };
    const e = execute(unchecked, 'buggy', 'v6.3', new ReplayChooser([1, 1, 1, 2, 2, 2, 1]), {
      reuse: false,
    });
    expect(e.failure?.kind).toBe('mmbug');
    expect(e.failure?.message).toMatch(/page_ref_count\(page\) == 0/);
  });

  it('S29 fixed: the fault waits without a reference, the migration succeeds, the refault finds D', () => {
    const sc = resolveScenario('9c').scenario;
    const e = execute(sc, 'fixed', 'v6.3', new ReplayChooser([1, 1, 1, 1, 1, 2, 2, 2, 2, 1]), {
      reuse: false,
      trace: true,
    });
    expect(e.failure).toBeUndefined();
    const fault = e.trace!.filter((row) => row.task === 2).map((row) => row.point.op);
    expect(fault).toEqual([
      'spin_lock',
      'pte_offset_map_lock',
      'migration_entry_wait_on_locked',
      'spin_unlock',
      'block',
      // Woken once the migrator is done: the refault finds the PTE present (a traced run
      // shows the points of a task left alone too).
      'spin_lock',
      'pte_offset_map_lock',
      'spin_unlock',
      'done',
    ]);
    const p = e.machine.mem.pages;
    // X (pfn 0) is free, D (pfn 1) is mapped by the PTE alone.
    expect(p.refcount[0]).toBe(0);
    expect(p.refcount[1]).toBe(1);
  });

  it('S29 no-ptl: a fault that queues after dropping the PTL can wait on a freed page', () => {
    const r = explore('9c', { variant: 'no-ptl', strategy: 'dfs', runs: 100_000 });
    expect(r.failed).toBe(true);
    expect(r.failure?.message).toMatch(/queued on the page lock of 0x0 after 0x0 was freed/);
    expect(replay('9c', { variant: 'no-ptl', schedule: r.schedule! }).failed).toBe(true);
    // The same interleaving is harmless once the fault queues under the PTL.
    expect(replay('9c', { variant: 'fixed', schedule: r.schedule! }).failed).toBe(false);
  });

  it('S29 on v4.8: the fault sleeps holding its reference, so one preemption is enough', () => {
    const r = explore('9c', { variant: 'buggy', profile: 'v4.8', strategy: 'dfs', bound: 1 });
    expect(r.failed).toBe(true);
    expect(r.failure?.message).toMatch(/failed with -EAGAIN/);
    const v63 = explore('9c', { variant: 'buggy', profile: 'v6.3', strategy: 'dfs', bound: 1 });
    expect(v63).toMatchObject({ failed: false, exhausted: true });
  });

  it('S30 fixed: F2 is allocated with H as its tail and its metadata is intact', () => {
    const sc = resolveScenario('9e').scenario;
    const e = execute(sc, 'fixed', 'v6.3', new ReplayChooser([1, 2]), { reuse: false });
    expect(e.failure).toBeUndefined();
    const p = e.machine.mem.pages;
    expect(p.compound[1]).toBe(-1);
    expect(p.refcount[1]).toBe(0);
    expect(p.refcount[0]).toBe(1);
  });

  it('S31 fixed: the walker sees the split, drops the reference on H and retries with P', () => {
    const sc = resolveScenario('9e-split').scenario;
    const e = execute(sc, 'fixed', 'v6.3', new ReplayChooser([1, 2, 2, 2, 1, 1, 1, 1, 1]), {
      reuse: false,
      trace: true,
    });
    expect(e.failure).toBeUndefined();
    const walker = e.trace!.filter((row) => row.task === 1).map((row) => row.point.op);
    expect(walker).toEqual([
      'folio_try_get',
      'page_folio recheck',
      'folio_put',
      'folio_try_get',
      'page_folio recheck',
      'put_page',
      'done',
    ]);
    const p = e.machine.mem.pages;
    for (const q of [0, 1, 2, 3]) expect(p.refcount[q]).toBe(1);
    expect(p.compound[2]).toBe(0);
  });
});

/**
 * Scenarios too long for DFS to exhaust with 2 preemptions: 9c-passes (four threads, ten
 * passes). Without preemptions its threads never even fault, so its fixed variant is
 * searched with PCT instead.
 */
const FIXED_BY_PCT = new Set(['9c-passes']);

describe('every supported profile', () => {
  it.each(scenarios().flatMap((s) => s.profiles.map((p) => [s.name, p] as const)))(
    '%s on %s: buggy fails, fixed exhausts DFS bound 2 (or passes PCT)',
    (name, profile) => {
      expect(explore(name, { variant: 'buggy', profile }).failed).toBe(true);
      if (FIXED_BY_PCT.has(name)) {
        const r = explore(name, { variant: 'fixed', profile, strategy: 'pct', runs: 300 });
        expect(r).toMatchObject({ failed: false, schedules: 300, profile });
        return;
      }
      const r = explore(name, {
        variant: 'fixed',
        profile,
        strategy: 'dfs',
        bound: 2,
        runs: 100_000,
      });
      expect(r).toMatchObject({ failed: false, exhausted: true, profile });
    },
  );
});
