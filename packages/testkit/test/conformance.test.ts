import {
  __ClearPageMovable,
  __SetPageMovable,
  createMovableFiller,
  defineMovableOps,
  GFP,
  getPage,
  type Machine,
  type MopsPlugin,
  makeAddressSpace,
  PGTY,
  SetPageMovableOps,
  setMovableOps,
  trylockPage,
  unlockPage,
} from '@mops/core';
import { describe, expect, it } from 'vitest';
import {
  CONFORMANCE_RULES,
  checkDriverConformance,
  describeDriverConformance,
  driverMachine,
  ruleSkipReason,
  runRule,
} from '../src/index.js';
import { type Bugs, badDriver } from './bad_driver.js';

const fillerPlugin: MopsPlugin = {
  manifest: { name: 'filler', version: '1.0.0', profiles: ['v4.8', 'v6.0', 'v6.3', 'v6.17'] },
  register(_c, m) {
    createMovableFiller(m);
  },
};

describeDriverConformance({
  name: 'core filler',
  plugin: fillerPlugin,
  populate: (m: Machine, n: number) => createMovableFiller(m).alloc(n),
});

/** A driver that forgets to drop its reference on src after a successful migration. */
function leakyPlugin(): MopsPlugin & { populate(m: Machine, n: number): number[] } {
  const owned = new WeakMap<Machine, Set<number>>();
  const opsOf = new WeakMap<Machine, ReturnType<typeof defineMovableOps>>();
  const publish = (m: Machine, pfn: number) => {
    const ops = opsOf.get(m)!;
    if (m.profile.movableMarker === 'page_type') {
      m.mem.pages.type[pfn] = PGTY.offline << 24;
      SetPageMovableOps(m.mem, pfn);
    } else
      __SetPageMovable(
        m.mem,
        pfn,
        m.profile.movableMarker === 'address_space' ? makeAddressSpace('leaky', ops) : ops,
      );
  };
  return {
    manifest: { name: 'leaky', version: '1.0.0', profiles: ['v6.3'] },
    register(_c, m) {
      const set = new Set<number>();
      owned.set(m, set);
      const ops = defineMovableOps('leaky', {
        isolatePage: (p: number) => set.delete(p),
        migratePage(dst: number, src: number) {
          publish(m, dst);
          getPage(m.mem, dst);
          set.add(dst);
          __ClearPageMovable(m.mem, src);
          return 0; // no putPage(src): a leaked reference
        },
        putbackPage: (p: number) => {
          set.add(p);
        },
      });
      opsOf.set(m, ops);
      if (m.profile.movableMarker === 'page_type') setMovableOps(m.mem, ops, PGTY.offline);
    },
    populate(m: Machine, n: number) {
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const pfn = m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
        trylockPage(m.mem, pfn);
        publish(m, pfn);
        unlockPage(m, pfn);
        owned.get(m)!.add(pfn);
        out.push(pfn);
      }
      return out;
    },
  };
}

describe('the conformance suite catches a broken driver', () => {
  it('a driver that keeps its reference on src fails the migration rules, passes the others', () => {
    const p = leakyPlugin();
    const results = checkDriverConformance(
      { name: 'leaky', plugin: p, populate: p.populate },
      'v6.3',
    );
    expect(results.map((r) => r.id)).toEqual(CONFORMANCE_RULES.map((r) => r.id));
    const failed = results.filter((r) => !r.passed).map((r) => r.id);
    expect(failed).toContain('migrate');
    expect(failed).toContain('ping-pong');
    expect(failed).not.toContain('isolate');
    expect(failed).not.toContain('putback');
    expect(results.find((r) => r.id === 'migrate')?.detail).toMatch(/refcount 1 after migration/);
  });
});

describe('the conformance suite catches each broken rule, in the profiles where it is broken', () => {
  const ALL = ['v4.8', 'v6.0', 'v6.3', 'v6.17'] as const;
  const adapter = (bugs: Bugs) => {
    const p = badDriver(bugs);
    return { name: 'bad', plugin: p, populate: p.populate, release: p.release };
  };

  it.each(ALL)(
    '%s: the correct driver, one that returns -EAGAIN once per page and one that holds a reference of its own while a page is isolated pass every rule',
    (profile) => {
      for (const bugs of [{}, { eagainOnce: true }, { isolateTakesRef: true }]) {
        const failed = checkDriverConformance(adapter(bugs), profile).filter((r) => !r.passed);
        expect(failed.map((r) => `${r.id}: ${r.detail}`)).toEqual([]);
      }
    },
    30_000,
  );

  it.each<[string, Bugs, readonly (typeof ALL)[number][], string, RegExp]>([
    [
      'v6.17 "fake success" for a live page',
      { dropData: true },
      ['v6.17'],
      'migrate',
      /target pfn \d+ was freed with the data/,
    ],
    [
      'dst never taken into the driver',
      { forgetDst: true },
      ALL,
      'migrate',
      /could not be isolated again after migration/,
    ],
    [
      'the isolated flag set on dst',
      { isolatedOnDst: true },
      ALL,
      'migrate',
      /could not be isolated again after migration/,
    ],
    [
      'a page type left on a freed page',
      { typeNotCleared: true },
      ['v6.0', 'v6.3'],
      'migrate',
      /Bad page state .*\(nonzero mapcount\)/,
    ],
    [
      'putback keeps only the first page',
      { putbackOnlyFirst: true },
      ALL,
      'putback',
      /7 of 8 pages could not be isolated again after putback/,
    ],
    [
      'putback drops a reference',
      { putbackDropsRef: true },
      ALL,
      'failure-putback',
      /refcount 0 after the failed migration and putback, was 1/,
    ],
    [
      'a failing migrate_page keeps a reference on dst',
      { eagainLeaksDst: true },
      ALL,
      'migrate',
      /refcount [12] /,
    ],
    [
      'a release that drops the reference without __ClearPageMovable',
      { releaseKeepsMovable: true },
      ['v4.8', 'v6.0', 'v6.3'],
      'release-isolated',
      // The VM reports each such page it meets (the refcount==1 shortcut, putback), before
      // the rule's own finding right after the release.
      /^migration: bad: the owner dropped its references to an isolated page but left it PageMovable \(only the VM's isolation reference is left at (unmap_and_move|migrate_folio_unmap)\).*; migration: pfn \d+: its owner dropped its references but left the page PageMovable.*; putback: bad: the owner dropped its references to an isolated page but left it PageMovable \(only the VM's isolation reference is left at putback_movable_pages\).*; putback: pfn \d+: its owner dropped its references but left the page PageMovable/,
    ],
    [
      'a release that clears the isolated flag (the v3 draft, §4.2)',
      { releaseClearsIsolated: true },
      ALL,
      'release-isolated',
      /^migration: pfn \d+: its owner's release cleared the isolated flag while the VM held the page isolated/,
    ],
    [
      'a failing migrate_page keeps a reference on dst, when a released page is the target',
      { eagainLeaksDst: true },
      ALL,
      'release-isolated',
      /^migration: (target pfn \d+: refcount 1 but unused; a target given back after a failed attempt must be free again|dst pfn \d+: refcount 2 after migration)/,
    ],
    [
      'a failing migrate_page keeps a reference on dst, migrating twice',
      { eagainLeaksDst: true },
      ALL,
      'ping-pong',
      /^round 0: (target pfn \d+: refcount 1 but unused; a target given back after a failed attempt must be free again|dst pfn \d+: refcount 2 after migration)/,
    ],
    [
      'a release that drops the VM’s isolation reference too',
      { releaseDoublePut: true },
      ALL,
      'release-isolated',
      /^migration: pfn \d+: refcount 0 right after its owner's release while the VM held it isolated: the release dropped the VM's isolation reference/,
    ],
    [
      'isolate_page refuses published pages at rest',
      { isolateRefusesOdd: true },
      ALL,
      'isolate',
      // v4.8 hands out the top block first (boot freed it last, to the list head).
      /^4 of 8 pages could not be isolated \(pfn (1, 3, 5, 7|3073, 3075, 3077, 3079)\): a published page at rest must be isolatable/,
    ],
    [
      'migrate_page fails with -EAGAIN every pass: the page is said not migrated, not to have returned 0',
      { alwaysEagain: true },
      ALL,
      'migrate',
      /^migrate_pages returned 8; src pfn \d+: not migrated: migrate_pages left it on the list for putback/,
    ],
    [
      'v6.17 "fake success" for a live page, dst left untouched',
      { fakeSuccessLive: true },
      ['v6.17'],
      'migrate',
      /^src pfn \d+: migrate_page returned 0 but its target pfn \d+ was freed with the data.*"fake success" is only for a page its owner already released/,
    ],
    [
      'isolate_page unlocks the page',
      { unlockInIsolate: true },
      ALL,
      'isolate',
      /bad: isolate_page unlocked the page.*MmBug: VM_BUG_ON/,
    ],
  ])('%s', (_what, bugs, profiles, rule, detail) => {
    for (const profile of profiles) {
      const r = runRule(adapter(bugs), profile, rule);
      expect(r.passed, `${profile} ${rule}`).toBe(false);
      // Every finding: the detail shows only the first few distinct ones.
      expect(r.findings.join('; '), profile).toMatch(detail);
    }
  });
});

describe('release-isolated (spec §4, S19, S21)', () => {
  const full = (bugs: Bugs = {}) => {
    const p = badDriver(bugs);
    return { name: 'bad', plugin: p, populate: p.populate, release: p.release };
  };

  it.each(['v4.8', 'v6.0', 'v6.3', 'v6.17'] as const)(
    "%s: a release by the profile's rule passes; v6.17 has no __ClearPageMovable to forget",
    (profile) => {
      const r = runRule(full(), profile, 'release-isolated');
      expect(r.detail).toBe('');
      expect(r).toMatchObject({ passed: true });
      expect(r.skipped).toBeUndefined();
      if (profile === 'v6.17')
        expect(runRule(full({ releaseKeepsMovable: true }), profile, 'release-isolated')).toEqual(
          r,
        );
    },
  );

  it("v6.17: a putback_page that takes back a released page is caught by the driver's own invariant checker", () => {
    const r = runRule(full({ putbackKeepsReleased: true }), 'v6.17', 'release-isolated');
    expect(r.passed).toBe(false);
    expect(r.detail).toMatch(/putback: bad: pfn \d+ is in the driver's structures but free/);
    // Before v6.17 the VM does not call putback_page for a page its owner released.
    for (const profile of ['v4.8', 'v6.0', 'v6.3'] as const)
      expect(
        runRule(full({ putbackKeepsReleased: true }), profile, 'release-isolated').passed,
      ).toBe(true);
  });

  it('an adapter without a release hook is reported as skipped, with the reason, not as a pass', () => {
    const p = badDriver();
    const adapter = { name: 'bad', plugin: p, populate: p.populate };
    expect(ruleSkipReason(adapter, 'release-isolated')).toBe('the adapter has no release hook');
    expect(ruleSkipReason(full(), 'release-isolated')).toBeUndefined();
    const r = checkDriverConformance(adapter, 'v6.3').find((x) => x.id === 'release-isolated');
    expect(r).toMatchObject({
      passed: true,
      detail: '',
      skipped: 'the adapter has no release hook',
    });
    for (const other of checkDriverConformance(adapter, 'v6.3'))
      if (other.id !== 'release-isolated') expect(other.skipped, other.id).toBeUndefined();
  });
});

describe('page contents: the machine has them only when the manifest says needsContents: true', () => {
  const adapter = (bugs: Bugs) => {
    const p = badDriver(bugs);
    return { name: 'bad', plugin: p, populate: p.populate, release: p.release };
  };

  it('a driver that uses page contents without saying so fails, each rule naming the manifest field', () => {
    const results = checkDriverConformance(adapter({ contents: 'undeclared' }), 'v6.3');
    for (const r of results) {
      expect(r.passed, r.id).toBe(false);
      expect(r.findings[0], r.id).toBe(
        'bad uses page contents, but the manifest of plugin bad does not say needsContents: true, so its machine has none: add needsContents: true to the manifest',
      );
      expect(r.detail, r.id).toMatch(/this machine was built without page contents/);
    }
  });

  it.each(['v4.8', 'v6.0', 'v6.3', 'v6.17'] as const)(
    '%s: the same driver passes with needsContents: true, and the copy is checked',
    (profile) => {
      const ok = checkDriverConformance(adapter({ contents: 'declared' }), profile);
      expect(ok.filter((r) => !r.passed).map((r) => `${r.id}: ${r.detail}`)).toEqual([]);
      const { machine } = driverMachine(adapter({ contents: 'declared' }), profile);
      expect(machine.mem.pages.contents).toBeDefined();
      const r = runRule(adapter({ contents: 'declared', noCopy: true }), profile, 'migrate');
      expect(r.passed).toBe(false);
      expect(r.findings.join('; ')).toMatch(/dst pfn \d+: contents differ from src pfn \d+/);
    },
    30_000,
  );

  it('a driver whose manifest does not ask for page contents gets a machine without them', () => {
    const { machine } = driverMachine(adapter({}), 'v6.3');
    expect(machine.mem.pages.contents).toBeUndefined();
    // The adapter's machine options still decide, when they say.
    const own = { ...adapter({}), machine: { contents: true } };
    expect(driverMachine(own, 'v6.3').machine.mem.pages.contents).toBeDefined();
  });
});
