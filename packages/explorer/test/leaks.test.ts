/**
 * Scenarios whose runs leave something behind that the snapshot of a reused instance does
 * not restore: the explorer must not report what only such leftovers make fail as a plain,
 * replayable failure.
 */
import { GFP, type KernelGen, MopsError } from '@mops/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  execute,
  explore,
  ReplayChooser,
  raceMachine,
  registerScenario,
  replay,
  type Scenario,
  unregisterScenario,
} from '../src/index.js';
import { oracles } from '../src/oracles.js';

const registered: string[] = [];
function register(s: Scenario): void {
  registerScenario(s, { replace: true });
  registered.push(s.name);
}
afterEach(() => {
  for (const name of registered.splice(0)) unregisterScenario(name);
});

/**
 * A driver keeping the pfns it counts as its own in a Set outside the machine, checked by
 * an invariant checker of its own, as a zbuddy-like allocator would: one task allocates a
 * page for it while another yields. With `listState` false the instance leaves the Set out
 * of `state`, so a reused instance keeps the pfn of the previous run.
 */
function zbuddy(name: string, listState: boolean): Scenario {
  return {
    name,
    description: 'a driver whose live-page set lives outside the machine',
    variants: ['fixed'],
    profiles: ['v6.3'],
    setup({ profile }) {
      const m = raceMachine(profile);
      const drv = { live: new Set<number>() };
      m.registerInvariantChecker('zbuddy', () =>
        [...drv.live].filter((p) => m.mem.pages.refcount[p] === 0).map((p) => `pfn ${p} not live`),
      );
      return {
        machine: m,
        ...(listState ? { state: [drv] } : {}),
        start: () => {
          m.sched.spawn('alloc', function* (): KernelGen {
            if (m.sched.preemptible) yield { op: 'alloc_pages' };
            drv.live.add(m.allocPages(GFP.KERNEL, 0));
            if (m.sched.preemptible) yield { op: 'step' };
          });
          m.sched.spawn('other', function* (): KernelGen {
            if (m.sched.preemptible) yield { op: 'step' };
            if (m.sched.preemptible) yield { op: 'step' };
          });
        },
      };
    },
  };
}

/**
 * A scenario that counts its runs in a closure (not in `state`) and fails from the
 * `failFrom`-th run of an instance on, whatever the schedule; and also, on any run, when
 * task `b` checks a flag while task `a` has it set (a real race, `race` true).
 */
function counting(name: string, failFrom: number, race: boolean): Scenario {
  return {
    name,
    description: 'counts its runs outside its state',
    variants: ['fixed'],
    profiles: ['v6.3'],
    setup({ profile }) {
      const m = raceMachine(profile);
      const drv = { runs: 0 };
      const flag = { set: false, seen: false };
      return {
        machine: m,
        state: [flag],
        start: () => {
          drv.runs++;
          m.sched.spawn('a', function* (): KernelGen {
            if (m.sched.preemptible) yield { op: 'step' };
            flag.set = true;
            if (m.sched.preemptible) yield { op: 'step' };
            flag.set = false;
          });
          m.sched.spawn('b', function* (): KernelGen {
            if (m.sched.preemptible) yield { op: 'step' };
            if (race && flag.set) flag.seen = true;
          });
        },
        check: () => (drv.runs >= failFrom || flag.seen ? ['zbuddy: pfn 1 not live'] : []),
      };
    },
  };
}

/**
 * A driver that gives up a page it owns (task `release`) while another task takes the
 * pages it still owns (task `take`): taking one that is being released is the bug. Every
 * run releases the page, so an instance reused without the owned set in `state` has
 * nothing left to take: on it no schedule can fail.
 */
function releasing(name: string, listState: boolean): Scenario {
  return {
    name,
    description: 'a driver whose owned set lives outside the machine',
    variants: ['buggy'],
    profiles: ['v6.3'],
    setup({ profile }) {
      const m = raceMachine(profile);
      const drv = { owned: new Set([1]), took: false };
      return {
        machine: m,
        ...(listState ? { state: [drv] } : {}),
        start: () => {
          m.sched.spawn('take', function* (): KernelGen {
            if (m.sched.preemptible) yield { op: 'step' };
            if (drv.owned.has(1)) drv.took = true;
          });
          m.sched.spawn('release', function* (): KernelGen {
            drv.owned.delete(1);
            if (m.sched.preemptible) yield { op: 'step' };
          });
        },
        check: () => (drv.took ? ['took a page being released'] : []),
      };
    },
  };
}

describe('state a run leaves outside the snapshot', () => {
  it('is caught when only another order of the tasks shows it: E_STATE, not a clean pass', () => {
    const sc = releasing('owned-nostate', false);
    register(sc);
    // The first run releases first: it passes, and so does its schedule again on the
    // instance restored. A schedule that takes first fails on a fresh instance only.
    expect(() => execute(sc, 'buggy', 'v6.3', new ReplayChooser([2]))).toThrow(
      expect.objectContaining({
        code: 'E_STATE',
        message: expect.stringMatching(
          /^scenario owned-nostate: a schedule that runs the tasks one after another, in the order spawned, run on the instance restored from its snapshot after earlier runs, went otherwise than on a fresh instance from setup: on the fresh instance it failed with `took a page being released`; on the restored one it passed\. /,
        ),
      }),
    );
    expect(() => explore('owned-nostate', { variant: 'buggy', runs: 100 })).toThrow(
      expect.objectContaining({ code: 'E_STATE' }),
    );
    // Listed in `state`, the race is found.
    register(releasing('owned-state', true));
    const r = explore('owned-state', { variant: 'buggy', runs: 100 });
    expect(r.failed).toBe(true);
    expect(r.failure?.message).toBe('took a page being released');
  });

  it('a setup that works only once: the probe says so, and the instance it could not check is not reused', () => {
    let calls = 0;
    const base = releasing('once-setup', true);
    register({
      ...base,
      setup(ctx) {
        if (++calls > 1) throw new Error('resource already claimed');
        // Every schedule passes: a second exploration could only fail by building anew.
        return { ...base.setup(ctx), check: () => [] };
      },
    });
    const run = () => explore('once-setup', { variant: 'buggy', runs: 20 });
    expect(run).toThrow(
      expect.objectContaining({
        code: 'E_PLUGIN',
        message: expect.stringMatching(
          /^scenario once-setup: setup\(\) threw \(Error: resource already claimed\) on a fresh instance built to check the reused one against/,
        ),
      }),
    );
    // Not a clean pass on the unchecked instance: the next exploration builds anew.
    expect(run).toThrow(
      expect.objectContaining({
        code: 'E_PLUGIN',
        message: expect.stringContaining('before any step ran'),
      }),
    );
  });

  it('is caught on the first reuse: E_STATE names `state`, and again on the next exploration', () => {
    register(zbuddy('zbuddy-nostate', false));
    const run = () => explore('zbuddy-nostate', { variant: 'fixed', runs: 100 });
    for (let i = 0; i < 2; i++) {
      let err: unknown;
      try {
        run();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(MopsError);
      expect((err as MopsError).code).toBe('E_STATE');
      expect((err as MopsError).message).toMatch(
        /^scenario zbuddy-nostate: a schedule that runs the tasks one after another, in the order spawned, run on the instance restored from its snapshot after earlier runs, went otherwise than on a fresh instance from setup: on the fresh instance it passed; on the restored one it failed with `invariant: zbuddy: pfn \d+ not live`\. .*in the instance’s `state`/,
      );
      expect((err as MopsError).message).not.toContain('\n');
    }
    // Listed in `state`, the same driver explores clean.
    register(zbuddy('zbuddy-state', true));
    expect(explore('zbuddy-state', { variant: 'fixed', runs: 100 })).toMatchObject({
      failed: false,
      schedules: 100,
    });
  });

  it('a failure only leftovers cause is reported as not reproduced, with the likely cause', () => {
    // The instance's first four starts are its first run and the probe's three (the first
    // schedule again, two serial ones); its third run, the sixth start, fails.
    register(counting('leaky-counter', 6, false));
    const r = explore('leaky-counter', { variant: 'fixed', runs: 100 });
    // A scenario bug: it counts as a failure (exit status 1), flagged as not reproduced.
    expect(r.failed).toBe(true);
    expect(r.reproduced).toBe(false);
    expect(r.failure).toMatchObject({ kind: 'assertion', message: 'zbuddy: pfn 1 not live' });
    expect(r.note).toMatch(/did not reproduce on a fresh instance.*scenario’s `state` list every/);
    expect(r.report).toContain('NOT REPRODUCED: assertion after step 1: zbuddy: pfn 1 not live');
    expect(r.report).toContain('on a fresh instance the schedule passes: no oracle fired');
    expect(r.report).toContain(`note: ${r.note}`);
    expect(r.report).not.toContain('FAILED');
    // Not shrunk on leftovers: the schedule is the one exploring ran, and the report's trace
    // is its run on a fresh instance, which is what `replay` shows too.
    expect(r.shrunkFrom).toBeUndefined();
    const rep = replay('leaky-counter', { variant: 'fixed', schedule: r.schedule! });
    expect(rep.failed).toBe(false);
    expect(rep.steps).toBe(r.steps);
  });

  it('a shrunk schedule that fails only on leftovers is dropped for the one exploring found', () => {
    // DFS finds the race on the instance's second run (after the first and the probe's three
    // starts); from the seventh start on every run fails, so shrinking ends at a schedule
    // without the race.
    register(counting('leaky-shrink', 7, true));
    const r = explore('leaky-shrink', { variant: 'fixed', strategy: 'dfs', runs: 100 });
    expect(r.failed).toBe(true);
    expect(r.reproduced).toBe(true);
    expect(r.note).toMatch(/^the smallest schedule shrinking found did not fail the same way/);
    expect(r.report).toContain('FAILED: assertion');
    expect(r.report).toContain(`note: ${r.note}`);
    expect(r.shrunkFrom).toBeUndefined();
    expect(r.preemptions).toBeGreaterThan(0);
    // The reported schedule is the race: replay fails the same way.
    const rep = replay('leaky-shrink', { variant: 'fixed', schedule: r.schedule! });
    expect(rep.failed).toBe(true);
    expect(rep.failure).toEqual(r.failure);
  });

  it('replay runs on a fresh instance, whatever ran before in the process', () => {
    register(counting('leaky-replay', 5, false));
    // The first run and the probe's runs on the reused instance pass; from then on, every
    // run of the pooled instance fails.
    expect(explore('leaky-replay', { variant: 'fixed', runs: 1 }).failed).toBe(false);
    for (let i = 0; i < 3; i++)
      expect(
        replay('leaky-replay', { variant: 'fixed', schedule: 'v1:leaky-replay:' }).failed,
      ).toBe(false);
  });
});

describe('a protocol violation of the VM itself', () => {
  it('9a buggy: is labelled the VM’s, not a driver’s', () => {
    const r = explore('9a', { variant: 'buggy' });
    expect(r.failure?.message).toBe(
      'vm_protocol_violation: isolated page 0x0 != examined page 0x1',
    );
    expect(r.report).toContain(
      ': vm_protocol_violation: isolated page 0x0 != examined page 0x1\n  the VM broke the protocol here, not a driver',
    );
    expect(r.report).not.toContain('protocol_violation: VM:');
  });

  it('a driver’s violation in the same step leads; the VM’s follows with its label', () => {
    const m = raceMachine('v6.3');
    const inst = { machine: m };
    m.mem.warn('vm_protocol_violation', 'isolated page 0x0 != examined page 0x1\ndump');
    m.mem.warn('protocol_violation', 'mydrv: isolate_page set the isolated flag\ndump');
    const f = oracles(m, inst, 0, undefined, false, 1);
    expect(f?.message).toBe('protocol_violation: mydrv: isolate_page set the isolated flag');
    expect(f?.detail.split('\n')).toContain(
      'vm_protocol_violation: isolated page 0x0 != examined page 0x1',
    );
    // Alone, the VM's leads; other warnings still follow it.
    const m2 = raceMachine('v6.3');
    m2.mem.warn('VM_WARN_ON_ONCE', 'WARNING: something');
    m2.mem.warn('vm_protocol_violation', 'isolated page 0x0 != examined page 0x1\ndump');
    const g = oracles(m2, { machine: m2 }, 0, undefined, false, 1);
    expect(g?.message).toBe('vm_protocol_violation: isolated page 0x0 != examined page 0x1');
    expect(g?.detail).toContain('VM_WARN_ON_ONCE: WARNING: something');
  });
});
