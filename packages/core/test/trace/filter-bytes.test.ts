/**
 * Filters read as C strings of bytes: `~` and `==` compare the literal's UTF-8 bytes with
 * the value's (filter_parse_regex(), glob_match()), and the expression ends at its first NUL
 * (event_filter_write() hands apply_event_filter() a C string).
 */
import { describe, expect, it } from 'vitest';
import { GFP } from '../../src/buddy/gfp.js';
import { createMachine } from '../../src/machine.js';
import { readFilterText } from '../../src/trace/filter.js';
import { taskCommBytes } from '../../src/trace/filter_pred.js';
import { parseTraceFilter, traceRecorder } from '../../src/trace/index.js';
import { expectParseError, filterChecks, PAGE_ALLOC_SCHEMA } from './helpers.js';

const { bad, passes } = filterChecks({ ...PAGE_ALLOC_SCHEMA, name: 'str' });

describe('~ matches bytes, as glob_match() does', () => {
  it('? is one byte: é (2 bytes) needs ??', () => {
    expect(passes('comm ~ "?"', { comm: 'é' })).toBe(false);
    expect(passes('comm ~ "??"', { comm: 'é' })).toBe(true);
    expect(passes('name ~ "k??x"', { name: 'kéx' })).toBe(true);
    expect(passes('name ~ "k?x"', { name: 'kéx' })).toBe(false);
    // A 3-byte and a 4-byte character.
    expect(passes('name ~ "???"', { name: '€' })).toBe(true);
    expect(passes('name ~ "????"', { name: '😀' })).toBe(true);
    expect(passes('name ~ "?"', { name: '😀' })).toBe(false);
  });

  it('a class holds bytes: [é] is the class of bytes 0xC3 and 0xA9', () => {
    expect(passes('name ~ "[é]"', { name: 'é' })).toBe(false);
    expect(passes('name ~ "[é][é]"', { name: 'é' })).toBe(true);
    expect(passes('name ~ "[é]"', { name: '\u00a9' })).toBe(false); // ©: 0xC2 0xA9
    expect(passes('name ~ "[!a]?"', { name: 'é' })).toBe(true);
    // A byte range: [\x80-\xff] is any byte of a multi-byte character.
    expect(passes('name ~ "x[!a-z]*"', { name: 'xé' })).toBe(true);
  });

  it('the fast paths (FRONT, MIDDLE, END, FULL) and the glob agree on bytes', () => {
    const name = 'kcompactd-é€';
    for (const [glob, want] of [
      ['kcomp*', true],
      ['*é€', true],
      ['*d-é*', true],
      ['kcompactd-é€', true],
      ['kcompactd-?????', true], // é and € are 5 bytes
      ['kcompactd-??', false],
      ['*d-?*', true],
      ['!kcomp*', false],
      ['*', true],
      ['**', true],
    ] as const) {
      expect([glob, passes(`name ~ "${glob}"`, { name })]).toEqual([glob, want]);
    }
  });

  it('comm is current->comm bytes: a character cut at byte 15 keeps its first byte', () => {
    const e = 'é'.repeat(9); // 18 bytes; comm holds 7 × é and 0xC3
    expect(taskCommBytes(e).length).toBe(15);
    expect(passes(`comm ~ "${'?'.repeat(15)}"`, { comm: e })).toBe(true);
    expect(passes(`comm ~ "${'?'.repeat(16)}"`, { comm: e })).toBe(false);
    expect(passes(`comm ~ "${'é'.repeat(7)}?"`, { comm: e })).toBe(true);
    expect(passes(`comm ~ "*${'é'.repeat(7)}"`, { comm: e })).toBe(false);
  });

  it('a value is a C string: it ends at its first NUL', () => {
    expect(passes('name == "ab"', { name: 'ab\0cd' })).toBe(true);
    expect(passes('name ~ "*cd"', { name: 'ab\0cd' })).toBe(false);
    expect(passes('name ~ "a?"', { name: 'ab\0cd' })).toBe(true);
    expect(passes('comm == "é"', { comm: 'é\0x' })).toBe(true);
    expect(taskCommBytes('kcompactd0')).toBe('kcompactd0');
  });

  it('through traceRecorder, on a task with a non-ASCII name', () => {
    const lines = (filter: string) => {
      const m = createMachine({ memory: '16M', contents: false, profile: 'v6.3' });
      const rec = traceRecorder(m, { events: ['mm_page_alloc'], filter });
      m.sched.spawn('kworker/é', function* () {
        m.allocPages(GFP.KERNEL, 0);
        yield* [];
      });
      m.sched.runAll();
      return rec.lines.length;
    };
    expect(lines('comm ~ "kworker/??"')).toBe(1);
    expect(lines('comm ~ "kworker/?"')).toBe(0);
  });
});

describe('the expression ends at its first NUL', () => {
  it('what follows a NUL is not read', () => {
    expect(passes('comm == "a"\0 && order > 100', { comm: 'a', order: 0 })).toBe(true);
    expect(passes('order == 0\0garbage ((("', { order: 0 })).toBe(true);
    expect(parseTraceFilter('order > 1\0 ||')).toEqual(parseTraceFilter('order > 1'));
    expect(readFilterText('0\0order > 1')).toEqual({ clear: true });
  });

  it('errors show the part before it, with the same caret', () => {
    bad('nope == 1\0order == 2', 'Field not found', 5, 'nope == 1');
    bad('comm ~ "é\0"', 'Missing matching quote', 7, 'comm ~ "é');
    expectParseError('order == 1 && (\0)', "Too many '('", 14, 'order == 1 && (');
    expectParseError(
      '\0order == 1',
      'Error (an empty filter: no predicate; 0 clears a filter)',
      0,
      '',
    );
  });

  it('the length check still counts every byte written', () => {
    expectParseError(
      `order == 1\0${'x'.repeat(4090)}`,
      'Filter too long: 4101 bytes, but a filter file takes at most 4095 (PAGE_SIZE - 1)',
      4095,
      `order == 1\0${'x'.repeat(4090)}`,
    );
  });
});
