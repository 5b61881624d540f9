import { describe, expect, it } from 'vitest';
import {
  checkerboard,
  checkInvariants,
  compactionState,
  compactMemory,
  compactZones,
  createMachine,
  fragmentationIndex,
  fragmentWithFiller,
  GFP,
  installedPlugins,
  MopsError,
  mixedChurn,
  printable,
  procView,
  setDefragMode,
  traceRecorder,
  unusableIndex,
  valueKind,
  wakeupKcompactd,
} from '../src/index.js';
import { expectInvariants, smallMachine } from './helpers.js';

describe('how error messages name a value', () => {
  it.each([
    ['x', '"x"'],
    [5, '5'],
    [Number.NaN, 'NaN'],
    [null, 'null'],
    [undefined, 'undefined'],
    [10n, '10n'],
    [[1, 2], 'an array'],
    [{ a: 1 }, 'an object'],
    [Object.create(null), 'an object'],
    [() => 1, 'a function'],
    [new Uint32Array(2), 'a Uint32Array'],
    [new Int8Array(2), 'an Int8Array'],
    [new Map(), 'a Map'],
  ])('valueKind(%s) is %s', (v, text) => {
    expect(valueKind(v)).toBe(text);
  });

  it('printable quotes strings and never throws', () => {
    expect(printable('a"b')).toBe('"a\\"b"');
    expect(printable(Object.create(null))).toBe('[object Object]');
  });
});

describe('bad values of any type are a MopsError naming what was given, never a TypeError', () => {
  const m = () => smallMachine('8M');
  const zone = (mc: ReturnType<typeof m>) => mc.mem.populatedZones[0];
  const calls: [string, string, (bad: never) => unknown][] = [
    ['compactZones order', 'order', (b) => ((x) => x.run(() => compactZones(x, b, 'async')))(m())],
    ['compactZones mode', 'mode', (b) => ((x) => x.run(() => compactZones(x, 1, b)))(m())],
    ['wakeupKcompactd order', 'order', (b) => wakeupKcompactd(m(), b, 1)],
    ['wakeupKcompactd highestZoneidx', 'highestZoneidx', (b) => wakeupKcompactd(m(), 1, b)],
    ['fragmentationIndex order', 'order', (b) => fragmentationIndex(zone(m()), b)],
    ['unusableIndex order', 'order', (b) => unusableIndex(zone(m()), b)],
    ['allocPages order', 'order', (b) => m().allocPages(GFP.KERNEL, b)],
    [
      'vm.extfrag_threshold',
      'extfrag_threshold',
      (b) => {
        compactionState(m()).sysctl.extfragThreshold = b;
      },
    ],
    [
      'vm.defrag_mode',
      'defragMode',
      (b) => setDefragMode(createMachine({ memory: '8M', profile: 'v6.17' }).mem, b),
    ],
    ['minFreeKbytes', 'minFreeKbytes', (b) => createMachine({ memory: '8M', minFreeKbytes: b })],
    ['traceRecorder limit', 'limit', (b) => traceRecorder(m(), { limit: b })],
    ['spawn cpu', 'cpu', (b) => m().sched.spawn('t', function* () {}, { cpu: b })],
    ['createMachine memory', 'memory', (b) => createMachine({ memory: b })],
    ['createMachine profile', 'profile', (b) => createMachine({ memory: '8M', profile: b })],
    ['createMachine seed', 'seed', (b) => createMachine({ memory: '8M', seed: b })],
    ['mixedChurn fill', 'fill', (b) => mixedChurn(m(), { fill: b })],
    ['mixedChurn movable', 'movable', (b) => mixedChurn(m(), { movable: b })],
  ];
  it.each(['toString', '__proto__', 'constructor'])(
    'createMachine profile %s is no profile',
    (name) => {
      expect(() => createMachine({ memory: '8M', profile: name as never })).toThrow(
        expect.objectContaining({
          code: 'E_CONFIG',
          field: 'profile',
          message: expect.stringContaining(`"${name}" is not a profile`),
        }),
      );
    },
  );

  it.each(
    calls.flatMap(([what, field, call]) => [
      [what, 'a symbol', Symbol('bad'), 'Symbol(bad)', field, call],
      [what, 'an object', { bad: 1 }, 'an object', field, call],
    ]),
  )('%s given %s', (_what, _kind, bad, shown, field, call) => {
    let err: unknown;
    try {
      (call as (b: unknown) => unknown)(bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MopsError);
    expect(err).toMatchObject({ field });
    expect((err as Error).message).toContain(shown);
  });
});

describe('entry points that take a machine say so when given something else', () => {
  const m = smallMachine('8M');
  it.each([
    ['procView', (x: never) => procView(x, 'buddyinfo')],
    ['checkInvariants', (x: never) => checkInvariants(x)],
    ['compact_memory', (x: never) => m.run(() => compactMemory(x))],
    ['compactionState', (x: never) => compactionState(x)],
    ['installedPlugins', (x: never) => installedPlugins(x)],
    ['trace', (x: never) => traceRecorder(x)],
    ['mixedChurn', (x: never) => mixedChurn(x)],
    ['checkerboard', (x: never) => checkerboard(x)],
    ['fragmentWithFiller', (x: never) => fragmentWithFiller(x)],
  ])('%s', (what, call) => {
    for (const [bad, shown] of [
      [m.mem, 'a Memory'],
      [null, 'null'],
      [{}, 'an object'],
    ] as const)
      expect(() => call(bad as never)).toThrow(
        expect.objectContaining({
          code: 'E_USAGE',
          field: 'machine',
          message: `${what}: the first argument must be a machine (createMachine), got ${shown}`,
        }),
      );
    expectInvariants(m);
  });

  it.each([
    ['mixedChurn', () => mixedChurn(m, null as never)],
    ['checkerboard', () => checkerboard(m, null as never)],
    ['fragmentWithFiller', () => fragmentWithFiller(m, [] as never)],
  ])('%s with options that are not an object is E_USAGE, and nothing changes', (what, call) => {
    const free = m.mem.populatedZones[0].nrFreePages;
    expect(call).toThrow(
      expect.objectContaining({
        code: 'E_USAGE',
        message: expect.stringMatching(`^${what}: options must be an object, got `),
      }),
    );
    expect(m.mem.populatedZones[0].nrFreePages).toBe(free);
    expectInvariants(m);
  });

  it.each([
    ['events', { events: 'mm_compaction_begin' }, '"mm_compaction_begin"'],
    ['events', { events: [1] }, 'an array'],
    ['filter', { filter: null }, 'null'],
    ['filter', { filter: { mm_compaction_begin: 5 } }, 'an object'],
    ['pointers', { pointers: 'hex' }, '"hex"'],
    ['options', null, 'null'],
  ])('traceRecorder: %s of the wrong type is E_USAGE naming it (%o)', (field, opts, shown) => {
    expect(() => traceRecorder(m, opts as never)).toThrow(
      expect.objectContaining({
        code: 'E_USAGE',
        field,
        message: expect.stringContaining(`got ${shown}`),
      }),
    );
    expect(m.trace.enabled.mm_compaction_begin).toBeFalsy();
  });
});

describe('workloads given an option they do not take', () => {
  it.each([
    ['mixedChurn', (o: object) => mixedChurn(createMachine({ memory: '8M' }), o), 'maxOrder'],
    [
      'fragmentWithFiller',
      (o: object) => fragmentWithFiller(createMachine({ memory: '8M' }), o),
      'unmovableEvery',
    ],
    ['checkerboard', (o: object) => checkerboard(createMachine({ memory: '8M' }), o), 'owner'],
  ])('%s: E_USAGE naming the key and the options it takes', (what, call, known) => {
    expect(() => call({ fil: 0.5 })).toThrow(
      expect.objectContaining({
        code: 'E_USAGE',
        field: 'fil',
        message: expect.stringContaining(
          `${what}: unknown option 'fil' (given 0.5); the options are `,
        ),
      }),
    );
    expect(() => call({ fil: 0.5 })).toThrow(
      expect.objectContaining({ message: expect.stringContaining(known) }),
    );
  });
});
