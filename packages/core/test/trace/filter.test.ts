import { describe, expect, it } from 'vitest';
import {
  compileTraceFilter,
  filterFields,
  globToRegExp,
  parseTraceFilter,
} from '../../src/trace/index.js';
import { expectParseError, filterChecks, PAGE_ALLOC_SCHEMA as schema } from './helpers.js';

const ev = (o: Partial<Record<keyof typeof schema, unknown>>) => ({
  pfn: 0,
  order: 0,
  migratetype: 0,
  gfp_flags: 0,
  comm: 'mops',
  ...o,
});

const { bad, passes } = filterChecks(schema);

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
    for (const [expr, order, want] of ops) expect(passes(expr, ev({ order }))).toBe(want);
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
    expect(passes('pfn == 0x1f', ev({ pfn: 31 }))).toBe(true);
    expect(passes('pfn == 010', ev({ pfn: 8 }))).toBe(true);
    expect(passes('migratetype > -1', ev({ migratetype: 0 }))).toBe(true);
    expect(passes('pfn==3&&order!=1', ev({ pfn: 3 }))).toBe(true);
  });

  it('strings: == and != exact, ~ glob; quoted with " or \'', () => {
    expect(passes('comm == "kcompactd0"', ev({ comm: 'kcompactd0' }))).toBe(true);
    expect(passes("comm == 'kcompactd0'", ev({ comm: 'kcompactd' }))).toBe(false);
    expect(passes("comm != 'mops'", ev({ comm: 'mops' }))).toBe(false);
    const g = compileTraceFilter('comm ~ "kcomp*"', schema);
    expect(g(ev({ comm: 'kcompactd0' }))).toBe(true);
    expect(g(ev({ comm: 'xkcompactd0' }))).toBe(false);
    expect(passes('comm ~ "*pact?0"', ev({ comm: 'kcompactd0' }))).toBe(true);
    expect(passes('comm ~ "zs_[a-c]*"', ev({ comm: 'zs_bench' }))).toBe(true);
    expect(passes('comm ~ "zs_[!a-c]*"', ev({ comm: 'zs_bench' }))).toBe(false);
    expect(globToRegExp('a.b*').test('a.bc')).toBe(true);
    expect(globToRegExp('a.b*').test('axbc')).toBe(false);
  });

  it('a leading ! in a ~ glob inverts the match (filter_parse_regex)', () => {
    const f = compileTraceFilter('comm ~ "!kcomp*"', schema);
    expect(f(ev({ comm: 'kcompactd0' }))).toBe(false);
    expect(f(ev({ comm: 'mops' }))).toBe(true);
    // Single quotes, under a !, and with a [!…] class after it.
    expect(passes("comm ~ '!mo?s'", ev({ comm: 'mops' }))).toBe(false);
    expect(passes('!comm ~ "!kcomp*"', ev({ comm: 'kcompactd0' }))).toBe(true);
    expect(passes('comm ~ "![!k]*"', ev({ comm: 'kcompactd0' }))).toBe(true);
    expect(passes('comm ~ "![!k]*"', ev({ comm: 'mops' }))).toBe(false);
    // Only a leading ! negates; == compares the text as written.
    expect(passes('comm ~ "a!*"', ev({ comm: 'a!b' }))).toBe(true);
    expect(passes('comm == "!mops"', ev({ comm: '!mops' }))).toBe(true);
  });

  it('0 clears the filter: it accepts everything; an empty filter is refused', () => {
    expect(passes(' 0 ', ev({}))).toBe(true);
    expect(passes('0', ev({}))).toBe(true);
    expect(parseTraceFilter('0')).toBeUndefined();
    expect(parseTraceFilter('\t0\n')).toBeUndefined();
    // The default profile (v6.3): process_preds()' bare -EINVAL (see filter-releases.test.ts).
    bad('', 'Error (an empty filter: no predicate; 0 clears a filter)', 0);
    expectParseError(' ', 'Error (an empty filter: no predicate; 0 clears a filter)', 0, '');
  });

  it('parses into a tree and lists its fields', () => {
    const t = parseTraceFilter('order > 2 && (comm ~ "k*" || !pfn == 1)');
    expect(t?.kind).toBe('and');
    expect(filterFields(t).sort()).toEqual(['comm', 'order', 'pfn']);
  });

  it("errors are the kernel's, the caret where error_log puts it", () => {
    // parse_pred() records its errors one past the character it looks at (predicate_parse()
    // hands it the offset past the predicate's first character): after the field name, and
    // past the start of the operator or value.
    bad('order > 2 && foo == 1', 'Field not found', 17);
    bad('order >', 'Invalid value (did you forget quotes)?', 8);
    bad('comm > "x"', 'Illegal operation for field type', 8);
    bad('comm & "x"', 'Illegal operation for field type', 8);
    bad('comm > 3', 'Expecting string field', 8);
    bad('comm & 3', 'Expecting string field', 8);
    bad('order ~ 3', 'Illegal operation for field type', 9);
    bad('order == abc', 'Invalid value (did you forget quotes)?', 10);
    bad('order == 5abc', 'Illegal integer value', 10);
    bad('order == 09', 'Illegal integer value', 10);
    bad('order 1', 'Invalid operator', 7);
    bad('order', 'Invalid operator', 6);
    bad('comm !~ "x"', 'Invalid operator', 6);
    // `&&` right after a field is the operator `&`, then a value that is none.
    bad('order && 1', 'Invalid value (did you forget quotes)?', 8);
    // calc_stack() and predicate_parse() record theirs at the character itself.
    bad('(order > 2', "Too many '('", 0);
    bad('order > 2)', "Too few '('", 9);
    bad('comm == "abc', 'Missing matching quote', 8);
    bad('order == 1 2', 'Too many terms in predicate expression', 11);
    bad('order == 1 & pfn == 2', 'Too many terms in predicate expression', 11);
  });

  it("the kernel selftest's error_log case (tracing-error-log.tc)", () => {
    // '((sig >= 10 && sig < 15) || dsig ^== 17) && comm != bash': the caret under the '='.
    const signal = filterChecks({ sig: 's32', comm: 'comm' });
    signal.bad('((sig >= 10 && sig < 15) || dsig == 17) && comm != bash', 'Field not found', 33);
  });

  it('calc_stack() checks quotes and parentheses first, then each predicate in order', () => {
    // Field, then operator: an unknown field is reported before a bad operator after it.
    bad('foo 1', 'Field not found', 4);
    bad('foo == "x', 'Missing matching quote', 7);
    bad('foo == 1)', "Too few '('", 8);
    bad('order == 1 2 && foo == 1', 'Too many terms in predicate expression', 11);
    bad('comm == "x" && (order == 1', "Too many '('", 15);
    // The open '(' is found walking back from the end, skipping quoted text.
    bad('(pfn == 1) || (comm == "("', "Too many '('", 14);
    bad('((order == 1)', "Too many '('", 0);
    bad('(comm == ")"', "Too many '('", 0);
    // A number is its letters and digits after an optional '-': what follows must be
    // `&&`, `||`, `)` or the end.
    bad('order == 1.5', 'Too many terms in predicate expression', 10);
    bad('comm == "x"y', 'Too many terms in predicate expression', 11);
  });

  it('where the kernel has only an errno, the message is Error, the caret at 0', () => {
    bad('== 1', 'Error (no field name at offset 0)', 0);
    bad('order == 1 && == 2', 'Error (no field name at offset 14)', 0);
    bad('(!)', 'Error (no field name at offset 2)', 0);
    bad('!~ "x"', 'Error (no field name at offset 0)', 0);
    bad('( )', 'Error (no predicate)', 0);
    expectParseError('(())', 'Error (no predicate)', 0);
    // No predicate after the `!`s: predicate_parse()'s "No filter found", at the end.
    bad('!', 'No filter found', 1);
    bad(' !! ', 'No filter found', 3, ' !!');
  });

  it('trailing spaces are stripped before parsing, as apply_event_filter() strips them', () => {
    bad('order  ', 'Invalid operator', 6, 'order');
    bad('order >\t\n', 'Invalid value (did you forget quotes)?', 8, 'order >');
    expect(passes(' order == 1 \n', ev({ order: 1 }))).toBe(true);
    expectParseError('foo \t', 'Invalid operator', 4, 'foo');
    expectParseError(' ! \r\n', 'No filter found', 2, ' !');
  });

  it('a trailing && or || is ignored, but not a trailing && after ||', () => {
    for (const expr of ['order == 1 &&', 'order == 1 ||', 'order == 1 && !', 'order == 1 ||  ']) {
      const f = compileTraceFilter(expr, schema);
      expect([f(ev({ order: 1 })), f(ev({ order: 2 }))]).toEqual([true, false]);
    }
    const f = compileTraceFilter('order == 1 && pfn == 2 ||', schema);
    expect([f(ev({ order: 1, pfn: 2 })), f(ev({ order: 1, pfn: 3 }))]).toEqual([true, false]);
    const g = compileTraceFilter('(order == 1 || pfn == 2) &&', schema);
    expect([g(ev({ pfn: 2 })), g(ev({ pfn: 3 }))]).toEqual([true, false]);
    bad('order == 1 || pfn == 2 &&', 'Error (a trailing && after ||)', 0);
    bad('order == 1 && pfn == 2 || order == 3 && !', 'Error (a trailing && after ||)', 0);
  });

  it('the parse without fields checks what does not depend on them', () => {
    expect(parseTraceFilter('foo == 1 && bar ~ "x"')?.kind).toBe('and');
    expect(parseTraceFilter('foo == "1" || bar == 2')?.kind).toBe('or');
    expectParseError('foo 1', 'Invalid operator', 5);
    expectParseError('foo == bar', 'Invalid value (did you forget quotes)?', 8);
    expectParseError('(foo == 1', "Too many '('", 0);
    expectParseError('foo == 1 bar', 'Too many terms in predicate expression', 9);
  });
});
