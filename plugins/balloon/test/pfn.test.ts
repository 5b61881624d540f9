import {
  allocPages,
  GFP,
  type Machine,
  type MaybeGen,
  MIGRATE_MODE,
  MIGRATE_PAGE_ALONE,
  type MigratePageAlone,
  type MovableOperations,
  PG,
  type ProfileName,
  trylockPage,
  unlockPage,
} from '@mops/core';
import { describe, expect, it } from 'vitest';
import { type BalloonDesign, BalloonDevice, balloonPageDevice } from '../src/index.js';
import { expectClean, expectRefused, isolate, PROFILES, putback, withBalloon } from './helpers.js';

/** Every device and profile pairing: the classic design in each profile, 2026 in v6.17. */
const SETUPS: [ProfileName, BalloonDesign][] = [
  ...PROFILES.map((p): [ProfileName, BalloonDesign] => [p, 'classic']),
  ['v6.17', '2026'],
];

/** Pfns no page of a machine has: below 0, past the end, not integers, not numbers. */
const outside = (m: Machine): number[] => [
  -1,
  m.mem.nrPages,
  1.5,
  Number.NaN,
  '3' as unknown as number,
];

/** A machine with a balloon, as {@link withBalloon} returns it. */
type Rig = ReturnType<typeof withBalloon>;

/** What a refused call must leave as it was: the device, the driver, the host, the pages. */
function snapshot({ m, vb, dev }: Rig) {
  const p = m.mem.pages;
  return {
    list: dev.listPages(),
    isolated: [...dev.countedIsolated()],
    stats: { ...dev.stats },
    inFlight: dev.inFlight,
    driver: { numPages: vb.numPages, stats: { ...vb.stats }, locked: vb.balloonLock.locked },
    host: { held: vb.host.inflatedPfns(), stats: { ...vb.host.stats } },
    pages: [p.flags, p.type, p.priv, p.refcount, p.mapping, p.lists.next, p.lists.prev].map((a) =>
      a.slice(),
    ),
    managed: m.mem.populatedZones.map((z) => z.managedPages),
    events: m.mem.vmstat.events.slice(),
    warnings: m.mem.warnings.length,
    halted: m.mem.halted,
  };
}

/** `f` throws a MopsError with `code` and field `pfn`, and nothing changed. */
function expectPfnRefused(rig: Rig, f: () => unknown, code: string): void {
  expectRefused(f, code, 'pfn', /pfn/, () => snapshot(rig));
}

/** A free page: refcount 0, in the buddy allocator. */
function freePage(m: Machine): number {
  for (let pfn = m.mem.nrPages - 1; pfn >= 0; pfn--)
    if (m.mem.pages.refcount[pfn] === 0) return pfn;
  throw new Error('no free page');
}

/** An allocated page marked PG_reserved, as memory the kernel keeps for itself is. */
function reservedPage(m: Machine): number {
  const pfn = allocPages(m.mem, GFP.KERNEL, 0);
  m.mem.pages.flags[pfn] |= 1 << PG.reserved;
  return pfn;
}

describe.each(SETUPS)('pfns given to the balloon page helpers, %s %s', (profile, design) => {
  it('insert, delete and finalize refuse a pfn outside the machine (E_RANGE)', () => {
    const rig = withBalloon(profile, 3, { design });
    const { m, dev } = rig;
    for (const pfn of outside(m)) {
      expectPfnRefused(rig, () => dev.insert(pfn), 'E_RANGE');
      expectPfnRefused(rig, () => dev.delete(pfn), 'E_RANGE');
      expectPfnRefused(rig, () => dev.finalize(pfn), 'E_RANGE');
    }
    expectClean(m);
  });

  it('insert refuses a free page or one in use (E_STATE): never a balloon page made of it', () => {
    const rig = withBalloon(profile, 3, { design });
    const { m, dev } = rig;
    const [listed] = dev.listPages();
    const reserved = reservedPage(m);
    for (const pfn of [freePage(m), listed, reserved])
      expectPfnRefused(rig, () => dev.insert(pfn), 'E_STATE');
    // finalize is for a page off the list (dequeued, or the old page of a migration).
    expectPfnRefused(rig, () => dev.finalize(listed), 'E_STATE');
    expect(() => dev.insert(freePage(m))).toThrow(/is not an allocated order-0 page/);
    expectClean(m);
  });

  it('delete and finalize refuse a page that is not a balloon page of the device (E_STATE)', () => {
    const rig = withBalloon(profile, 3, { design });
    const { m, dev } = rig;
    const plain = allocPages(m.mem, GFP.HIGHUSER_MOVABLE, 0);
    // Another owner's page->private: finalize must not clear it.
    m.mem.pages.priv[plain] = 7;
    for (const pfn of [plain, freePage(m)]) {
      expectPfnRefused(rig, () => dev.delete(pfn), 'E_STATE');
      expectPfnRefused(rig, () => dev.finalize(pfn), 'E_STATE');
    }
    expect(m.mem.pages.priv[plain]).toBe(7);
    expect(() => dev.finalize(plain)).toThrow(/is not a page of balloon balloon-kvm/);
    m.mem.pages.priv[plain] = 0;
    expectClean(m);
  });
});

describe.each(SETUPS)('pfns given to the balloon movable_ops by hand, %s %s', (profile, design) => {
  it('isolate, putback and migrate refuse a pfn outside the machine (E_RANGE)', () => {
    const rig = withBalloon(profile, 3, { design });
    const { m, dev } = rig;
    const ops = dev.ops;
    const target = allocPages(m.mem, GFP.HIGHUSER_MOVABLE, 0);
    for (const pfn of outside(m)) {
      expectPfnRefused(rig, () => ops.isolatePage(pfn, 0), 'E_RANGE');
      expectPfnRefused(rig, () => ops.putbackPage(pfn), 'E_RANGE');
      expectPfnRefused(
        rig,
        () => m.run(() => ops.migratePage(target, pfn, MIGRATE_MODE.ASYNC) as never),
        'E_RANGE',
      );
    }
    expectClean(m);
  });

  it('migrate of an isolated page refuses a target outside the machine (E_RANGE)', () => {
    const rig = withBalloon(profile, 3, { design });
    const { m, vb, dev } = rig;
    const [a] = dev.listPages();
    const list = m.mem.pages.lists.newList();
    expect(isolate(m, list, a)).toBe(true);
    const classic = design === 'classic';
    // The VM holds the page locked while it migrates it (classic).
    if (classic) expect(trylockPage(m.mem, a)).toBe(true);
    for (const pfn of outside(m))
      expectPfnRefused(
        rig,
        () => m.run(() => dev.ops.migratePage(pfn, a, MIGRATE_MODE.ASYNC) as never),
        'E_RANGE',
      );
    if (classic) unlockPage(m, a);
    expect(dev.inFlight).toBe(0);
    putback(m, list);
    expect(dev.listLength()).toBe(3);
    expect(vb.host.inflatedCount).toBe(3);
    expectClean(m);
  });
});

describe.each(SETUPS)("the driver's migratepage called by hand, %s %s", (profile, design) => {
  /** The driver's migratepage as a lone task (a plain result or a generator). */
  const byHand = (rig: Rig, dev: BalloonDevice, newpage: number, page: number) =>
    rig.m.run(function* () {
      const rc = rig.vb.migratepage(dev, newpage, page, MIGRATE_MODE.ASYNC);
      return typeof rc === 'number' ? rc : yield* rc;
    });

  it('refuses a numeric pfn its device does not count isolated (E_STATE) before changing anything', () => {
    const rig = withBalloon(profile, 3, { design });
    const { m, dev } = rig;
    const [a, b] = dev.listPages();
    const target = allocPages(m.mem, GFP.HIGHUSER_MOVABLE, 0);
    // A listed balloon page, the VM never isolated it; a page that is no balloon page.
    for (const page of [a, target, freePage(m)])
      expectRefused(
        () => byHand(rig, dev, target, page),
        'E_STATE',
        'page',
        /^virtballoon_migratepage: page pfn 0x[0-9a-f]+ is not a page balloon balloon-kvm counts isolated \(isolated_pages 0\)/,
        () => snapshot(rig),
      );
    expectClean(m);
    // Isolated by the VM, the page can be given by hand; the target must be a fresh page.
    const list = m.mem.pages.lists.newList();
    expect(isolate(m, list, b)).toBe(true);
    for (const newpage of [a, freePage(m)])
      expectRefused(
        () => byHand(rig, dev, newpage, b),
        'E_STATE',
        'newpage',
        /newpage pfn 0x[0-9a-f]+ is not a fresh migration target/,
        () => snapshot(rig),
      );
    const other = new BalloonDevice(m, { design, name: 'other' });
    expectRefused(
      () => byHand(rig, other, target, b),
      'E_USAGE',
      'dev',
      /dev must be this driver's device \(vb\.dev, balloon balloon-kvm\), got balloon other/,
      () => snapshot(rig),
    );
    putback(m, list);
    expect(dev.listLength()).toBe(3);
    expectClean(m);
  });
});

/** `pfn` as a string: typed arrays and PfnSets read "3" as 3, so it must never pass for one. */
const str = (pfn: number): number => String(pfn) as unknown as number;

/**
 * A balloon of 3 pages: `listed` on its list, `isolated` taken off by the VM, and a migration
 * target. In the classic design the VM holds the isolated page and the target locked while
 * it migrates; the listed page is not locked.
 */
function stringRig(profile: ProfileName, design: BalloonDesign) {
  const rig = withBalloon(profile, 3, { design });
  const { m, dev } = rig;
  const pages = dev.listPages();
  const [listed, isolated] = pages;
  const list = m.mem.pages.lists.newList();
  expect(isolate(m, list, isolated)).toBe(true);
  const target = allocPages(m.mem, GFP.HIGHUSER_MOVABLE, 0);
  if (design === 'classic') {
    expect(trylockPage(m.mem, isolated)).toBe(true);
    expect(trylockPage(m.mem, target)).toBe(true);
  }
  return { ...rig, pages, listed, isolated, target, list };
}
type StringRig = ReturnType<typeof stringRig>;

const ASYNC = MIGRATE_MODE.ASYNC;

/** The classic design's plain-function migratePage, or the generator one in the 2026 design. */
function alone(r: StringRig): MigratePageAlone {
  const ops = r.dev.ops as MovableOperations & { [MIGRATE_PAGE_ALONE]?: MigratePageAlone };
  return ops[MIGRATE_PAGE_ALONE] ?? ops.migratePage;
}

/** Runs a movable_ops or driver migration (a plain result or a generator) as a lone task. */
function runMigration(r: StringRig, f: () => MaybeGen<number>): number {
  return r.m.run(function* () {
    const rc = f();
    return typeof rc === 'number' ? rc : yield* rc;
  });
}

/**
 * Every callback and public method that takes a pfn, given `page` (a balloon page) where
 * it takes one: as a string, or, where `'target'` follows, as a number with the migration
 * target as a string.
 */
const CALLS: [string, (r: StringRig, page: number) => unknown, 'target'?][] = [
  ['isolatePage', (r, page) => r.dev.ops.isolatePage(str(page), 0)],
  ['putbackPage', (r, page) => r.dev.ops.putbackPage(str(page))],
  [
    'migratePage',
    (r, page) => runMigration(r, () => r.dev.ops.migratePage(r.target, str(page), ASYNC)),
  ],
  [
    'migratePage, the target as a string',
    (r, page) => runMigration(r, () => r.dev.ops.migratePage(str(r.target), page, ASYNC)),
    'target',
  ],
  ['migratePage alone', (r, page) => runMigration(r, () => alone(r)(r.target, str(page), ASYNC))],
  [
    'migratePage alone, the target as a string',
    (r, page) => runMigration(r, () => alone(r)(str(r.target), page, ASYNC)),
    'target',
  ],
  [
    "the driver's migratepage",
    (r, page) => runMigration(r, () => r.vb.migratepage(r.dev, r.target, str(page), ASYNC)),
  ],
  [
    "the driver's migratepage, the target as a string",
    (r, page) => runMigration(r, () => r.vb.migratepage(r.dev, str(r.target), page, ASYNC)),
    'target',
  ],
  ['insert', (r, page) => r.dev.insert(str(page))],
  ['delete', (r, page) => r.dev.delete(str(page))],
  ['finalize', (r, page) => r.dev.finalize(str(page))],
  ['enqueue', (r, page) => r.m.run(() => r.dev.enqueue(str(page)))],
  ['listEnqueue', (r, page) => r.m.run(() => r.dev.listEnqueue([str(page)]))],
  ['isolateLocked', (r, page) => r.dev.isolateLocked(str(page))],
  ['putbackLocked', (r, page) => r.dev.putbackLocked(str(page))],
  ['uncountIsolated', (r, page) => r.dev.uncountIsolated(str(page))],
  ['host inflate', (r, page) => r.vb.host.inflate([str(page)])],
  ['host inflateOne', (r, page) => r.vb.host.inflateOne(str(page))],
  ['host deflate', (r, page) => r.vb.host.deflate([str(page)])],
  ['host deflateOne', (r, page) => r.vb.host.deflateOne(str(page))],
  [
    'host tellHost deflate',
    (r, page) => r.m.run(() => r.vb.host.tellHost(r.m, 'deflate', [str(page)])),
  ],
  [
    'host tellHost inflate',
    (r, page) => r.m.run(() => r.vb.host.tellHost(r.m, 'inflate', [str(page)])),
  ],
  ['host guestWrite', (r, page) => r.vb.host.guestWrite(str(page))],
];

/** The VM ends its migration: unlocks the pages and puts the isolated one back; all as before. */
function endMigration(r: StringRig): void {
  const { m, vb, dev } = r;
  if (dev.design === 'classic') {
    unlockPage(m, r.isolated);
    unlockPage(m, r.target);
  }
  putback(m, r.list);
  const held = [...r.pages].sort((a, b) => a - b);
  expect(dev.listPages().sort((a, b) => a - b)).toEqual(held);
  expect(dev.isolatedPages).toBe(0);
  expect(vb.numPages).toBe(3);
  expect(vb.host.inflatedPfns()).toEqual(held);
  expectClean(m);
}

describe.each(SETUPS)('a balloon page given as a string, %s %s', (profile, design) => {
  it.each(CALLS)('%s refuses it (E_RANGE) and changes nothing', (_name, call, string) => {
    for (const which of ['listed', 'isolated'] as const) {
      const r = stringRig(profile, design);
      const page = r[which];
      const named = string === 'target' ? r.target : page;
      expectRefused(
        () => call(r, page),
        'E_RANGE',
        'pfn',
        new RegExp(`pfn "${named}" is outside`),
        () => snapshot(r),
      );
      // The rig holds the locks outside any task, as the VM mid-migration: the checker,
      // which calls a page locked with no task left a lost unlock, runs once they are
      // dropped.
      endMigration(r);
    }
  });

  it('lookups do not find it: no device, not counted isolated, not at the host', () => {
    const r = stringRig(profile, design);
    for (const page of [r.listed, r.isolated]) {
      expect(balloonPageDevice(r.m.mem, page)).toBe(r.dev);
      expect(balloonPageDevice(r.m.mem, str(page))).toBeUndefined();
      expect(r.vb.host.isInflated(page)).toBe(true);
      expect(r.vb.host.isInflated(str(page))).toBe(false);
    }
    expect(r.dev.isCountedIsolated(r.isolated)).toBe(true);
    expect(r.dev.isCountedIsolated(str(r.isolated))).toBe(false);
    // Another driver's page whose `private` holds the device's number (zsmalloc keeps its
    // zspage's id there) is no balloon page.
    const other = r.m.allocPages(GFP.KERNEL, 0);
    r.m.mem.pages.priv[other] = r.dev.id;
    expect(balloonPageDevice(r.m.mem, other)).toBeUndefined();
    for (const bad of [-1, r.m.nrPages]) expect(balloonPageDevice(r.m.mem, bad)).toBeUndefined();
    r.m.mem.pages.priv[other] = 0;
    r.m.putPage(other);
    endMigration(r);
  });
});
