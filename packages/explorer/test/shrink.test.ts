/**
 * Shrinking a failure that needs a switch away and the switch back together: removing one
 * preemption at a time cannot shorten it, and the first failures a preemption-bounded
 * search finds fail another way.
 */
import {
  __ClearPageMovable,
  createMachine,
  defineMovableOps,
  Errno,
  GFP,
  hexPfn,
  type KernelGen,
  lockPage,
  type Machine,
  PG,
  putPage,
  testPageFlag,
  unlockPage,
} from '@mops/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  explore,
  isolateThenMigrate,
  registerScenario,
  type Scenario,
  unregisterScenario,
} from '../src/index.js';
import { publishMovable } from './helpers.js';

/**
 * A one-page driver that releases its page with a shortcut: a page it finds not isolated
 * (a lockless test) it drops without the release rule, so a VM that isolates it in between
 * calls back for a page the driver gave up.
 */
class Shortcut {
  readonly owned = new Set<number>();
  readonly wrong: string[] = [];
  readonly pfn: number;

  constructor(readonly m: Machine) {
    const ops = defineMovableOps('shortcut', {
      isolatePage: (page: number) => this.owned.has(page),
      migratePage: (_dst: number, src: number) => {
        if (!this.owned.has(src)) this.wrong.push(`migrate_page(${hexPfn(src)})`);
        return Errno.EAGAIN;
      },
      putbackPage: (page: number) => {
        if (!this.owned.has(page)) this.wrong.push(`putback_page(${hexPfn(page)})`);
      },
    });
    this.pfn = m.allocPages(GFP.HIGHUSER_MOVABLE, 0, 'shortcut');
    publishMovable(m, this.pfn, ops, 'shortcut');
    this.owned.add(this.pfn);
  }

  *release(): KernelGen {
    const { m, pfn } = this;
    if (m.sched.preemptible) yield { op: 'PageIsolated', pfn };
    if (!testPageFlag(m.mem, pfn, PG.isolated)) {
      if (m.sched.preemptible) yield { op: 'put_page', pfn };
      putPage(m.mem, pfn);
      this.owned.delete(pfn);
      return;
    }
    yield* lockPage(m, pfn);
    __ClearPageMovable(m.mem, pfn);
    this.owned.delete(pfn);
    unlockPage(m, pfn);
    if (m.sched.preemptible) yield { op: 'put_page', pfn };
    putPage(m.mem, pfn);
  }
}

const shortcut: Scenario = {
  name: 'toy-shortcut-release',
  description: 'a driver drops a page it finds not isolated while the VM isolates and migrates it',
  variants: ['only'],
  profiles: ['v6.0', 'v6.3'],
  setup({ profile }) {
    const m = createMachine({ memory: '2M', zones: 'normal-only', contents: false, profile });
    const drv = new Shortcut(m);
    return {
      machine: m,
      state: [drv],
      start: () => {
        m.sched.spawn('compactor', () => isolateThenMigrate(m, drv.pfn, true));
        m.sched.spawn('driver', () => drv.release());
      },
      check: () => drv.wrong.map((c) => `the VM called ${c} for a page the driver released`),
    };
  },
};

beforeAll(() => registerScenario(shortcut));
afterAll(() => unregisterScenario(shortcut.name));

describe('shrinking needs two preemptions removed or moved together', () => {
  it.each([
    ['v6.0', 'random'],
    ['v6.0', 'pct'],
    ['v6.3', 'random'],
  ] as const)(
    '%s %s: the report shrinks to two preemptions and the short schedule',
    (profile, strategy) => {
      const r = explore(shortcut.name, { variant: 'only', profile, strategy, runs: 500 });
      expect(r.failed).toBe(true);
      // The VM reports the release itself, as the protocol violation it is, the first time
      // it finds the page with only its isolation reference left.
      expect(r.failure?.message).toMatch(
        /^protocol_violation: shortcut: the owner dropped its references to an isolated page but left it PageMovable/,
      );
      expect(r.preemptions).toBe(2);
      expect(r.steps).toBeLessThanOrEqual(13);
    },
  );
});
