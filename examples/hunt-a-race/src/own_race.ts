/**
 * A race between the VM and a driver of your own, as a scenario the explorer can hunt: a
 * one-page driver takes its page back while compaction may hold it isolated (spec §4, the
 * owner-release rule of v4.8–v6.3).
 *
 * - `buggy`: the driver just drops its reference and forgets the page. If the VM isolated
 *   the page first, it later calls the driver's `putback_page` for a page the driver no
 *   longer owns; the VM reports the release as a protocol violation when it meets the page
 *   with only its isolation reference left, and the scenario's check records the call.
 * - `fixed`: the driver releases the page as the rule says, `__ClearPageMovable` under the
 *   page lock and then its reference. The VM sees that the owner let go and frees the page
 *   itself, without calling back.
 * @module
 */

import {
  __ClearPageMovable,
  __SetPageMovable,
  type AddressSpace,
  createMachine,
  defineMovableOps,
  Errno,
  GFP,
  hexPfn,
  isolatedOk,
  isolateMovablePage,
  type KernelGen,
  lockPage,
  type Machine,
  type MovableOperations,
  makeAddressSpace,
  putPage,
  trylockPage,
  unlockPage,
} from '@mops/core';
import { holdThenPutback, registerScenario, type Scenario } from '@mops/explorer';

/** A driver that owns one movable page and may take it back at any time. */
class OnePageDriver {
  /** Pages the driver owns. */
  readonly owned = new Set<number>();
  /** Callbacks the VM made for pages the driver does not own. */
  readonly wrongCalls: string[] = [];
  readonly ops: MovableOperations;
  /** What `page->mapping` points to: v4.8 an address_space, v6.0/v6.3 the ops. */
  private readonly target: AddressSpace | MovableOperations;

  constructor(readonly m: Machine) {
    this.ops = defineMovableOps('onepage', {
      isolatePage: (page: number) => this.owned.has(page),
      migratePage: (_dst: number, src: number) => {
        this.wrongCalls.push(`migrate_page(${hexPfn(src)})`);
        return Errno.EAGAIN; // this driver never moves its page
      },
      putbackPage: (page: number) => {
        if (!this.owned.has(page)) this.wrongCalls.push(`putback_page(${hexPfn(page)})`);
      },
    });
    this.target =
      m.profile.movableMarker === 'address_space'
        ? makeAddressSpace('onepage', this.ops)
        : this.ops;
  }

  /** Allocates the page and publishes it as movable, under the page lock. */
  publish(): number {
    const { m } = this;
    const pfn = m.allocPages(GFP.HIGHUSER_MOVABLE, 0, 'onepage');
    trylockPage(m.mem, pfn);
    __SetPageMovable(m.mem, pfn, this.target);
    unlockPage(m, pfn);
    this.owned.add(pfn);
    return pfn;
  }

  /** Takes the page back: by the rule (`fixed`) or by just dropping it (`buggy`). */
  *release(pfn: number, byTheRule: boolean): KernelGen {
    const { m } = this;
    if (byTheRule) {
      yield* lockPage(m, pfn);
      if (m.sched.preemptible) yield { op: '__ClearPageMovable', pfn };
      __ClearPageMovable(m.mem, pfn);
      unlockPage(m, pfn);
    }
    this.owned.delete(pfn);
    if (m.sched.preemptible) yield { op: 'put_page', pfn };
    putPage(m.mem, pfn);
  }
}

/** The scenario: compaction isolates the page and puts it back while the driver releases it. */
export const onePageRelease: Scenario = {
  name: 'onepage-release',
  description: 'a one-page driver takes back a page the VM may hold isolated',
  variants: ['buggy', 'fixed'],
  // v6.17 has no __ClearPageMovable: a driver cannot release an isolated page there.
  profiles: ['v6.3', 'v6.0', 'v4.8'],
  setup({ variant, profile }) {
    const m = createMachine({ memory: '2M', zones: 'normal-only', contents: false, profile });
    const drv = new OnePageDriver(m);
    const pfn = drv.publish();
    function* compactor(): KernelGen {
      const res = yield* isolateMovablePage(m, pfn, 0);
      if (isolatedOk(res)) yield* holdThenPutback(m, pfn);
    }
    return {
      machine: m,
      // What the runs change outside the machine, restored when the instance is reused.
      state: [drv],
      start: () => {
        m.sched.spawn('compactor', compactor);
        m.sched.spawn('driver', () => drv.release(pfn, variant === 'fixed'));
      },
      check: () => drv.wrongCalls.map((c) => `the VM called ${c} for a page the driver released`),
    };
  },
};

/**
 * Registers the scenario, so `explore('onepage-release', …)` finds it. `mops explore`,
 * `replay` and `scenarios` find it once `--load` names this module: they call its
 * {@link registerScenarios}, e.g. from the repository root
 * `mops explore onepage-release --load ./examples/hunt-a-race/dist/own_race.js --variant buggy`.
 */
export function registerOnePageRelease(): void {
  registerScenario(onePageRelease, { replace: true });
}

/** What `mops … --load` calls on this module: registers its scenario. */
export const registerScenarios: () => void = registerOnePageRelease;
