/**
 * migrate_pages with a getNew or putNew of the caller's that does something wrong: a
 * MopsError naming it, and every page where -ENOMEM would leave it (nothing lost).
 */
import { describe, expect, it } from 'vitest';
import {
  compactNode,
  compactZones,
  installPlugin,
  isolateMovablePage,
  isolateMovablePageFast,
  type KernelGen,
  kcompactdRun,
  kswapdBalance,
  MIGRATE_MODE,
  type MopsPlugin,
  migratePages,
  PG,
  PROFILE_NAMES,
  putbackMovablePages,
  tryToCompactPages,
} from '../../src/index.js';
import { expectInvariants } from '../helpers.js';
import { getNew, isolate, type Rig, rig } from './harness.js';

/** One isolated page on the rig's list, migrated with `g` (and `put`); what was thrown. */
function attempt(r: Rig, g: unknown, put?: unknown): unknown {
  try {
    r.m.run(() => migratePages(r.m, r.list, g as (src: number) => number, put as undefined, 0, 0));
  } catch (e) {
    return e;
  }
  return undefined;
}

describe.each(PROFILE_NAMES)('migrate_pages: the caller’s getNew and putNew — %s', (profile) => {
  it.each([
    ['undefined', () => undefined, 'returned undefined'],
    ['NaN', () => Number.NaN, 'returned NaN'],
    ['a fraction', () => 0.5, 'returned 0.5'],
    ['a pfn beyond memory', () => 1e9, 'returned 1000000000'],
    ['src itself', (src: number) => src, 'returned'],
    ['a free page', () => 0x3ff, 'returned 1023'],
    [
      'a throw',
      () => {
        throw new Error('out of ideas');
      },
      'threw Error: out of ideas',
    ],
  ])(
    'getNew giving %s: E_USAGE naming getNew; the page stays isolated on the list',
    (_what, g, text) => {
      const r = rig(profile);
      const [a] = r.drv.alloc(1);
      isolate(r, a);
      const free = r.m.mem.pages.refcount[0x3ff];
      expect(free).toBe(0);
      const e = attempt(r, g);
      expect(e).toMatchObject({ code: 'E_USAGE', field: 'getNew' });
      expect((e as Error).message).toContain(`migrate_pages: getNew ${text}`);
      expect(r.m.mem.halted).toBeUndefined();
      expect(r.m.mem.pages.lists.first(r.list)).toBe(a);
      expect(r.m.mem.pages.flags[a] & ((1 << PG.isolated) | (1 << PG.locked))).toBe(
        1 << PG.isolated,
      );
      expect(r.m.mem.pages.refcount[0x3ff]).toBe(0);
      expect(r.drv.callsOf('migrate')).toEqual([]);
      r.m.run(() => putbackMovablePages(r.m, r.list));
      expectInvariants(r.m);
    },
  );

  it('a getNew or putNew that is not a function: E_USAGE before anything happens', () => {
    const r = rig(profile);
    isolate(r, r.drv.alloc(1)[0]);
    expect(attempt(r, 42)).toMatchObject({ code: 'E_USAGE', field: 'getNew' });
    expect(attempt(r, getNew(r), 'x')).toMatchObject({ code: 'E_USAGE', field: 'putNew' });
    expect(r.targets).toEqual([]);
    r.m.run(() => putbackMovablePages(r.m, r.list));
    expectInvariants(r.m);
  });

  it('a putNew that throws: E_USAGE naming putNew; the unused target is freed', () => {
    const r = rig(profile);
    isolate(r, r.drv.alloc(1)[0]);
    r.drv.migrateRc = -16; // -EBUSY: the target goes back through putNew
    const e = attempt(r, getNew(r), () => {
      throw new Error('no thanks');
    });
    expect(e).toMatchObject({ code: 'E_USAGE', field: 'putNew' });
    expect(r.targets).toHaveLength(1);
    expect(r.m.mem.pages.refcount[r.targets[0]]).toBe(0);
    r.m.run(() => putbackMovablePages(r.m, r.list));
    expectInvariants(r.m);
  });

  it('a sane getNew still migrates (MIGRATE_SYNC)', () => {
    const r = rig(profile);
    isolate(r, r.drv.alloc(1)[0]);
    const res = r.m.run(() =>
      migratePages(r.m, r.list, getNew(r), undefined, MIGRATE_MODE.SYNC, 0),
    );
    expect(res).toMatchObject({ rc: 0, nrSucceeded: 1 });
    expectInvariants(r.m);
  });
});

describe('entry points that take a machine first', () => {
  it('refuse anything else with E_USAGE naming the machine', () => {
    const r = rig('v6.3');
    const bad = [null, r.m.mem];
    const gens: ((x: never) => KernelGen<unknown>)[] = [
      (x: never) => compactNode(x),
      (x: never) => compactZones(x, 9, 'sync'),
      (x: never) => tryToCompactPages(x, { gfp: 0, order: 4, allocFlags: 0, prio: 0 }),
      (x: never) => kcompactdRun(x, 10),
    ];
    for (const x of bad) {
      for (const g of gens)
        expect(() => r.m.run(() => g(x as never))).toThrow(
          expect.objectContaining({ code: 'E_USAGE', field: 'machine' }),
        );
      expect(() => kswapdBalance(x as never)).toThrow(
        expect.objectContaining({ field: 'machine' }),
      );
      const plugin: MopsPlugin = {
        manifest: { name: 'p', version: '1', profiles: ['v6.3'] },
        register() {},
      };
      expect(() => installPlugin(x as never, plugin)).toThrow(
        expect.objectContaining({ code: 'E_USAGE', field: 'machine' }),
      );
    }
    expectInvariants(r.m);
  });
});

describe('isolate_movable_page with a pfn that is not a page of the machine', () => {
  it.each(PROFILE_NAMES)(
    'E_RANGE naming the pfn, in both forms, nothing changed — %s',
    (profile) => {
      const r = rig(profile);
      const [a] = r.drv.alloc(1);
      for (const bad of [-1, 1e9, 0.5, Number.NaN, null, String(a)]) {
        expect(() => isolateMovablePageFast(r.m, bad as never, 0)).toThrow(
          expect.objectContaining({ code: 'E_RANGE', field: 'pfn' }),
        );
        expect(() => r.m.run(() => isolateMovablePage(r.m, bad as never, 0))).toThrow(
          expect.objectContaining({ code: 'E_RANGE', field: 'pfn' }),
        );
      }
      expect(r.m.mem.pages.flags[a] & (1 << PG.isolated)).toBe(0);
      expect(r.m.mem.pages.refcount[a]).toBe(1);
      expectInvariants(r.m);
    },
  );
});

describe('migrate_pages and putback_movable_pages with a list that is not one of the machine', () => {
  it.each(PROFILE_NAMES)('E_USAGE naming the list, nothing changed — %s', (profile) => {
    const r = rig(profile);
    const [a] = r.drv.alloc(1);
    isolate(r, a);
    const lists = r.m.mem.pages.lists;
    const freed = lists.newList();
    lists.freeList(freed);
    for (const bad of [1e6, -1, 0.5, '0', undefined, freed]) {
      expect(() =>
        r.m.run(() => migratePages(r.m, bad as never, getNew(r), undefined, 0, 0)),
      ).toThrow(expect.objectContaining({ code: 'E_USAGE', field: 'from' }));
      expect(() => r.m.run(() => putbackMovablePages(r.m, bad as never))).toThrow(
        expect.objectContaining({ code: 'E_USAGE', field: 'list' }),
      );
    }
    expect(r.targets).toEqual([]);
    expect(r.m.mem.pages.flags[a] & (1 << PG.isolated)).not.toBe(0);
    r.m.run(() => putbackMovablePages(r.m, r.list));
    expect(r.m.mem.pages.flags[a] & (1 << PG.isolated)).toBe(0);
    expectInvariants(r.m);
  });
});
