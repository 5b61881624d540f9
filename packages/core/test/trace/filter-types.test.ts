/**
 * Filters against the fields' C types (parse_pred(): kstrtoll() for a signed field,
 * kstrtoull() for an unsigned one, filter_pred_##type() comparing in the type), string
 * values that must be quoted, and `comm` as current->comm holds it.
 */
import { describe, expect, it } from 'vitest';
import { GFP } from '../../src/buddy/gfp.js';
import { createMachine } from '../../src/machine.js';
import { PROFILES } from '../../src/profile.js';
import { taskComm } from '../../src/trace/filter_pred.js';
import {
  compileTraceFilter,
  ftraceFilterFields,
  ftraceLine,
  traceRecorder,
} from '../../src/trace/index.js';
import { expectNothingEnabled, filterChecks, PAGE_ALLOC_SCHEMA } from './helpers.js';

/** mm_page_alloc's fields (6.x) and the task name, a bool, and a plain string. */
const { bad, passes } = filterChecks({ ...PAGE_ALLOC_SCHEMA, sync: 'bool', name: 'str' });

const profiles = Object.keys(PROFILES) as (keyof typeof PROFILES)[];

describe('numeric fields have the C type their format file declares', () => {
  it('an unsigned field reads its value with kstrtoull(): no minus sign', () => {
    bad('pfn > -1', 'Illegal integer value', 7);
    bad('order == -0', 'Illegal integer value', 10);
    bad('sync != -1', 'Illegal integer value', 9);
    bad('pfn >= -9223372036854775808', 'Illegal integer value', 8);
    // Its whole 64-bit range, past kstrtoll()'s.
    expect(passes('pfn == 18446744073709551615', { pfn: 2n ** 64n - 1n })).toBe(true);
    expect(passes('pfn > 9223372036854775808', { pfn: 1 })).toBe(false);
  });

  it('a signed field reads its value with kstrtoll(): -2^63 to 2^63 - 1', () => {
    expect(passes('migratetype > -1', { migratetype: 0 })).toBe(true);
    expect(passes('migratetype >= -2147483648', { migratetype: -5 })).toBe(true);
    expect(passes('migratetype != -0x10', { migratetype: -16 })).toBe(false);
    bad('migratetype == 9223372036854775808', 'Illegal integer value', 16);
    bad('migratetype < 0xffffffffffffffff', 'Illegal integer value', 15);
    bad('migratetype < -9223372036854775809', 'Illegal integer value', 15);
    bad('migratetype == --1', 'Illegal integer value', 16);
  });

  it('an unsigned field compares as unsigned: a failed allocation stores pfn -1UL', () => {
    const nullPage = { pfn: -1 };
    expect(passes('pfn == 0xffffffffffffffff', nullPage)).toBe(true);
    expect(passes('pfn == 18446744073709551615', nullPage)).toBe(true);
    expect(passes('pfn > 0x100000', nullPage)).toBe(true);
    expect(passes('pfn == 0', nullPage)).toBe(false);
    expect(passes('pfn & 0x8000000000000000', nullPage)).toBe(true);
    // An undeclared (num) field compares the value as it is.
    const num = compileTraceFilter('pfn > 0x100000', { pfn: 'num' });
    expect(num(nullPage)).toBe(false);
    expect(compileTraceFilter('pfn > -1', { pfn: 'num' })({ pfn: 0 })).toBe(true);
  });

  it('the literal is cast to the field type, as (type)pred->val is', () => {
    // unsigned int: only the low 32 bits of the literal count.
    expect(passes('order == 4294967296', { order: 0 })).toBe(true);
    expect(passes('order < 4294967297', { order: 0 })).toBe(true);
    expect(passes('order < 4294967297', { order: 1 })).toBe(false);
    expect(passes('order & 0x100000001', { order: 1 })).toBe(true);
    expect(passes('order & 0x100000002', { order: 1 })).toBe(false);
    // int: 0xffffffff is -1.
    expect(passes('migratetype == 4294967295', { migratetype: -1 })).toBe(true);
    expect(passes('migratetype < 4294967295', { migratetype: 0 })).toBe(false);
    // kstrtoll() takes -2^63, whose low 32 bits are 0.
    expect(passes('migratetype >= -9223372036854775808', { migratetype: -5 })).toBe(false);
    expect(passes('migratetype >= -9223372036854775808', { migratetype: 0 })).toBe(true);
    // unsigned long: all 64 bits.
    expect(passes('gfp_flags & 0x100000000', { gfp_flags: 2 ** 32 })).toBe(true);
    // bool stores 0 or 1 and compares as an unsigned char.
    expect(passes('sync == 1', { sync: true })).toBe(true);
    expect(passes('sync == 1', { sync: 2 })).toBe(true);
    expect(passes('sync == 257', { sync: true })).toBe(true);
    expect(passes('sync == 0', { sync: false })).toBe(true);
  });

  it('a quoted value for a numeric field is "Expecting numeric field"', () => {
    bad('order == "3"', 'Expecting numeric field', 10);
    bad("pfn != '0x10'", 'Expecting numeric field', 8);
    // The operator is checked first; the caret is past the opening quote, at the value.
    bad('order < "3"', 'Illegal operation for field type', 9);
  });

  it("the events' fields carry their release's types", () => {
    for (const p of profiles) {
      const fields = (name: string) => ftraceFilterFields(name, PROFILES[p]).fields;
      expect(fields('mm_page_alloc')).toMatchObject({
        pfn: 'u64',
        order: 'u32',
        migratetype: 's32',
      });
      // gfp_t in v4.8, unsigned long in 6.x.
      const gfp = p === 'v4.8' ? 'u32' : 'u64';
      expect(fields('mm_page_alloc').gfp_flags).toBe(gfp);
      expect(fields('mm_compaction_try_to_compact_pages').gfp_mask).toBe(gfp);
      expect(fields('mm_compaction_begin').sync).toBe('bool');
      expect(fields('mm_compaction_suitable')).toMatchObject({ nid: 's32', idx: 'u32' });
      expect(fields('mm_migrate_pages')).toMatchObject({ succeeded: 'u64', mode: 'u32' });
    }
  });

  it.each(profiles)('through traceRecorder — %s', (p) => {
    const m = createMachine({ memory: '16M', contents: false, profile: p });
    // As the event's own filter file reports it.
    expect(() => traceRecorder(m, { filter: { mm_page_alloc: 'pfn > -1' } })).toThrow(
      /^filter: Illegal integer value\n {2}pfn > -1\n {9}\^$/,
    );
    // As a subsystem filter it fits no event: the subsystem's error, then the first refusal.
    expect(() => traceRecorder(m, { filter: 'pfn > -1' })).toThrow(
      /^filter: Couldn't find or set field in one of a subsystem's events\n {2}pfn > -1\n {2}\^\n {2}\(first refused by mm_page_alloc: Illegal integer value, at byte 7\)$/,
    );
    expectNothingEnabled(m);
    const rec = traceRecorder(m, {
      events: ['mm_page_alloc'],
      filter: 'pfn == 0xffffffffffffffff',
    });
    for (const pfn of [0, 0x10, -1])
      m.trace.fire('mm_page_alloc', { pfn, order: 0, gfp_flags: 0, migratetype: 0 });
    // Only the failed allocation, whose NULL page prints as pfn 0.
    expect(rec.lines).toHaveLength(1);
    expect(rec.lines[0]).toMatch(/ pfn=(0x)?0 /);
  });
});

describe('a string value must be quoted (parse_pred() since the 4.17 rewrite)', () => {
  it('a bare word is "Invalid value (did you forget quotes)?"', () => {
    bad('comm == mops', 'Invalid value (did you forget quotes)?', 9);
    bad('comm ~ kcomp*', 'Invalid value (did you forget quotes)?', 8);
    bad('name != x', 'Invalid value (did you forget quotes)?', 9);
    bad('order == 1 || comm == kcompactd0', 'Invalid value (did you forget quotes)?', 23);
  });

  it('a value that starts like a number is "Expecting string field"', () => {
    bad('comm == 0', 'Expecting string field', 9);
    bad('name == -x', 'Expecting string field', 9);
    bad('comm ~ 1*', 'Expecting string field', 8);
  });

  it('quoted, with " or \', it is a string', () => {
    expect(passes('comm == "mops"', { comm: 'mops' })).toBe(true);
    expect(passes("name ~ 'kcomp*'", { name: 'kcompactd0' })).toBe(true);
  });

  // v4.8's own parser took `comm == kcompactd0` and `order == "3"`; the 4.17+ grammar is
  // followed in every profile.
  it.each(profiles)('through traceRecorder — %s', (p) => {
    const m = createMachine({ memory: '16M', contents: false, profile: p });
    const events = ['mm_page_alloc'];
    expect(() => traceRecorder(m, { events, filter: { mm_page_alloc: 'comm == k0' } })).toThrow(
      /^filter: Invalid value \(did you forget quotes\)\?\n/,
    );
    expect(() => traceRecorder(m, { events, filter: { mm_page_alloc: 'order == "3"' } })).toThrow(
      /^filter: Expecting numeric field\n/,
    );
    // A subsystem filter: v4.8 parses it once and reports a syntax error as such; 4.17 on
    // parses it for each event and reports the subsystem's error.
    expect(() => traceRecorder(m, { filter: 'comm == k0' })).toThrow(
      p === 'v4.8'
        ? /^filter: Invalid value \(did you forget quotes\)\?\n/
        : /^filter: Couldn't find or set field in one of a subsystem's events\n(.*\n){2} {2}\(it does not parse: Invalid value \(did you forget quotes\)\?, at byte 9\)$/,
    );
    expect(() => traceRecorder(m, { events, filter: 'order == "3"' })).toThrow(
      /^filter: Couldn't find or set field in one of a subsystem's events\n(.*\n){2} {2}\(first refused by mm_page_alloc: Expecting numeric field, at byte 10\)$/,
    );
    expectNothingEnabled(m);
  });
});

describe('comm is the name current->comm holds: at most 15 bytes', () => {
  const long = 'a-very-long-task-name';

  it('== and ~ see the first TASK_COMM_LEN - 1 characters', () => {
    expect(passes(`comm == "${long}"`, { comm: long })).toBe(false);
    expect(passes('comm == "a-very-long-tas"', { comm: long })).toBe(true);
    expect(passes('comm != "a-very-long-tas"', { comm: long })).toBe(false);
    expect(passes('comm ~ "*-name"', { comm: long })).toBe(false);
    expect(passes('comm ~ "*-tas"', { comm: long })).toBe(true);
    expect(passes('comm ~ "a-very-long-???"', { comm: long })).toBe(true);
    expect(passes('comm ~ "!a-very-long-???"', { comm: long })).toBe(false);
    // A plain string field is compared whole.
    expect(passes(`name == "${long}"`, { name: long })).toBe(true);
  });

  it('the cut is at 15 bytes of UTF-8; a character cut in two reads as U+FFFD', () => {
    const e = 'é'.repeat(9); // 18 bytes: 7 characters, and one byte of the eighth
    expect(taskComm(e)).toBe(`${'é'.repeat(7)}\uFFFD`);
    expect(passes(`comm ~ "${'é'.repeat(7)}?"`, { comm: e })).toBe(true);
    expect(passes(`comm == "${'é'.repeat(7)}"`, { comm: e })).toBe(false);
    expect(taskComm('ééééééé')).toBe('ééééééé'); // 14 bytes: whole
    expect(taskComm('kcompactd0')).toBe('kcompactd0');
  });

  it('the trace line shows the same name the filter tests', () => {
    for (const name of [long, 'kcompactd0', 'exactly-15-char', 'exactly-16-chars']) {
      const line = ftraceLine(
        'mm_page_free',
        { pfn: 0, order: 0 },
        {
          comm: name,
          pid: 7,
          cpu: 0,
          jiffies: 0,
        },
      );
      expect(line.startsWith(`${taskComm(name).padStart(16)}-7 `)).toBe(true);
      expect(passes(`comm == "${line.slice(0, 16).trim()}"`, { comm: name })).toBe(true);
    }
  });
});

describe('the common fields through traceRecorder', () => {
  /** The lines of mm_page_alloc events that `filter` keeps from a task named `name`. */
  function record(name: string, filter: string): string[] {
    const m = createMachine({ memory: '16M', contents: false, profile: 'v6.3' });
    const rec = traceRecorder(m, { events: ['mm_page_alloc'], filter });
    m.sched.spawn(name, function* () {
      m.allocPages(GFP.KERNEL, 0);
      yield* [];
    });
    m.sched.runAll();
    return rec.lines;
  }

  it('COMM and comm are the 15 bytes current->comm holds', () => {
    const long = 'a-very-long-task-name';
    expect(record(long, `comm == "${long}"`)).toEqual([]);
    expect(record(long, 'comm == "a-very-long-tas"')).toHaveLength(1);
    expect(record(long, 'COMM == "a-very-long-tas"')).toHaveLength(1);
  });

  it('common_pid, CPU and cpu are signed ints; common_flags and common_preempt_count unsigned chars', () => {
    expect(record('t', 'common_pid > -1')).toHaveLength(1);
    expect(record('t', 'cpu >= -1 && CPU < 2')).toHaveLength(1);
    expect(() => record('t', 'common_flags > -1')).toThrow(/Illegal integer value/);
    expect(() => record('t', 'common_preempt_count != -1')).toThrow(/Illegal integer value/);
    // u8: the value is cast to the field's type before comparing, as filter_pred_8 does.
    expect(record('t', 'common_preempt_count == 256')).toHaveLength(1);
  });
});
