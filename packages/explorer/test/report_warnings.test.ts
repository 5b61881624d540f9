import { defineMovableOps, GFP, getProfile, ISOLATED, type KernelGen, Mutex } from '@mops/core';
import { describe, expect, it } from 'vitest';
import {
  execute,
  explore,
  isolateThenMigrate,
  raceMachine,
  registerScenario,
  replay,
  type Scenario,
  unregisterScenario,
} from '../src/index.js';
import { publishMovable } from './helpers.js';

const VIOLATION =
  'protocol_violation: stash: isolate_page set the isolated flag, which only the VM may touch';

/**
 * A driver whose isolate_page sets PG_isolated itself: in the step that calls it, the VM
 * warns on the flag it finds set, then records the driver's protocol violation.
 */
const stash: Scenario = {
  name: 'toy-stash-isolated',
  description: "a driver's isolate_page sets the isolated flag itself",
  variants: ['only'],
  profiles: ['v4.8', 'v6.0', 'v6.3', 'v6.17'],
  setup: ({ profile }) => {
    const m = raceMachine(profile);
    const mem = m.mem;
    const ops = defineMovableOps('stash', {
      isolatePage(page: number) {
        mem.pages.flags[page] |= ISOLATED;
        return true;
      },
      migratePage: () => 0,
      putbackPage: () => {},
    });
    const pfn = m.allocPages(GFP.HIGHUSER_MOVABLE, 0, 'stash');
    publishMovable(m, pfn, ops, 'stash');
    m.sched.spawn('isolate', function* (): KernelGen {
      yield* isolateThenMigrate(m, pfn, false);
    });
    m.sched.spawn('other', function* (): KernelGen {
      yield { op: 'nop' };
    });
    return { machine: m };
  },
};

/**
 * One task running alone (the other is done after its first step) raises the VM's warning
 * at one point and a driver's protocol violation at a later one; the oracles of an untraced
 * run see both only at its end.
 */
const apart: Scenario = {
  name: 'toy-warnings-apart',
  description: 'a warning, then a protocol violation, while a task runs alone',
  variants: ['only'],
  profiles: ['v6.3'],
  setup: ({ profile }) => {
    const m = raceMachine(profile);
    m.sched.spawn('other', function* (): KernelGen {});
    m.sched.spawn('alone', function* (): KernelGen {
      yield { op: 'p0' };
      yield { op: 'p1' };
      m.mem.warn('VM_WARN_ON_ONCE', 'WARNING: the VM noticed');
      yield { op: 'p2' };
      m.mem.warn('protocol_violation', 'drv: the driver did it');
      yield { op: 'p3' };
      yield { op: 'p4' };
    });
    return { machine: m };
  },
};

describe('a failure with several warnings before the check', () => {
  it.each(['v4.8', 'v6.0', 'v6.3', 'v6.17'] as const)(
    "%s: the driver's protocol violation leads the failure; the VM's own warning follows in the report",
    (profile) => {
      registerScenario(stash, { replace: true });
      try {
        const r = explore(stash.name, { runs: 1, profile });
        expect(r.failure).toMatchObject({ kind: 'warning', message: VIOLATION });
        const report = r.report!;
        expect(report).toContain(`FAILED: warning after step ${r.failure!.step}: ${VIOLATION}`);
        expect(report).toContain('  page dumped because: isolate_page set the isolated flag');
        const kind = profile === 'v6.17' ? 'VM_WARN_ON_ONCE' : 'WARN_ON_ONCE';
        const vm = `  ${kind}: WARNING: ${getProfile(profile).isolateFlagWarning} after stash isolate_page`;
        expect(report).toContain(vm);
        expect(report.indexOf(VIOLATION)).toBeLessThan(report.indexOf(vm));
        // The replay of the reported schedule says the same.
        const rep = replay(stash.name, { profile, schedule: r.schedule! });
        expect(rep.failure).toMatchObject({ kind: 'warning', message: VIOLATION });
        expect(rep.report).toContain(vm);
      } finally {
        unregisterScenario(stash.name);
      }
    },
  );

  it('a traced run says at which step the violation it reports arose, not the earlier warning', () => {
    registerScenario(apart, { replace: true });
    try {
      // `other` (task 1) first: `alone` then runs alone to its end.
      const r = replay(apart.name, { schedule: `v1:${apart.name}:1` });
      expect(r.failure).toMatchObject({
        kind: 'warning',
        message: 'protocol_violation: drv: the driver did it',
        raisedAt: expect.any(Number),
      });
      const rows = r.report.split('\n');
      const row = (k: number) => rows.find((l) => l.startsWith(`${String(k).padStart(5)} |`));
      expect(row(r.failure!.raisedAt!)).toContain('p3');
      expect(r.failure!.raisedAt).toBeLessThan(r.failure!.step);
      expect(r.report).toContain('  VM_WARN_ON_ONCE: WARNING: the VM noticed');
    } finally {
      unregisterScenario(apart.name);
    }
  });
});

/**
 * Two tasks take two driver mutexes in opposite orders (the fixed variant: the same order).
 * Every schedule that deadlocks took the second lock of the inversion in the step that
 * blocked for good, so lockdep's report and the deadlock come from the same step.
 */
const abba: Scenario = {
  name: 'toy-abba-mutexes',
  description: 'two driver mutexes taken in opposite orders',
  variants: ['buggy', 'fixed'],
  profiles: ['v6.3'],
  setup: ({ variant, profile }) => {
    const m = raceMachine(profile);
    const a = new Mutex(m.sched, 'drv->mutex');
    const b = new Mutex(m.sched, 'drv->lists');
    const both = (x: Mutex, y: Mutex) =>
      function* (): KernelGen {
        yield* x.lock();
        yield* y.lock();
        y.unlock();
        x.unlock();
      };
    m.sched.spawn('migrate', both(a, b));
    m.sched.spawn('shrink', variant === 'buggy' ? both(b, a) : both(a, b));
    return { machine: m, state: [a, b] };
  },
};

describe('a lock inversion: lockdep’s report leads the failure', () => {
  it('a serial schedule already fails on lockdep’s report, named by its title and classes; the fixed order passes', () => {
    registerScenario(abba);
    try {
      const r = explore(abba.name, { variant: 'buggy', profile: 'v6.3', strategy: 'dfs' });
      expect(r.failure).toMatchObject({
        kind: 'lockdep',
        message:
          'lockdep: WARNING: possible circular locking dependency detected (drv->mutex -> drv->lists)',
      });
      const fixed = explore(abba.name, { variant: 'fixed', profile: 'v6.3', strategy: 'dfs' });
      expect(fixed.failure).toBeUndefined();
    } finally {
      unregisterScenario(abba.name);
    }
  });

  it('a schedule that deadlocks in the step lockdep reports in: the report leads, the deadlock follows in the detail', () => {
    // migrate takes drv->mutex, shrink drv->lists, then each asks for the other's.
    const order = [1, 2, 1, 2];
    const e = execute(
      abba,
      'buggy',
      'v6.3',
      { choose: (runnable, _prev, i) => runnable.find((t) => t.id === order[i]) ?? runnable[0] },
      { reuse: false },
    );
    expect(e.failure).toMatchObject({
      kind: 'lockdep',
      message:
        'lockdep: WARNING: possible circular locking dependency detected (drv->mutex -> drv->lists)',
    });
    expect(e.failure?.detail).toMatch(/^=+\nWARNING: possible circular locking dependency/);
    expect(e.failure?.detail).toMatch(/\n\nDeadlock: .*\n/);
  });
});
