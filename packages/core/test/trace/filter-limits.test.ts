/**
 * Filter inputs at the kernel's limits: integers past 64 bits, odd glob classes, and
 * expressions too long or too deeply nested for a recursive parser.
 */
import { describe, expect, it } from 'vitest';
import { createMachine } from '../../src/machine.js';
import { filterPreds } from '../../src/trace/filter.js';
import {
  compileTraceFilter,
  type FilterNode,
  type FilterSchema,
  filterFields,
  globToRegExp,
  parseTraceFilter,
  TraceFilterError,
  traceRecorder,
} from '../../src/trace/index.js';
import { expectNothingEnabled, filterChecks } from './helpers.js';

/** Fields of undeclared C type (`num`), which take any 64-bit literal. */
const schema: FilterSchema = {
  pfn: 'num',
  order: 'num',
  gfp_flags: 'num',
  nr_migrated: 'num',
  comm: 'str',
};

const { bad, passes } = filterChecks(schema);

/** Whether `comm ~ "<glob>"` keeps an event whose comm is `comm`. */
const globs = (glob: string, comm: string): boolean =>
  compileTraceFilter(`comm ~ "${glob}"`, schema)({ comm });

/**
 * An independent reading of lib/glob.c's glob_match(), by plain recursion (fine for the
 * short patterns here): the oracle for the implementation's non-recursive matcher and for
 * globToRegExp.
 */
function globOracle(p: string, s: string, pi = 0, si = 0): boolean {
  if (pi === p.length) return si === s.length;
  const c = p[pi];
  const literal = (ch: string, next: number) =>
    si < s.length && s[si] === ch && globOracle(p, s, next, si + 1);
  if (c === '*') {
    for (let k = si; k <= s.length; k++) if (globOracle(p, s, pi + 1, k)) return true;
    return false;
  }
  if (c === '?') return si < s.length && globOracle(p, s, pi + 1, si + 1);
  if (c === '\\') return pi + 1 === p.length ? si === s.length : literal(p[pi + 1], pi + 2);
  if (c !== '[') return literal(c, pi + 1);
  const inverted = p[pi + 1] === '!';
  let j = pi + 1 + (inverted ? 1 : 0);
  let hit = false;
  for (let first = true; ; first = false) {
    if (j >= p.length) return literal('[', pi + 1); // no closing ']'
    if (!first && p[j] === ']') break;
    const lo = p[j];
    let hi = lo;
    if (p[j + 1] === '-' && p[j + 2] !== ']') {
      if (j + 2 >= p.length) return literal('[', pi + 1);
      hi = p[j + 2];
      j += 3;
    } else j += 1;
    if (si < s.length && lo <= s[si] && s[si] <= hi) hit = true;
  }
  return si < s.length && hit !== inverted && globOracle(p, s, j + 1, si + 1);
}

describe('integer values past 64 bits (kstrtoll / kstrtoull)', () => {
  it('a number of 24 characters or more is an Operand too long, the caret one past its end (num_buf[24])', () => {
    bad(`nr_migrated & ${'9'.repeat(400)}`, 'Operand too long', 415);
    bad(`nr_migrated & 0x${'f'.repeat(300)}`, 'Operand too long', 317);
    bad(`pfn == 0x${'0'.repeat(40)}1f`, 'Operand too long', 52);
    bad(`pfn == ${'1'.repeat(23)}`, 'Illegal integer value', 8); // 23 characters: read, too large
    bad(`comm == "${'a'.repeat(256)}"`, 'Operand too long', 266);
    expect(
      compileTraceFilter(`comm == "${'a'.repeat(255)}"`, schema)({ comm: 'a'.repeat(255) }),
    ).toBe(true);
  });

  it('a number starts with a digit or -: +5 is an Invalid value, as in parse_pred()', () => {
    bad('pfn == +5', 'Invalid value (did you forget quotes)?', 8);
    bad('pfn == +0x10', 'Invalid value (did you forget quotes)?', 8);
  });

  it('the length is checked where parse_pred() checks it: after the operator and the first character', () => {
    bad(`comm > "${'a'.repeat(300)}"`, 'Illegal operation for field type', 8);
    bad(`pfn ~ ${'1'.repeat(30)}`, 'Illegal operation for field type', 7);
    bad(`pfn == ${'a'.repeat(30)}`, 'Invalid value (did you forget quotes)?', 8);
    bad(`pfn == +${'1'.repeat(30)}`, 'Invalid value (did you forget quotes)?', 8);
    // A string's length is counted in bytes: 200 two-byte characters are 400, and the caret
    // is one byte past the closing quote, at byte 9 + 400 + 1.
    bad(`comm == "${'é'.repeat(200)}"`, 'Operand too long', 410);
  });

  it('a literal no 64-bit parser takes is an Illegal integer value, the caret past the first character of the literal', () => {
    // One past each end: 2^64 (kstrtoull's -ERANGE) and -2^63 - 1 (kstrtoll's).
    bad('pfn < 18446744073709551616', 'Illegal integer value', 7);
    bad('pfn > 0x10000000000000000', 'Illegal integer value', 7);
    bad('order == 02000000000000000000000', 'Illegal integer value', 10);
    bad('order >= -9223372036854775809', 'Illegal integer value', 10);
    bad('order == -0x8000000000000001', 'Illegal integer value', 10);
    bad('pfn==1 && (order != 99999999999999999999)', 'Illegal integer value', 21);
  });

  it('the same refusal through traceRecorder, leaving nothing subscribed', () => {
    const m = createMachine({ memory: '64M', contents: false });
    const filter = `nr_migrated & ${'9'.repeat(20)}`;
    expect(() => traceRecorder(m, { filter: { mm_compaction_migratepages: filter } })).toThrow(
      /^filter: Illegal integer value\n/,
    );
    // As a subsystem filter, which fits no event.
    expect(() => traceRecorder(m, { filter })).toThrow(TraceFilterError);
    expect(() => traceRecorder(m, { filter })).toThrow(
      /^filter: Couldn't find or set field in one of a subsystem's events\n/,
    );
    expectNothingEnabled(m);
  });

  it('the 64-bit edges are taken and compared exactly', () => {
    expect(passes('gfp_flags & 0xffffffffffffffff', { gfp_flags: 0x40 })).toBe(true);
    expect(passes('gfp_flags & 0xffffffffffffffff', { gfp_flags: 0 })).toBe(false);
    expect(passes('gfp_flags & 0x8000000000000000', { gfp_flags: 2n ** 63n })).toBe(true);
    expect(passes('pfn <= 18446744073709551615', { pfn: 1 })).toBe(true);
    expect(passes('pfn == 18446744073709551615', { pfn: 2n ** 64n - 1n })).toBe(true);
    expect(passes('pfn >= -9223372036854775808', { pfn: -(2 ** 63) })).toBe(true);
    expect(passes('pfn < -0x8000000000000000', { pfn: -(2 ** 63) })).toBe(false);
    // 2^53 + 1 is not rounded to 2^53.
    expect(passes('pfn == 9007199254740993', { pfn: 2 ** 53 })).toBe(false);
    expect(passes('pfn < 9007199254740993', { pfn: 2 ** 53 })).toBe(true);
    expect(passes('pfn != 9007199254740993', { pfn: 2 ** 53 })).toBe(true);
    // Leading zeros do not count against the range (within the 23 characters).
    expect(passes(`pfn == 0x${'0'.repeat(19)}1f`, { pfn: 31 })).toBe(true);
    // A value that is no number matches no comparison but !=.
    expect(passes('pfn < 1', { pfn: 'x' })).toBe(false);
    expect(passes('pfn != 1', { pfn: undefined })).toBe(true);
  });
});

describe('glob classes as glob_match() reads them', () => {
  it('a reversed range matches nothing; under ! it excludes nothing', () => {
    for (const c of ['a', 'm', 'z', '-', '']) {
      expect(globs('[z-a]', c)).toBe(false);
      expect(globs('[b-a]*', `${c}x`)).toBe(false);
    }
    expect(globs('[!z-a]', 'q')).toBe(true);
    expect(globs('[!z-a]', '-')).toBe(true);
    expect(globs('[!z-a]', '')).toBe(false);
    expect(globs('[!z-a]', 'ab')).toBe(false);
    // Only the reversed span drops out: [z-ab] is [b].
    expect(globs('[z-ab]', 'b')).toBe(true);
    expect(globs('[z-ab]', 'a')).toBe(false);
    // No escapes in a class: [a-\] is the reversed range a..'\', then a literal "x]".
    for (const c of ['x]', 'ax]', '\\x]', ']', 'x', 'a']) expect(globs('[a-\\]x]', c)).toBe(false);
    for (const g of ['[z-a]', '[b-a]*', '[!z-a]', '[a-\\]x]'])
      expect(() => globToRegExp(g)).not.toThrow();
    expect(globToRegExp('[!z-a]').test('\n')).toBe(true);
  });

  it("the class corner cases of lib/glob.c's self-test, and \\ outside classes", () => {
    const cases: [string, string, boolean][] = [
      ['[a-c-e-g]', '-', true],
      ['[a-c-e-g]', 'd', false],
      ['[a-c-e-g]', 'f', true],
      ['[]a-ceg-ik[]', 'a', true],
      ['[]a-ceg-ik[]', ']', true],
      ['[]a-ceg-ik[]', '[', true],
      ['[]a-ceg-ik[]', 'h', true],
      ['[]a-ceg-ik[]', 'f', false],
      ['[!]a-ceg-ik[]', 'h', false],
      ['[!]a-ceg-ik[]', ']', false],
      ['[!]a-ceg-ik[]', 'f', true],
      ['[a-]', '-', true],
      ['[!]', '[!]', true], // ']' is the first span, then no closing ']': a literal '['
      ['[!]', 'x', false],
      ['[ab', '[ab', true],
      ['[ab', 'a', false],
      ['a\\*b', 'a*b', true],
      ['a\\*b', 'axb', false],
      ['\\[a]', '[a]', true],
      ['x\\', 'x', true],
    ];
    for (const [glob, comm, want] of cases) {
      expect([glob, comm, globs(glob, comm)]).toEqual([glob, comm, want]);
      expect([glob, comm, globToRegExp(glob).test(comm)]).toEqual([glob, comm, want]);
    }
    // Many stars against a long comm: glob_match()'s single backtrack stays quadratic.
    expect(globs('*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(2000))).toBe(false);
  });

  it('every short glob over the special characters gives a valid RegExp, and both matchers agree with glob_match()', () => {
    const alphabet = ['[', ']', '!', '-', '\\', '*', '?', 'a', 'b', '^', '$', '.', '(', '|', '{'];
    const subjects = ['', 'a', 'b', ']', '[', '-', '!', '\\', '^', 'ab', 'a]', '[a', 'ba-'];
    let patterns = [''];
    for (let len = 1; len <= 3; len++) {
      patterns = patterns.flatMap((p) => (p.length === len - 1 ? alphabet.map((c) => p + c) : []));
      for (const glob of patterns) {
        const re = globToRegExp(glob);
        const f = compileTraceFilter(`comm ~ "${glob}"`, schema);
        for (const comm of subjects) {
          const want = globOracle(glob, comm);
          // In a filter, a leading ! inverts the rest (filter_parse_regex()).
          const wantFilter = glob[0] === '!' ? !globOracle(glob.slice(1), comm) : want;
          if (re.test(comm) !== want || f({ comm }) !== wantFilter)
            throw new Error(
              `glob ${JSON.stringify(glob)} vs ${JSON.stringify(comm)}: want ${want}`,
            );
        }
      }
    }
  });
});

describe('expression size (the filter file takes less than PAGE_SIZE bytes)', () => {
  const tooLong = (bytes: number) =>
    `Filter too long: ${bytes} bytes, but a filter file takes at most 4095 (PAGE_SIZE - 1)`;

  it('refuses 4096 bytes or more, naming the limit, the caret past the last byte that fits', () => {
    const parens = `${'('.repeat(10_000)}order == 1${')'.repeat(10_000)}`;
    const nots = `${'!'.repeat(10_000)}order == 1`;
    const ors = Array(6000).fill('order == 1').join(' || ');
    const ands = Array(6000).fill('order == 1').join(' && ');
    for (const expr of [parens, nots, ors, ands]) {
      bad(expr, tooLong(expr.length), 4095);
      expect(() => parseTraceFilter(expr)).toThrow(TraceFilterError);
    }
    const fits = `order == 1${' '.repeat(4085)}`;
    expect(fits.length).toBe(4095);
    expect(passes(fits, { order: 1 })).toBe(true);
    bad(`${fits} `, tooLong(4096), 4095);
    // Counted in UTF-8 bytes, as written to the file: é is two. The caret is under the
    // first byte that does not fit.
    const utf8 = `comm == "é${'a'.repeat(4084)}"`;
    expect(utf8.length).toBe(4095);
    bad(utf8, tooLong(4096), 4095);
    // A character cut by the limit does not fit: the caret is under its first byte.
    const cut = `comm == "${'a'.repeat(4085)}é"`;
    bad(cut, tooLong(4097), 4094);
    // Even a filter that would clear: the write itself is refused.
    bad(`0${' '.repeat(4095)}`, tooLong(4096), 4095);
  });

  it('the same refusal through traceRecorder', () => {
    const m = createMachine({ memory: '64M', contents: false });
    const filter = `${'('.repeat(10_000)}order == 1${')'.repeat(10_000)}`;
    expect(() => traceRecorder(m, { filter })).toThrow(/^filter: Filter too long: 20010 bytes/);
    expectNothingEnabled(m);
  });

  it('whatever fits parses, compiles and runs, however deep', () => {
    const deep = `${'('.repeat(2042)}order == 1${')'.repeat(2042)}`;
    const f = compileTraceFilter(deep, schema);
    expect([f({ order: 1 }), f({ order: 2 })]).toEqual([true, false]);

    const odd = compileTraceFilter(`${'!'.repeat(4085)}order == 1`, schema);
    expect([odd({ order: 1 }), odd({ order: 2 })]).toEqual([false, true]);

    const k = 1361; // `!(` nested k deep: an odd number of nots
    const mixed = compileTraceFilter(`${'!('.repeat(k)}order == 1${')'.repeat(k)}`, schema);
    expect([mixed({ order: 1 }), mixed({ order: 2 })]).toEqual([false, true]);

    const fits = (expr: string) => {
      expect(expr.length).toBeLessThan(4096);
      return compileTraceFilter(expr, schema);
    };
    const terms = (n: number) => Array.from({ length: n }, (_, i) => `pfn==${i}`);
    const or = fits(terms(400).join('||'));
    expect([or({ pfn: 0 }), or({ pfn: 399 }), or({ pfn: 400 })]).toEqual([true, true, false]);
    const and = fits(
      terms(300)
        .map((t) => `!${t}`)
        .join('&&'),
    );
    expect([and({ pfn: 300 }), and({ pfn: 299 }), and({ pfn: 0 })]).toEqual([true, false, false]);
    // Mixed precedence in a long chain: a && b || c && d || …
    const chain = fits(
      Array.from({ length: 150 }, (_, i) => `pfn==${i} && order==${i % 2}`).join(' || '),
    );
    expect([chain({ pfn: 149, order: 1 }), chain({ pfn: 149, order: 0 })]).toEqual([true, false]);
  });

  it('the first bad predicate of a long chain is the one reported', () => {
    const expr = `${Array(200).fill('order == 1').join(' && ')} && nosuch == 1 && bad == 2`;
    bad(expr, 'Field not found', expr.indexOf('nosuch') + 'nosuch'.length + 1);
  });

  it('filterPreds and filterFields walk any depth of tree', () => {
    const pred = (field: string): FilterNode => ({
      kind: 'pred',
      field,
      op: '==',
      value: '1',
      valueKind: 'number',
      at: { field: 0, op: 0, value: 0 },
    });
    let tree = pred('pfn');
    for (let i = 0; i < 100_000; i++)
      tree = i % 2 ? { kind: 'not', arg: tree } : { kind: 'or', left: tree, right: pred('order') };
    expect(filterFields(tree)).toEqual(['pfn', 'order']);
    expect(filterPreds(tree)).toHaveLength(50_001);
  });
});
