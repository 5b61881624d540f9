import {
  allocPages,
  GFP,
  type Machine,
  MIGRATE_MODE,
  MopsError,
  type ProfileName,
  trylockPage,
  unlockPage,
} from '@mops/core';
import { describe, expect, it } from 'vitest';
import type { BalloonDesign, BalloonDevice } from '../src/index.js';
import { expectClean, isolate, PROFILES, putback, withBalloon } from './helpers.js';

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

/** What a refused call must leave as it was. */
function snapshot(m: Machine, dev: BalloonDevice) {
  const p = m.mem.pages;
  return {
    list: dev.listPages(),
    isolated: [...dev.countedIsolated()],
    stats: { ...dev.stats },
    pages: [p.flags.slice(), p.type.slice(), p.priv.slice(), p.refcount.slice()],
    warnings: m.mem.warnings.length,
  };
}

/** `f` throws a MopsError with `code` and field `pfn`, and nothing changed. */
function expectRefused(m: Machine, dev: BalloonDevice, f: () => unknown, code: string): void {
  const before = snapshot(m, dev);
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(MopsError);
  expect((err as MopsError).code).toBe(code);
  expect((err as MopsError).field).toBe('pfn');
  expect(m.mem.halted).toBeUndefined();
  expect(snapshot(m, dev)).toEqual(before);
}

/** A free page: refcount 0, in the buddy allocator. */
function freePage(m: Machine): number {
  for (let pfn = m.mem.nrPages - 1; pfn >= 0; pfn--)
    if (m.mem.pages.refcount[pfn] === 0) return pfn;
  throw new Error('no free page');
}

describe.each(SETUPS)('pfns given to the balloon page helpers, %s %s', (profile, design) => {
  it('insert, delete and finalize refuse a pfn outside the machine (E_RANGE)', () => {
    const { m, dev } = withBalloon(profile, 3, { design });
    for (const pfn of outside(m)) {
      expectRefused(m, dev, () => dev.insert(pfn), 'E_RANGE');
      expectRefused(m, dev, () => dev.delete(pfn), 'E_RANGE');
      expectRefused(m, dev, () => dev.finalize(pfn), 'E_RANGE');
    }
    expectClean(m);
  });

  it('insert refuses a free page or one in use (E_STATE): never a balloon page made of it', () => {
    const { m, dev } = withBalloon(profile, 3, { design });
    const [listed] = dev.listPages();
    for (const pfn of [freePage(m), listed])
      expectRefused(m, dev, () => dev.insert(pfn), 'E_STATE');
    expect(() => dev.insert(freePage(m))).toThrow(/is not an allocated order-0 page/);
    expectClean(m);
  });

  it('delete and finalize refuse a page that is not a balloon page of the device (E_STATE)', () => {
    const { m, dev } = withBalloon(profile, 3, { design });
    const plain = allocPages(m.mem, GFP.HIGHUSER_MOVABLE, 0);
    // Another owner's page->private: finalize must not clear it.
    m.mem.pages.priv[plain] = 7;
    for (const pfn of [plain, freePage(m)]) {
      expectRefused(m, dev, () => dev.delete(pfn), 'E_STATE');
      expectRefused(m, dev, () => dev.finalize(pfn), 'E_STATE');
    }
    expect(m.mem.pages.priv[plain]).toBe(7);
    expect(() => dev.finalize(plain)).toThrow(/is not a page of balloon balloon-kvm/);
    m.mem.pages.priv[plain] = 0;
    expectClean(m);
  });
});

describe.each(SETUPS)('pfns given to the balloon movable_ops by hand, %s %s', (profile, design) => {
  it('isolate, putback and migrate refuse a pfn outside the machine (E_RANGE)', () => {
    const { m, dev } = withBalloon(profile, 3, { design });
    const ops = dev.ops;
    const target = allocPages(m.mem, GFP.HIGHUSER_MOVABLE, 0);
    for (const pfn of outside(m)) {
      expectRefused(m, dev, () => ops.isolatePage(pfn, 0), 'E_RANGE');
      expectRefused(m, dev, () => ops.putbackPage(pfn), 'E_RANGE');
      expectRefused(
        m,
        dev,
        () => m.run(() => ops.migratePage(target, pfn, MIGRATE_MODE.ASYNC) as never),
        'E_RANGE',
      );
    }
    expectClean(m);
  });

  it('migrate of an isolated page refuses a target outside the machine (E_RANGE)', () => {
    const { m, vb, dev } = withBalloon(profile, 3, { design });
    const [a] = dev.listPages();
    const list = m.mem.pages.lists.newList();
    expect(isolate(m, list, a)).toBe(true);
    const classic = design === 'classic';
    // The VM holds the page locked while it migrates it (classic).
    if (classic) expect(trylockPage(m.mem, a)).toBe(true);
    for (const pfn of outside(m))
      expectRefused(
        m,
        dev,
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
