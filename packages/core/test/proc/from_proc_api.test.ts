import { describe, expect, it } from 'vitest';
import {
  machineFromProc,
  parseBuddyinfo,
  parsePagetypeinfo,
  parseVmstat,
  parseZoneinfo,
  procView,
} from '../../src/proc/index.js';
import { expectMopsError, FIXTURES, fixture } from './helpers.js';

const t = {
  buddyinfo: fixture('buddyinfo'),
  pagetypeinfo: fixture('pagetypeinfo'),
  zoneinfo: fixture('zoneinfo'),
  vmstat: fixture('vmstat'),
};
// biome-ignore lint/suspicious/noExplicitAny: calls as plain JavaScript would make them
const fromProc = machineFromProc as (...args: any[]) => unknown;

describe('machineFromProc: a source that is not a directory or the texts is E_USAGE', () => {
  const src =
    /^machineFromProc: the first argument must be a directory \(a path or a file: URL\) or the texts \{ buddyinfo, pagetypeinfo, zoneinfo\?, vmstat\? \}, got /;
  for (const [what, v, shown] of [
    ['null', null, 'null'],
    ['a number', 123, '123'],
    ['undefined', undefined, 'undefined'],
    ['a symbol', Symbol('s'), 'Symbol\\(s\\)'],
    ['an array', [], 'an array'],
    ['a boolean', true, 'true'],
  ] as const)
    it(what, () => {
      const e = expectMopsError(() => fromProc(v), 'E_USAGE', new RegExp(src.source + shown));
      expect(e.field).toBe('src');
    });

  it('an empty path, rather than reading /buddyinfo', () => {
    expectMopsError(() => fromProc(''), 'E_USAGE', /^machineFromProc: the directory path is empty/);
  });

  it('a URL that is not a file: URL', () => {
    expectMopsError(
      () => fromProc(new URL('http://example.com/proc/')),
      'E_USAGE',
      /^machineFromProc: a URL must be a file: URL, got "http:\/\/example.com\/proc\/"/,
    );
  });

  it('a file: URL and a path still read the directory', () => {
    const view = (src: URL | string) => procView(machineFromProc(src), 'buddyinfo');
    expect(view(FIXTURES)).toBe(fixture('buddyinfo'));
    expect(view(FIXTURES.pathname)).toBe(fixture('buddyinfo'));
  });
});

describe('machineFromProc: texts of the wrong type, or under an unknown name, are E_USAGE', () => {
  for (const [what, texts, re, field] of [
    [
      'zoneinfo: 5',
      { ...t, zoneinfo: 5 },
      /texts\.zoneinfo must be a string .*, got 5/,
      'zoneinfo',
    ],
    [
      'vmstat: {}',
      { ...t, vmstat: {} },
      /texts\.vmstat must be a string .*, got an object/,
      'vmstat',
    ],
    [
      'zoneinfo: null',
      { ...t, zoneinfo: null },
      /texts\.zoneinfo must be a string .*, got null/,
      'zoneinfo',
    ],
    [
      'no buddyinfo',
      { pagetypeinfo: t.pagetypeinfo },
      /texts\.buddyinfo must be a string .*, got undefined/,
      'buddyinfo',
    ],
    [
      'a misspelt file',
      { ...t, zonefino: 'x' },
      /texts: unknown file 'zonefino'; the files are buddyinfo, pagetypeinfo, zoneinfo, vmstat/,
      'zonefino',
    ],
  ] as const)
    it(what, () => {
      const e = expectMopsError(
        () => fromProc(texts),
        'E_USAGE',
        new RegExp(`^machineFromProc: ${re.source}`),
      );
      expect(e.field).toBe(field);
    });
});

describe('machineFromProc: options are checked as createMachine checks its config', () => {
  it('options that are not an object are E_USAGE', () => {
    for (const [v, shown] of [
      [null, 'null'],
      [5, '5'],
      ['v6.3', '"v6.3"'],
    ] as const)
      expectMopsError(
        () => fromProc(t, v),
        'E_USAGE',
        new RegExp(`^machineFromProc: options must be an object, got ${shown}`),
      );
  });

  it('an unknown option is E_CONFIG, as in createMachine', () => {
    const e = expectMopsError(
      () => fromProc(t, { seeed: 3 }),
      'E_CONFIG',
      /^machineFromProc: unknown option 'seeed'; the options are profile, seed, minFreeKbytes, counters, contents, movable, onNote$/,
    );
    expect(e.field).toBe('seeed');
  });

  it('counters, contents and movable must be booleans', () => {
    for (const key of ['counters', 'contents', 'movable'])
      expectMopsError(
        () => fromProc(t, { [key]: 'no' }),
        'E_CONFIG',
        new RegExp(`^${key}: must be true or false, got "no"`),
      );
  });

  it('options left undefined take their defaults (as the CLI passes them)', () => {
    const m = machineFromProc(t, { profile: undefined, seed: undefined, contents: undefined });
    const d = machineFromProc(t);
    expect(m.profile.name).toBe(d.profile.name);
    expect(m.config.seed).toBe(d.config.seed);
    expect(m.mem.pages.contents === undefined).toBe(d.mem.pages.contents === undefined);
  });
});

describe('the parse functions: text that is not a string is E_USAGE', () => {
  for (const [name, fn] of [
    ['parseBuddyinfo', parseBuddyinfo],
    ['parsePagetypeinfo', parsePagetypeinfo],
    ['parseZoneinfo', parseZoneinfo],
    ['parseVmstat', parseVmstat],
  ] as const)
    it(name, () => {
      const call = fn as (...args: unknown[]) => unknown;
      for (const [v, shown] of [
        [undefined, 'undefined'],
        [5, '5'],
        [Buffer.from('x'), 'a Buffer'],
      ] as const)
        expectMopsError(
          () => call(v),
          'E_USAGE',
          new RegExp(`^${name}: text must be a string \\(the file's contents\\), got ${shown}`),
        );
      expectMopsError(
        () => call('', 7),
        'E_USAGE',
        new RegExp(`^${name}: file must be a string \\(the name messages give the file\\), got 7`),
      );
    });
});
