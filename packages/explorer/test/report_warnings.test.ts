import { defineMovableOps, GFP, getProfile, ISOLATED, type KernelGen } from '@mops/core';
import { describe, expect, it } from 'vitest';
import {
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
