import { describe, expect, it } from 'vitest';
import {
  __ClearPageMovable,
  __GFP,
  __SetPageMovable,
  ClearPageMovableOps,
  clearPageType,
  compoundHead,
  defineMovableOps,
  Errno,
  folioTryGet,
  GFP,
  ISOLATE_AS_TASK,
  isolatedOk,
  isolateMovablePage,
  isolateMovablePageFast,
  isolateMovablePageOutcome,
  type KernelGen,
  lockPage,
  type Machine,
  MmBug,
  MopsError,
  type MovableOperations,
  makeAddressSpace,
  PageMovable,
  PG,
  PGTY,
  PROFILE_NAMES,
  type ProfileName,
  putPage,
  SetPageMovableOps,
  setMovableOps,
  splitFolio,
  trylockPage,
  unlockPage,
} from '../../src/index.js';
import { TestDriver } from '../driver.js';
import { expectInvariants, smallMachine } from '../helpers.js';
import { isolate, onList, type Rig, rig } from './harness.js';

const OK = { 'v4.8': true, 'v6.0': 0, 'v6.3': true, 'v6.17': true } as const;
const FAIL = { 'v4.8': false, 'v6.0': Errno.EBUSY, 'v6.3': false, 'v6.17': false } as const;
/** The reference-taking step of isolate_movable_page, per profile (§3.1, S03). */
const GET = {
  'v4.8': 'get_page_unless_zero',
  'v6.0': 'get_page_unless_zero',
  'v6.3': 'folio_get_nontail_page',
  'v6.17': 'folio_get_nontail_page',
} as const;
/** The lockless movable check that follows it. */
const MOVABLE_CHECK = {
  'v4.8': '__PageMovable',
  'v6.0': '__PageMovable',
  'v6.3': '__folio_test_movable',
  'v6.17': 'page_has_movable_ops',
} as const;
/** The trylock under which it re-checks (trylock_page until 6.0, then on the folio). */
const TRYLOCK = {
  'v4.8': 'trylock_page',
  'v6.0': 'trylock_page',
  'v6.3': 'folio_trylock',
  'v6.17': 'folio_trylock',
} as const;

/**
 * Turns on step-by-step mode and records the op of every point yielded from now on,
 * calling `also` with each.
 */
function recordSteps(m: Machine, also?: (op: string) => void): string[] {
  const seen: string[] = [];
  m.sched.manual = true;
  m.sched.onStep = (_t, pt) => {
    seen.push(pt.op);
    also?.(pt.op);
  };
  return seen;
}

describe.each(PROFILE_NAMES)('isolate_movable_page (spec §3.1) — %s', (profile) => {
  it('isolates a published page: +1 reference, isolated flag, unlocked, driver called once with the page locked', () => {
    const r = rig(profile);
    const [a] = r.drv.alloc(1);
    const p = r.m.mem.pages;
    expect(isolate(r, a, 0x4)).toBe(OK[profile]);
    expect(p.refcount[a]).toBe(2);
    expect(p.flags[a] & (1 << PG.isolated)).not.toBe(0);
    expect(p.flags[a] & (1 << PG.locked)).toBe(0);
    expect(r.drv.callsOf('isolate')).toEqual([{ cb: 'isolate', pfn: a, mode: 0x4, locked: true }]);
    expect(onList(r)).toEqual([a]);
    expectInvariants(r.m);
  });

  it('S02 isolate a free page: fails at the reference step, no lock, no callback', () => {
    const r = rig(profile);
    const free = r.m.allocPages(GFP.KERNEL, 0);
    r.m.putPage(free);
    const seen = recordSteps(r.m);
    const flags = r.m.mem.pages.flags[free];
    expect(isolate(r, free)).toBe(FAIL[profile]);
    expect(seen).toEqual([r.m.profile.isolationGet]);
    expect(r.m.mem.pages.refcount[free]).toBe(0);
    expect(r.m.mem.pages.flags[free]).toBe(flags);
    expect(r.drv.calls).toEqual([]);
    expectInvariants(r.m);
  });

  it('S03 isolate a tail page: fails at the reference step; head unchanged, no lock', () => {
    const r = rig(profile);
    const h = r.m.allocPages(GFP.HIGHUSER_MOVABLE | __GFP.COMP, 2);
    const seen = recordSteps(r.m);
    expect(isolate(r, h + 1)).toBe(FAIL[profile]);
    expect(seen).toEqual([GET[profile]]);
    expect(r.m.mem.pages.refcount[h + 1]).toBe(0);
    expect(r.m.mem.pages.refcount[h]).toBe(1);
    expect(r.m.mem.pages.flags[h] & (1 << PG.locked)).toBe(0);
    expectInvariants(r.m);
  });

  it('S05 not movable: the reference is taken and dropped, PG_locked never touched', () => {
    const r = rig(profile);
    const priv = r.m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
    let refAtCheck = 0;
    const seen = recordSteps(r.m, (op) => {
      if (op === MOVABLE_CHECK[profile]) refAtCheck = r.m.mem.pages.refcount[priv];
    });
    expect(isolate(r, priv)).toBe(FAIL[profile]);
    // Reference taken (ref 2 at the movable check), then dropped.
    expect(seen).toEqual([GET[profile], MOVABLE_CHECK[profile]]);
    expect(refAtCheck).toBe(2);
    expect(r.m.mem.pages.refcount[priv]).toBe(1);
    expect(r.drv.calls).toEqual([]);
  });

  it('S06 page locked by someone else: trylock fails, reference dropped, no callback', () => {
    const r = rig(profile);
    const [a] = r.drv.alloc(1);
    trylockPage(r.m.mem, a);
    let refAtTrylock = 0;
    const seen = recordSteps(r.m, (op) => {
      if (op === TRYLOCK[profile]) refAtTrylock = r.m.mem.pages.refcount[a];
    });
    expect(isolate(r, a)).toBe(FAIL[profile]);
    // The reference, the movability peek, then the trylock that fails (with our reference).
    expect(seen).toEqual([GET[profile], MOVABLE_CHECK[profile], TRYLOCK[profile]]);
    expect(refAtTrylock).toBe(2);
    expect(r.m.mem.pages.flags[a] & (1 << PG.locked)).not.toBe(0); // still the other holder's
    expect(r.m.mem.pages.refcount[a]).toBe(1);
    expect(r.m.mem.pages.flags[a] & (1 << PG.isolated)).toBe(0);
    expect(r.drv.calls).toEqual([]);
    unlockPage(r.m, a);
  });

  it('S07 already isolated: the second attempt fails under the lock, the driver is not called again', () => {
    const r = rig(profile);
    const [a] = r.drv.alloc(1);
    expect(isolatedOk(isolate(r, a))).toBe(true);
    const seen = recordSteps(r.m);
    const res = r.m.run(() => isolateMovablePageOutcome(r.m, a, 0));
    expect(res.result).toBe(FAIL[profile]);
    // It gets as far as the page lock and fails under it.
    expect(seen).toEqual([GET[profile], MOVABLE_CHECK[profile], TRYLOCK[profile]]);
    expect(r.m.mem.pages.flags[a] & (1 << PG.locked)).toBe(0);
    expect(r.m.mem.pages.refcount[a]).toBe(2);
    expect(r.drv.callsOf('isolate')).toHaveLength(1);
  });

  // §0.2: a refusing isolate_page (S08) exists only in v4.8 and v6.17 zsmalloc; elsewhere
  // this is the test driver's own refusal.
  const refusal =
    profile === 'v4.8' || profile === 'v6.17'
      ? 'S08 (test driver) driver refuses isolation'
      : 'a driver refusing isolation (no S08 in this profile, §0.2)';
  it(`${refusal}: isolate_page called once under the lock; the page is left as it was`, () => {
    const r = rig(profile);
    const [a] = r.drv.alloc(1);
    r.drv.refuse = true;
    expect(isolate(r, a)).toBe(FAIL[profile]);
    expect(r.drv.callsOf('isolate')).toEqual([{ cb: 'isolate', pfn: a, mode: 0, locked: true }]);
    expect(r.m.mem.pages.refcount[a]).toBe(1);
    expect(r.m.mem.pages.flags[a] & ((1 << PG.isolated) | (1 << PG.locked))).toBe(0);
    expectInvariants(r.m);
  });

  it('S09 driver sets the isolated flag itself: one-time warning, flag (re)set, violation recorded', () => {
    const r = rig(profile);
    const [a, b] = r.drv.alloc(2);
    r.drv.misbehave = 'setIsolatedInIsolate';
    isolate(r, a);
    isolate(r, b);
    const kinds = r.m.mem.warnings.map((w) => w.kind);
    // The kernel's macro: a plain WARN_ON_ONCE before v6.17, VM_WARN_ON_ONCE_PAGE in it.
    const warnKind = profile === 'v6.17' ? 'VM_WARN_ON_ONCE' : 'WARN_ON_ONCE';
    expect(kinds.filter((k) => k === warnKind)).toHaveLength(1);
    expect(kinds.filter((k) => k === 'protocol_violation')).toHaveLength(2);
    expect(r.m.mem.warnings.find((w) => w.kind === 'protocol_violation')?.text).toMatch(
      profile === 'v4.8' ? /^page:[0-9a-f]{16} count:2 /m : / refcount:2 /,
    );
    expect(r.m.mem.pages.flags[a] & (1 << PG.isolated)).not.toBe(0);
  });

  it("S09 the kernel's warning is one call site: once per machine whichever driver set the flag, in the release's own words", () => {
    const r = rig(profile);
    // v6.17 registers one set of ops per page type, and the test driver's type is taken.
    const other = profile === 'v6.17' ? r.drv : new TestDriver(r.m, 'otherdrv');
    const [a] = r.drv.alloc(1);
    const [b] = other.alloc(1);
    r.drv.misbehave = 'setIsolatedInIsolate';
    other.misbehave = 'setIsolatedInIsolate';
    isolate(r, a);
    isolate(r, b);
    const warns = r.m.mem.warnings.filter((w) => w.kind.endsWith('WARN_ON_ONCE'));
    expect(warns).toHaveLength(1);
    expect(warns[0].text).toContain(
      {
        'v4.8': 'WARN_ON_ONCE(PageIsolated(page))',
        'v6.0': 'WARN_ON_ONCE(PageIsolated(page))',
        'v6.3': 'WARN_ON_ONCE(folio_test_isolated(folio))',
        'v6.17': 'VM_WARN_ON_ONCE_PAGE(PageMovableOpsIsolated(page), page)',
      }[profile],
    );
    expect(r.m.mem.warnings.filter((w) => w.kind === 'protocol_violation')).toHaveLength(2);
  });

  it("a driver unlocking the page in isolate_page is named as a violation before the VM's unlock BUGs", () => {
    const r = rig(profile);
    const [a] = r.drv.alloc(1);
    r.drv.misbehave = 'unlockInIsolate';
    expect(() => isolate(r, a)).toThrow(MmBug);
    const v = r.m.mem.warnings.filter((w) => w.kind === 'protocol_violation');
    expect(v).toHaveLength(1);
    expect(v[0].text).toMatch(/^testdrv: isolate_page unlocked the page, whose lock the VM holds/);
    expect(v[0].pfn).toBe(a);
  });

  it('a throwing isolate_page is a violation and a failed isolation; nothing is left behind', () => {
    const r = rig(profile);
    const [a] = r.drv.alloc(1);
    r.drv.misbehave = 'throwInIsolate';
    expect(isolate(r, a)).toBe(FAIL[profile]);
    expect(r.m.mem.warnings.map((w) => w.kind)).toEqual(['protocol_violation']);
    expect(r.m.mem.pages.refcount[a]).toBe(1);
    expect(r.m.mem.pages.flags[a] & (1 << PG.locked)).toBe(0);
    r.drv.owned.add(a);
    expectInvariants(r.m);
  });
});

describe('S04 / 9a: folio_try_get on a tail page during isolation', () => {
  /**
   * Scanner examines T1 (tail of H's order-2 folio) and computes its head; the folio is
   * freed and H reallocated as a published driver page; then the scanner takes its
   * reference. With the 2023 draft (`folio_try_get(page_folio(page))`) it isolates H.
   */
  function race(mistake: boolean, profile: 'v6.3' | 'v6.17' = 'v6.3') {
    const r = rig(profile);
    // Fill memory, then free exactly one order-2 block at 0x100 so the folio lands there.
    while (r.m.allocPages(GFP.KERNEL, 0) >= 0);
    for (let i = 0; i < 4; i++) r.m.putPage(0x100 + i);
    const H = r.m.allocPages(GFP.HIGHUSER_MOVABLE | __GFP.COMP, 2);
    expect(H).toBe(0x100);
    const T1 = H + 1;
    r.m.sched.manual = true;
    const scanner = r.m.sched.spawn('scanner', () =>
      isolateMovablePageOutcome(r.m, T1, 0, mistake ? { folioTryGetOnHead: true } : undefined),
    );
    const owner = r.m.sched.spawn('owner', function* (): KernelGen<number> {
      yield { op: 'folio_put', pfn: H };
      putPage(r.m.mem, H); // the folio is freed…
      yield { op: 'alloc', pfn: H };
      return r.drv.alloc(1)[0]; // …and H comes back as a published driver page
    });
    r.m.sched.runUntil(
      scanner,
      (p) => p.op === 'folio_try_get' || p.op === 'folio_get_nontail_page',
    );
    expect(r.m.sched.runToEnd(owner)).toBe(H);
    const out = r.m.sched.runToEnd(scanner);
    return { r, out, H, T1 };
  }

  it.each(['v6.3', 'v6.17'] as const)(
    'buggy variant: the reference lands on H and H is isolated although T1 was examined (flagged) — %s',
    (profile) => {
      const { r, out, H } = race(true, profile);
      expect(out.result).toBe(true);
      expect(out.isolated).toBe(H);
      expect(r.m.mem.pages.refcount[H]).toBe(2);
      expect(r.m.mem.pages.flags[H] & (1 << PG.isolated)).not.toBe(0);
      expect(
        r.m.mem.warnings.some(
          (w) =>
            w.kind === 'vm_protocol_violation' &&
            w.pfn === H &&
            w.text.startsWith(`isolated page 0x${H.toString(16)} != examined page`),
        ),
      ).toBe(true);
    },
  );

  it.each(['v6.3', 'v6.17'] as const)(
    'fixed (folio_get_nontail_page): isolation fails with no side effects — %s',
    (profile) => {
      const { r, out, H } = race(false, profile);
      expect(out.result).toBe(false);
      expect(r.m.mem.pages.refcount[H]).toBe(1);
      expect(r.drv.calls).toEqual([]);
      expect(r.m.mem.warnings).toEqual([]);
      expectInvariants(r.m);
    },
  );
});

describe.each(['v4.8', 'v6.0', 'v6.3'] as const)(
  'S26 / 9d: mapping nullified between the reference and the lock — %s',
  (profile) => {
    function race(mistake: boolean) {
      const r = rig(profile);
      const [a] = r.drv.alloc(1);
      r.m.sched.manual = true;
      const scanner = r.m.sched.spawn('scanner', () =>
        isolateMovablePageOutcome(r.m, a, 0, mistake ? { noRecheckUnderLock: true } : undefined),
      );
      const drv = r.drv;
      const owner = r.m.sched.spawn('owner', function* (): KernelGen {
        // The owner frees its page: lock, unpublish, unlock, drop its reference.
        yield* lockPage(r.m, a);
        __ClearPageMovable(r.m.mem, a);
        unlockPage(r.m, a);
        drv.owned.delete(a);
        putPage(r.m.mem, a);
      });
      r.m.sched.runUntil(scanner, (p) => p.op === TRYLOCK[profile]); // reference taken, tag seen
      r.m.sched.runToEnd(owner);
      return { r, scanner, a };
    }

    it('final design: PageMovable is false under the lock, isolation fails, the page is freed, no callback', () => {
      const { r, scanner, a } = race(false);
      const out = r.m.sched.runToEnd(scanner);
      expect(isolatedOk(out.result)).toBe(false);
      expect(r.m.mem.pages.refcount[a]).toBe(0); // the scanner's put freed it
      // Unlocked before the put: freed to the buddy allocator, not leaked as a bad page.
      expect(r.m.mem.pages.flags[a] & (1 << PG.locked)).toBe(0);
      expect(r.m.mem.pages.type[a] >>> 24).toBe(PGTY.buddy);
      expect(r.m.mem.warnings).toEqual([]);
      expect(r.drv.calls).toEqual([]);
      expectInvariants(r.m);
    });

    it('buggy variant (no re-check under the lock): NULL dereference through page->mapping', () => {
      const { r, scanner } = race(true);
      expect(() => r.m.sched.runToEnd(scanner)).toThrow(/NULL pointer dereference/);
      expect(r.m.mem.halted).toBeDefined();
    });
  },
);

describe.each(['v4.8', 'v6.0', 'v6.3'] as const)(
  'S27 / 4.2: double isolation with a driver-managed isolated flag — %s',
  (profile) => {
    it('v3 draft: the owner clears "isolated" but keeps "movable", and a second isolator succeeds (flagged)', () => {
      const r = rig(profile);
      const [t] = r.drv.alloc(1);
      expect(isolatedOk(isolate(r, t))).toBe(true); // context A
      // The draft told owners to release by clearing PG_isolated, keeping the page movable.
      trylockPage(r.m.mem, t);
      r.m.mem.pages.flags[t] &= ~(1 << PG.isolated);
      unlockPage(r.m, t);
      r.drv.owned.add(t); // the owner still believes it can hand the page out
      const b = r.m.run(() => isolateMovablePageOutcome(r.m, t, 0));
      expect(isolatedOk(b.result)).toBe(true);
      expect(r.m.mem.warnings.some((w) => w.text.includes('isolated twice'))).toBe(true);
    });

    it('final protocol: the owner can only clear the pointer, PG_isolated stays, the second isolation fails', () => {
      secondIsolationFails(profile, (r, t) => r.m.run(() => r.drv.release(t)));
    });
  },
);

/** S27 final protocol: A isolates T, the owner does `release`, B's isolation of T fails. */
function secondIsolationFails(profile: ProfileName, release: (r: Rig, t: number) => void) {
  const r = rig(profile);
  const [t] = r.drv.alloc(1);
  expect(isolatedOk(isolate(r, t))).toBe(true); // context A
  release(r, t);
  const b = r.m.run(() => isolateMovablePageOutcome(r.m, t, 0));
  expect(isolatedOk(b.result)).toBe(false);
  expect(r.drv.callsOf('isolate')).toHaveLength(1);
  expect(r.m.mem.pages.flags[t] & (1 << PG.isolated)).not.toBe(0);
}

describe('S27 / §4.3: v6.17 has no owner API for PG_movable_ops_isolated', () => {
  // The v3 draft variant does not apply: the flag is managed by the migration core only
  // and there is no release API (no __ClearPageMovable); so B's isolation always fails.
  it('the owner cannot release the isolated page; the second isolation fails', () => {
    secondIsolationFails('v6.17', (r, t) => {
      trylockPage(r.m.mem, t);
      expect(() => __ClearPageMovable(r.m.mem, t)).toThrow(/no __ClearPageMovable/);
      unlockPage(r.m, t);
    });
  });
});

describe('a movable page whose ops cannot be found is not isolated, with a warning', () => {
  it('v4.8: an address_space with isolatePage alone is PageMovable, but lacks the other callbacks', () => {
    const m = smallMachine('4M', { profile: 'v4.8' });
    const ops = { isolatePage: () => true };
    const pfn = m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
    trylockPage(m.mem, pfn);
    __SetPageMovable(m.mem, pfn, makeAddressSpace('partial', ops));
    expect(PageMovable(m.mem, pfn)).toBe(true);
    unlockPage(m, pfn);
    expect(m.run(() => isolateMovablePage(m, pfn, 0))).toBe(false);
    expect(m.mem.warnings.map((w) => w.text)).toEqual([
      `WARNING: isolate_movable_page: pfn 0x${pfn.toString(16)} is PageMovable but its address_space lacks migratepage or putback_page; not isolated (4.8 would isolate it and oops on the missing callback)`,
    ]);
    expect(m.mem.pages.refcount[pfn]).toBe(1);
  });

  it('v6.17: a movable_ops page type with no ops registered for it', () => {
    const m = smallMachine('4M', { profile: 'v6.17' });
    const pfn = m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
    m.mem.pages.type[pfn] = PGTY.offline << 24;
    SetPageMovableOps(m.mem, pfn);
    expect(m.run(() => isolateMovablePage(m, pfn, 0))).toBe(false);
    expect(m.mem.warnings.map((w) => w.text)).toEqual([
      `WARNING: isolate_movable_ops_page: no movable_ops for pfn 0x${pfn.toString(16)}`,
    ]);
  });
});

describe('the v6.17 page-type calls do not exist before v6.17', () => {
  it.each(['v4.8', 'v6.0', 'v6.3'] as const)(
    '%s: set_movable_ops and ClearPageMovableOps are E_PLUGIN naming the call to use',
    (profile) => {
      const m = smallMachine('4M', { profile });
      const ops = defineMovableOps('early', {
        isolatePage: () => true,
        migratePage: () => 0,
        putbackPage: () => {},
      });
      expect(() => setMovableOps(m.mem, ops, PGTY.offline)).toThrow(
        `set_movable_ops does not exist in ${profile}; publish each page with __SetPageMovable`,
      );
      expect(() => ClearPageMovableOps(m.mem, 0x200)).toThrow(
        `ClearPageMovableOps does not exist in ${profile}; its owner gives a page up with __ClearPageMovable under the page lock`,
      );
    },
  );
});

describe('__SetPageMovable with something that is not an owner', () => {
  it.each(['v4.8', 'v6.0', 'v6.3'] as const)(
    '%s: null, undefined, a string or the wrong kind of owner is E_PLUGIN; the page is untouched',
    (profile) => {
      const m = smallMachine('4M', { profile });
      const pfn = m.allocPages(GFP.KERNEL, 0);
      trylockPage(m.mem, pfn);
      const kind =
        profile === 'v4.8'
          ? 'an address_space (makeAddressSpace)'
          : 'a movable_operations (defineMovableOps)';
      for (const [target, got] of [
        [null, 'null'],
        [undefined, 'undefined'],
        ['zs', '"zs"'],
      ] as const)
        expect(() => __SetPageMovable(m.mem, pfn, target as never)).toThrow(
          `${profile}: __SetPageMovable takes ${kind}, got ${got}`,
        );
      if (profile === 'v4.8') {
        expect(() => __SetPageMovable(m.mem, pfn, makeAddressSpace('as', null as never))).toThrow(
          'v4.8: __SetPageMovable takes an address_space whose a_ops hold the callbacks (makeAddressSpace), got a_ops null',
        );
        const ops = defineMovableOps('ops', {
          isolatePage: () => true,
          migratePage: () => 0,
          putbackPage: () => {},
        });
        expect(() => __SetPageMovable(m.mem, pfn, ops)).toThrow(
          'v4.8: __SetPageMovable takes an address_space (makeAddressSpace), got an object without a_ops',
        );
      }
      expect(m.mem.pages.mapping[pfn]).toBe(0);
      unlockPage(m, pfn);
      expectInvariants(m);
    },
  );
});

describe('__ClearPage<Type> on a page without that type', () => {
  it('is the MmBug of the kernel, naming the type as the kernel spells it', () => {
    const m = smallMachine('4M');
    const pfn = m.allocPages(GFP.KERNEL, 0);
    expect(() => clearPageType(m.mem, pfn, PGTY.offline)).toThrow(
      'VM_BUG_ON_PAGE(!PageOffline(page))',
    );
  });
});

describe('S25: movability is sticky in v6.17', () => {
  it('an owner cannot clear PG_movable_ops or the page type of a published page', () => {
    const r = rig('v6.17');
    const [a] = r.drv.alloc(1);
    expect(() => ClearPageMovableOps(r.m.mem, a)).toThrow(MopsError);
    expect(() => clearPageType(r.m.mem, a, PGTY.offline)).toThrow(
      /cannot change until it is freed/,
    );
    expect(() => __ClearPageMovable(r.m.mem, a)).toThrow(/no __ClearPageMovable/);
    expect(r.m.mem.pages.flags[a] & (1 << PG.movable_ops)).not.toBe(0);
  });

  it('set_movable_ops: -EBUSY when already registered, -EINVAL for other types, NULL unregisters', () => {
    const r = rig('v6.17');
    const ops = defineMovableOps('other', {
      isolatePage: () => true,
      migratePage: () => 0,
      putbackPage: () => {},
    });
    expect(setMovableOps(r.m.mem, ops, PGTY.offline)).toBe(Errno.EBUSY);
    expect(setMovableOps(r.m.mem, ops, PGTY.slab)).toBe(Errno.EINVAL);
    expect(setMovableOps(r.m.mem, ops, PGTY.zsmalloc)).toBe(0);
    expect(setMovableOps(r.m.mem, null, PGTY.offline)).toBe(0);
    // With no ops for its type, isolation fails with a one-time warning.
    const [a] = r.drv.alloc(1);
    expect(isolate(r, a)).toBe(false);
    expect(r.m.mem.warnings.map((w) => w.kind)).toEqual(['WARN_ON_ONCE']);
  });
});

describe.each(PROFILE_NAMES)(
  'S31: GUP-fast re-check after folio_try_get on a derived head — %s',
  (profile) => {
    it('the walker finds head(P) changed by a split, drops the reference on H and retries with P', () => {
      const r = rig(profile);
      const H = r.m.allocPages(GFP.HIGHUSER_MOVABLE | __GFP.COMP, 2);
      const P = H + 2;
      r.m.sched.manual = true;
      const log: string[] = [];
      const walker = r.m.sched.spawn('walker', function* (): KernelGen<number> {
        for (;;) {
          const head = compoundHead(r.m.mem, P);
          yield { op: 'folio_try_get', pfn: head };
          if (!folioTryGet(r.m.mem, head)) continue;
          yield { op: 'page_folio recheck', pfn: P };
          if (compoundHead(r.m.mem, P) === head) return head;
          log.push(`mismatch: dropped 0x${head.toString(16)}`);
          putPage(r.m.mem, head);
        }
      });
      const splitter = r.m.sched.spawn('splitter', function* (): KernelGen {
        yield { op: 'split_folio', pfn: H };
        splitFolio(r.m.mem, H);
      });
      r.m.sched.runUntil(walker, (p) => p.op === 'folio_try_get');
      r.m.sched.runToEnd(splitter);
      expect(r.m.sched.runToEnd(walker)).toBe(P);
      expect(log).toEqual([`mismatch: dropped 0x${H.toString(16)}`]);
      expect(r.m.mem.pages.refcount[H]).toBe(1);
      expect(r.m.mem.pages.refcount[P]).toBe(2);
      expectInvariants(r.m);
    });
  },
);

/** Makes `pfn` (published by the test driver) a page of `ops` instead, per profile. */
function republish(m: Machine, pfn: number, ops: MovableOperations): void {
  const mem = m.mem;
  trylockPage(mem, pfn);
  const marker = m.profile.movableMarker;
  if (marker === 'page_type') {
    setMovableOps(mem, ops, PGTY.zsmalloc);
    mem.pages.type[pfn] = PGTY.zsmalloc << 24;
  } else
    __SetPageMovable(mem, pfn, marker === 'address_space' ? makeAddressSpace('gendrv', ops) : ops);
  unlockPage(m, pfn);
}

describe.each(PROFILE_NAMES)(
  'isolateMovablePageFast agrees with isolate_movable_page — %s',
  (profile) => {
    it('same results and state for success, free, unpublished, locked, already isolated and refused pages', () => {
      const outcomes = (fast: boolean) => {
        const r = rig(profile);
        const [a, b, c, d] = r.drv.alloc(4);
        const free = r.m.allocPages(GFP.KERNEL, 0);
        r.m.putPage(free);
        const priv = r.m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
        trylockPage(r.m.mem, c);
        const iso = (pfn: number) =>
          fast
            ? isolateMovablePageFast(r.m, pfn, 0)
            : r.m.run(() => isolateMovablePage(r.m, pfn, 0));
        const res = [iso(a), iso(free), iso(priv), iso(c), iso(a)];
        r.drv.refuse = true;
        res.push(iso(d));
        r.drv.refuse = false;
        res.push(iso(b));
        const p = r.m.mem.pages;
        return {
          res,
          refs: [a, b, c, d, free, priv].map((x) => p.refcount[x]),
          flags: [a, b, c, d].map((x) => p.flags[x]),
        };
      };
      expect(outcomes(true)).toEqual(outcomes(false));
    });

    it('runs a generator isolate_page inline, with the same result and state', () => {
      const outcome = (fast: boolean) => {
        const r = rig(profile);
        const [a] = r.drv.alloc(1);
        // The test driver's callbacks, with isolate_page as a generator function.
        const gen = defineMovableOps('gendrv', {
          *isolatePage(page: number, mode: number): KernelGen<boolean> {
            if (r.m.sched.preemptible) yield { op: 'gendrv_isolate', pfn: page };
            return r.drv.isolate(page, mode);
          },
          migratePage: (dst: number, src: number, mode: number) => r.drv.migrate(dst, src, mode),
          putbackPage: (page: number) => r.drv.putback(page),
        });
        republish(r.m, a, gen);
        const res = fast
          ? isolateMovablePageFast(r.m, a, 0)
          : r.m.run(() => isolateMovablePage(r.m, a, 0));
        const p = r.m.mem.pages;
        return { res, ref: p.refcount[a], flags: p.flags[a], calls: r.drv.calls.length };
      };
      const fast = outcome(true);
      expect(fast.res).not.toBe(ISOLATE_AS_TASK);
      expect(isolatedOk(fast.res)).toBe(true);
      expect(fast).toEqual(outcome(false));
    });

    it('declines (touching nothing) while other tasks may run', () => {
      const r = rig(profile);
      const [a] = r.drv.alloc(1);
      r.m.sched.manual = true;
      expect(isolateMovablePageFast(r.m, a, 0)).toBe(ISOLATE_AS_TASK);
      expect(r.m.mem.pages.refcount[a]).toBe(1);
    });
  },
);
