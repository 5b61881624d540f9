import { describe, expect, it } from 'vitest';
import {
  compileTraceFilter,
  type FilterSchema,
  filterFields,
  globToRegExp,
  parseTraceFilter,
} from '../../src/trace/index.js';
import { expectFilterError } from './helpers.js';

/** mm_page_alloc's fields (6.x) and the task name. */
const schema: FilterSchema = {
  pfn: 'u64',
  order: 'u32',
  migratetype: 's32',
  gfp_flags: 'u64',
  comm: 'comm',
};

const ev = (o: Partial<Record<keyof typeof schema, unknown>>) => ({
  pfn: 0,
  order: 0,
  migratetype: 0,
  gfp_flags: 0,
  comm: 'mops',
  ...o,
});

/** Expects compile to fail with `reason` and the caret under offset `at`. */
const bad = (expr: string, reason: string, at: number) =>
  expectFilterError(schema, expr, reason, at);

describe('tracefs filter expressions', () => {
  it('numeric comparisons combined with && and ||', () => {
    const f = compileTraceFilter('order > 2 && migratetype == 1', schema);
    expect(f(ev({ order: 3, migratetype: 1 }))).toBe(true);
    expect(f(ev({ order: 2, migratetype: 1 }))).toBe(false);
    expect(f(ev({ order: 3, migratetype: 0 }))).toBe(false);
    const ops: [string, number, boolean][] = [
      ['order == 2', 2, true],
      ['order != 2', 2, false],
      ['order < 2', 1, true],
      ['order <= 2', 2, true],
      ['order >= 3', 2, false],
      ['order > 1', 2, true],
    ];
    for (const [expr, order, want] of ops)
      expect(compileTraceFilter(expr, schema)(ev({ order }))).toBe(want);
  });

  it('&& binds tighter than ||; ! and parentheses', () => {
    const f = compileTraceFilter('order == 0 || order == 1 && migratetype == 2', schema);
    expect(f(ev({ order: 0, migratetype: 5 }))).toBe(true);
    expect(f(ev({ order: 1, migratetype: 5 }))).toBe(false);
    const g = compileTraceFilter('(order == 0 || order == 1) && migratetype == 2', schema);
    expect(g(ev({ order: 0, migratetype: 5 }))).toBe(false);
    const h = compileTraceFilter('!(order == 0) && !migratetype == 1', schema);
    expect(h(ev({ order: 1, migratetype: 0 }))).toBe(true);
    expect(h(ev({ order: 1, migratetype: 1 }))).toBe(false);
    expect(h(ev({ order: 0, migratetype: 0 }))).toBe(false);
  });

  it('& tests bits; integers in decimal, hex, octal, negative', () => {
    const f = compileTraceFilter('gfp_flags & 0x40', schema);
    expect(f(ev({ gfp_flags: 0xc0 }))).toBe(true);
    expect(f(ev({ gfp_flags: 0x80 }))).toBe(false);
    expect(compileTraceFilter('pfn == 0x1f', schema)(ev({ pfn: 31 }))).toBe(true);
    expect(compileTraceFilter('pfn == 010', schema)(ev({ pfn: 8 }))).toBe(true);
    expect(compileTraceFilter('migratetype > -1', schema)(ev({ migratetype: 0 }))).toBe(true);
    expect(compileTraceFilter('pfn==3&&order!=1', schema)(ev({ pfn: 3 }))).toBe(true);
  });

  it('strings: == and != exact, ~ glob; quoted with " or \'', () => {
    expect(compileTraceFilter('comm == "kcompactd0"', schema)(ev({ comm: 'kcompactd0' }))).toBe(
      true,
    );
    expect(compileTraceFilter("comm == 'kcompactd0'", schema)(ev({ comm: 'kcompactd' }))).toBe(
      false,
    );
    expect(compileTraceFilter("comm != 'mops'", schema)(ev({ comm: 'mops' }))).toBe(false);
    const g = compileTraceFilter('comm ~ "kcomp*"', schema);
    expect(g(ev({ comm: 'kcompactd0' }))).toBe(true);
    expect(g(ev({ comm: 'xkcompactd0' }))).toBe(false);
    expect(compileTraceFilter('comm ~ "*pact?0"', schema)(ev({ comm: 'kcompactd0' }))).toBe(true);
    expect(compileTraceFilter('comm ~ "zs_[a-c]*"', schema)(ev({ comm: 'zs_bench' }))).toBe(true);
    expect(compileTraceFilter('comm ~ "zs_[!a-c]*"', schema)(ev({ comm: 'zs_bench' }))).toBe(false);
    expect(globToRegExp('a.b*').test('a.bc')).toBe(true);
    expect(globToRegExp('a.b*').test('axbc')).toBe(false);
  });

  it('a leading ! in a ~ glob inverts the match (filter_parse_regex)', () => {
    const f = compileTraceFilter('comm ~ "!kcomp*"', schema);
    expect(f(ev({ comm: 'kcompactd0' }))).toBe(false);
    expect(f(ev({ comm: 'mops' }))).toBe(true);
    // Single quotes, under a !, and with a [!…] class after it.
    expect(compileTraceFilter("comm ~ '!mo?s'", schema)(ev({ comm: 'mops' }))).toBe(false);
    expect(compileTraceFilter('!comm ~ "!kcomp*"', schema)(ev({ comm: 'kcompactd0' }))).toBe(true);
    expect(compileTraceFilter('comm ~ "![!k]*"', schema)(ev({ comm: 'kcompactd0' }))).toBe(true);
    expect(compileTraceFilter('comm ~ "![!k]*"', schema)(ev({ comm: 'mops' }))).toBe(false);
    // Only a leading ! negates; == compares the text as written.
    expect(compileTraceFilter('comm ~ "a!*"', schema)(ev({ comm: 'a!b' }))).toBe(true);
    expect(compileTraceFilter('comm == "!mops"', schema)(ev({ comm: '!mops' }))).toBe(true);
  });

  it('an empty filter or 0 accepts everything', () => {
    expect(compileTraceFilter('', schema)(ev({}))).toBe(true);
    expect(compileTraceFilter(' 0 ', schema)(ev({}))).toBe(true);
    expect(parseTraceFilter('0')).toBeUndefined();
  });

  it('parses into a tree and lists its fields', () => {
    const t = parseTraceFilter('order > 2 && (comm ~ "k*" || !pfn == 1)');
    expect(t?.kind).toBe('and');
    expect(filterFields(t).sort()).toEqual(['comm', 'order', 'pfn']);
  });

  it('errors point at the bad token', () => {
    bad('order > 2 && foo == 1', 'Field not found', 13);
    bad('order >', 'Missing field name and/or value', 7);
    bad('(order > 2', 'Unbalanced parens', 0); // the unclosed '('
    bad('order > 2)', 'Unbalanced parens', 9);
    bad('comm > "x"', 'Illegal operation for field type', 5);
    bad('comm & "x"', 'Illegal operation for field type', 5);
    bad('comm > 3', 'Expecting string field', 7);
    bad('comm & 3', 'Expecting string field', 7);
    bad('order ~ 3', 'Illegal operation for field type', 6);
    bad('order == abc', 'Invalid value (did you forget quotes)?', 9);
    bad('order == 5abc', 'Illegal integer value', 9);
    bad('order == 09', 'Illegal integer value', 9);
    bad('comm == "abc', 'Missing matching quote', 8);
    bad('order == 1 2', 'Invalid operator; expected && or ||', 11);
    bad('order 1', 'Invalid operator', 6);
    bad('order', 'Missing operator', 5);
    bad('order == 1 &&', 'Missing field name and/or value', 13);
    bad('== 1', 'Field name is missing or invalid', 0);
    bad('order && 1', 'Invalid operator', 6);
  });
});
