import { describe, expect, it } from 'vitest';
import { createZsPool, ZsPool, type ZsPoolOptions } from '../src/index.js';
import { expectClean, mopsError, PROFILES, rig } from './helpers.js';

describe.each(PROFILES)('zs_create_pool options, %s', (profile) => {
  it('options that are not an object (an array too): E_USAGE naming what was given, no pool made', () => {
    const { m, pool } = rig(profile);
    const pools = pool.registry.pools.length;
    for (const [bad, kind] of [
      [null, 'null'],
      [5, '5'],
      ['zram1', '"zram1"'],
      [['zram1'], 'an array'],
      [() => 'zram1', 'a function'],
    ] as const) {
      for (const make of [
        () => createZsPool(m, bad as unknown as ZsPoolOptions),
        () => new ZsPool(m, bad as unknown as ZsPoolOptions),
      ]) {
        const e = mopsError(make);
        expect(e).toMatchObject({ code: 'E_USAGE', field: 'options' });
        expect(e.message).toBe(`zs_create_pool: options must be an object, got ${kind}`);
      }
    }
    expect(pool.registry.pools.length).toBe(pools);
    expectClean(m);
  });

  it('an unknown option (a misspelt name): E_USAGE naming it, its value and the options, no pool made', () => {
    const { m, pool } = rig(profile);
    const pools = pool.registry.pools.length;
    for (const [opts, key, kind] of [
      [{ nmae: 'zram1' }, 'nmae', '"zram1"'],
      [{ name: 'zram1', mistake: { noZspageNullCheck: true } }, 'mistake', 'an object'],
      [{ freeWithoutClearMovable: true }, 'freeWithoutClearMovable', 'true'],
    ] as const) {
      for (const make of [
        () => createZsPool(m, opts as unknown as ZsPoolOptions),
        () => new ZsPool(m, opts as unknown as ZsPoolOptions),
      ]) {
        const e = mopsError(make);
        expect(e).toMatchObject({ code: 'E_USAGE', field: key });
        expect(e.message).toBe(
          `zs_create_pool: unknown option '${key}' (given ${kind}); the options are name, mistakes`,
        );
      }
    }
    expect(pool.registry.pools.length).toBe(pools);
    expectClean(m);
  });

  it('a name of the wrong kind: E_USAGE naming name and the value given', () => {
    const { m, pool } = rig(profile);
    const pools = pool.registry.pools.length;
    for (const [name, kind] of [
      [42, '42'],
      ['', '""'],
      [null, 'null'],
      [['zram1'], 'an array'],
      [{}, 'an object'],
    ] as const) {
      const e = mopsError(() => createZsPool(m, { name: name as unknown as string }));
      expect(e).toMatchObject({ code: 'E_USAGE', field: 'name' });
      expect(e.message).toBe(`zs_create_pool: name must be a non-empty string, got ${kind}`);
    }
    expect(pool.registry.pools.length).toBe(pools);
    expectClean(m);
  });

  it('mistakes of the wrong kind, unknown or with a value not allowed: E_USAGE naming it', () => {
    const { m, pool } = rig(profile);
    const pools = pool.registry.pools.length;
    for (const [mistakes, field, message] of [
      [
        7,
        'mistakes',
        'mistakes must be an object of freeWithoutClearMovable, noZspageNullCheck, sharedIsolationWord, got 7',
      ],
      [
        [true],
        'mistakes',
        'mistakes must be an object of freeWithoutClearMovable, noZspageNullCheck, sharedIsolationWord, got an array',
      ],
      [
        { freeWithoutClearMovabel: true },
        'freeWithoutClearMovabel',
        "unknown mistake 'freeWithoutClearMovabel'",
      ],
      [
        { sharedIsolationWord: 'yes' },
        'sharedIsolationWord',
        'mistake sharedIsolationWord must be "racy" or "fixed", got "yes"',
      ],
      [
        { noZspageNullCheck: 1 },
        'noZspageNullCheck',
        'mistake noZspageNullCheck must be true or false, got 1',
      ],
    ] as const) {
      const e = mopsError(() => createZsPool(m, { mistakes: mistakes as never }));
      expect(e).toMatchObject({ code: 'E_USAGE', field });
      expect(e.message).toContain(message);
    }
    expect(pool.registry.pools.length).toBe(pools);
    expectClean(m);
  });

  it('the first argument must be a machine: E_USAGE naming machine', () => {
    const { m, pool } = rig(profile);
    const pools = pool.registry.pools.length;
    for (const machine of [null, {}, m.mem])
      expect(mopsError(() => createZsPool(machine as never))).toMatchObject({
        code: 'E_USAGE',
        field: 'machine',
      });
    expect(pool.registry.pools.length).toBe(pools);
    expectClean(m);
  });

  it('known options, left out or given as undefined, make a pool', () => {
    const { m, pool } = rig(profile);
    const pools = pool.registry.pools.length;
    expect(createZsPool(m, { name: 'zram1', mistakes: undefined }).name).toBe('zram1');
    expect(createZsPool(m, { name: undefined }).name).toBe('zram0');
    expect(createZsPool(m, { mistakes: { sharedIsolationWord: undefined } }).mistakes).toEqual({
      sharedIsolationWord: undefined,
    });
    expect(pool.registry.pools.length).toBe(pools + 3);
    expectClean(m);
  });
});
