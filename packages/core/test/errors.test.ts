import { describe, expect, it } from 'vitest';
import { printable, valueKind } from '../src/index.js';

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
