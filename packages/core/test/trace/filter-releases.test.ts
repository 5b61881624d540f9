/**
 * What the releases' filter parsers do differently (the profile's `traceFilter`): the empty
 * filter, the `.ustring`, `.function` and `CPUS{…}` forms, and subsystem filters; and byte
 * offsets, which every release records.
 */
import { describe, expect, it } from 'vitest';
import { GFP } from '../../src/buddy/gfp.js';
import { createMachine } from '../../src/machine.js';
import { PROFILES, type ProfileName } from '../../src/profile.js';
import {
  compileTraceFilter,
  type FilterSchema,
  parseTraceFilter,
  TraceFilterError,
  traceRecorder,
} from '../../src/trace/index.js';
import {
  expectNothingEnabled,
  expectParseError,
  filterChecks,
  PAGE_ALLOC_SCHEMA,
} from './helpers.js';

const profiles = Object.keys(PROFILES) as ProfileName[];

/** mm_page_alloc's fields, the CPU pseudo-fields, and a few more types. */
const schema: FilterSchema = {
  ...PAGE_ALLOC_SCHEMA,
  cpu: 'cpu',
  CPU: 'cpu',
  nid: 's32',
  sync: 'bool',
  name: 'str',
};

const BAD_SUBSYS = "Couldn't find or set field in one of a subsystem's events";

/** The error `run` throws (a TraceFilterError). */
function thrown(run: () => unknown): TraceFilterError {
  try {
    run();
  } catch (e) {
    expect(e).toBeInstanceOf(TraceFilterError);
    return e as TraceFilterError;
  }
  throw new Error('nothing was thrown');
}

describe('an empty filter: only 0 clears one (apply_event_filter())', () => {
  it.each(profiles)('%s: refused as the release refuses it, at offset 0', (p) => {
    const profile = PROFILES[p];
    const { bad } = filterChecks(schema, profile);
    // v4.8: check_preds() finds nothing to check; 4.17 on: process_preds() returns -EINVAL
    // with no parse error of its own, which error_log shows as "Error".
    const reason =
      p === 'v4.8'
        ? 'Meaningless filter expression'
        : 'Error (an empty filter: no predicate; 0 clears a filter)';
    for (const expr of ['', ' ', '\t\n', ' \r\n\v\f']) {
      bad(expr, reason, 0, '');
      expectParseError(expr, reason, 0, '', profile);
    }
    // As an event's filter file through the recorder.
    const m = createMachine({ memory: '16M', contents: false, profile: p });
    const events = ['mm_page_alloc'];
    const err = thrown(() => traceRecorder(m, { events, filter: { mm_page_alloc: '' } }));
    expect([err.reason, err.position, err.code]).toEqual([reason, 0, 'E_USAGE']);
    expectNothingEnabled(m);
  });

  it.each(profiles)('%s: 0 between spaces still clears: every event is kept', (p) => {
    const profile = PROFILES[p];
    for (const expr of ['0', ' 0 ', '\t0\n']) {
      expect(parseTraceFilter(expr, profile)).toBeUndefined();
      expect(compileTraceFilter(expr, schema, profile)({ order: 5 })).toBe(true);
    }
    const m = createMachine({ memory: '16M', contents: false, profile: p });
    const one = traceRecorder(m, { events: ['mm_page_alloc'], filter: { mm_page_alloc: ' 0\n' } });
    const all = traceRecorder(m, { filter: '0' });
    m.allocPages(GFP.KERNEL, 0);
    expect(one.lines).toHaveLength(1);
    // Every kmem event of the allocation: the block taken under the zone lock, then the page.
    const names = all.lines.map((l) => /: (\w+): /.exec(l)?.[1]);
    expect(names).toEqual(['mm_page_alloc_zone_locked', 'mm_page_alloc']);
  });
});

describe('offsets and carets count bytes, as the kernel reads the UTF-8 written', () => {
  it.each(profiles)('%s: a caret after non-ASCII text stands at its byte offset', (p) => {
    const { bad } = filterChecks(schema, PROFILES[p]);
    // 'é' is two bytes: `nosuch` starts at byte 16 (character 15) and the caret is after it.
    bad('comm == "é" && nosuch == 1', 'Field not found', 23);
    bad('comm == "éé" || order == 1 2', 'Too many terms in predicate expression', 29);
    bad('comm == "é" || comm == "x', 'Missing matching quote', 24);
    bad('comm == "é" || == 1', 'Error (no field name at offset 16)', 0);
    expectParseError('comm == "é" || pfn 1', 'Invalid operator', 21, undefined, PROFILES[p]);
  });

  it.each(profiles)("%s: the bytes are read with the kernel's Latin-1 ctype", (p) => {
    const { bad, passes } = filterChecks(schema, PROFILES[p]);
    // ñ is C3 B1: isalnum(0xC3) (Latin-1 Ã) but not isalnum(0xB1) (±), so the field name is
    // the one byte C3, which no event has.
    bad('order == 1 && ñame == 1', 'Field not found', 16);
    expectParseError('order == 1 && ñame == 1', 'Invalid operator', 16, undefined, PROFILES[p]);
    // A no-break space is C2 A0: C2 is a letter (Â), so it ends the field name `order\xC2`.
    bad('order\u00a0== 1', 'Field not found', 7);
    // à is C3 A0, and isspace(0xA0): strstrip() cuts the A0 off the end, leaving C3.
    bad('order == à', 'Invalid value (did you forget quotes)?', 10, 'order == \uFFFD');
    // Strings keep their text: comparisons are unchanged.
    expect(passes('comm == "ñu" && order == 1', { comm: 'ñu', order: 1 })).toBe(true);
    expect(passes('comm ~ "*ü"', { comm: 'grüßü' })).toBe(true);
  });

  it.each(profiles)('%s: subsystem and recorder errors carry byte offsets too', (p) => {
    const m = createMachine({ memory: '16M', contents: false, profile: p });
    const err = thrown(() =>
      traceRecorder(m, {
        events: ['mm_page_free'],
        filter: { mm_page_free: 'pfn == 1 || ü == 1' },
      }),
    );
    // ü is C3 BC: the field name is the byte C3, ending at byte 13.
    expect([err.reason, err.position]).toEqual(['Field not found', 14]);
    const sub = thrown(() => traceRecorder(m, { filter: 'comm == "é" && nosuch == 1' }));
    expect(sub.message.split('\n').slice(2)).toEqual([
      '  ^',
      '  (first refused by mm_page_alloc: Field not found, at byte 23)',
    ]);
  });
});

describe('.ustring: a field read from user memory (5.17 on)', () => {
  it.each(profiles)('%s', (p) => {
    const profile = PROFILES[p];
    const { bad, passes } = filterChecks(schema, profile);
    if (!profile.traceFilter.ustring) {
      // v4.8: the `.` is where an operator is due.
      bad('order.ustring == 1', 'Invalid operator', 6);
      bad('comm.ustring ~ "k*"', 'Invalid operator', 5);
      return;
    }
    // It only changes how a `char *` field is read; mops has none, so it changes nothing.
    expect(passes('order.ustring == 1', { order: 1 })).toBe(true);
    expect(passes('order.ustring == 1', { order: 2 })).toBe(false);
    expect(passes('comm.ustring ~ "kcomp*"', { comm: 'kcompactd0' })).toBe(true);
    expect(passes('name.ustring != "x"', { name: 'y' })).toBe(true);
    bad('nosuch.ustring == 1', 'Field not found', 7);
    bad('order.ustring == "x"', 'Expecting numeric field', 18);
    expect(parseTraceFilter('foo.ustring == 1', profile)?.kind).toBe('pred');
  });
});

describe('.function: a field holding a kernel address, against a function (6.3 on)', () => {
  it.each(profiles)('%s', (p) => {
    const profile = PROFILES[p];
    const { bad } = filterChecks(schema, profile);
    if (!profile.traceFilter.functionSuffix) {
      bad('pfn.function == kfree', 'Invalid operator', 4);
      expectParseError('pfn.function == kfree', 'Invalid operator', 4, undefined, profile);
      return;
    }
    // mops has no kernel symbols: a name or an address that passes the checks is not found,
    // the caret past the name or number.
    bad('pfn.function == kfree', 'Function not found', 22);
    bad('pfn.function != 0xffffffff81000000', 'Function not found', 35);
    bad('gfp_flags.function == compact_zone && order > 1', 'Function not found', 35);
    bad('(pfn.function == kfree)', 'Function not found', 24);
    expectParseError('pfn.function == kfree', 'Function not found', 22, undefined, profile);
    // Checked first: a long-sized field (8 bytes), then == or !=, then the value.
    bad('order.function == kfree', 'Illegal operation for field type', 19);
    bad('comm.function == kfree', 'Illegal operation for field type', 18);
    bad('cpu.function == 1', 'Illegal operation for field type', 17);
    bad('pfn.function > kfree', 'Invalid operator', 16);
    bad('pfn.function == 0xzz', 'Invalid value (did you forget quotes)?', 21);
    bad(`pfn.function == 0x${'0'.repeat(30)}`, 'Operand too long', 49);
    bad('nosuch.function == kfree', 'Field not found', 7);
  });
});

describe('CPUS{cpulist} (6.6 on)', () => {
  it.each(profiles.filter((p) => !PROFILES[p].traceFilter.cpus))('%s: CPUS is no value', (p) => {
    const profile = PROFILES[p];
    const { bad } = filterChecks(schema, profile);
    bad('cpu & CPUS{0-1}', 'Invalid value (did you forget quotes)?', 7);
    bad('nid == CPUS{1}', 'Invalid value (did you forget quotes)?', 8);
    expectParseError(
      'cpu & CPUS{0}',
      'Invalid value (did you forget quotes)?',
      7,
      undefined,
      profile,
    );
  });

  const v617 = PROFILES['v6.17'];
  const { bad, passes } = filterChecks(schema, v617);

  it('v6.17: cpu against a list: one CPU compares as a number, more as a mask', () => {
    const on = (expr: string) => [0, 1].filter((cpu) => passes(expr, { cpu, CPU: cpu, order: 0 }));
    expect(on('cpu & CPUS{1}')).toEqual([1]);
    expect(on('cpu == CPUS{1}')).toEqual([1]);
    expect(on('cpu != CPUS{1}')).toEqual([0]);
    expect(on('CPU & CPUS{0-1}')).toEqual([0, 1]);
    expect(on('cpu & CPUS{0,1}')).toEqual([0, 1]);
    expect(on('cpu & CPUS{ 1 }')).toEqual([1]);
    expect(on('cpu & CPUS{N}')).toEqual([1]);
    expect(on('cpu & CPUS{ALL:1/2}')).toEqual([0]);
    // do_filter_scalar_cpumask(): a CPU never equals a mask of two or more.
    expect(on('cpu == CPUS{0-1}')).toEqual([]);
    expect(on('cpu != CPUS{all}')).toEqual([0, 1]);
    // An empty mask (a list of separators) holds no CPU.
    expect(on('cpu & CPUS{,}')).toEqual([]);
    expect(on('cpu & CPUS{1} && order == 0')).toEqual([1]);
  });

  it('v6.17: a numeric field against a list: its value as a CPU number', () => {
    const on = (expr: string) => [-1, 0, 1, 2, 5].filter((nid) => passes(expr, { nid }));
    // One CPU: an equality test of the field's unsigned bits (-1 is 0xffffffff).
    expect(on('nid & CPUS{1}')).toEqual([1]);
    expect(on('nid != CPUS{0}')).toEqual([-1, 1, 2, 5]);
    // A mask: a value of nr_cpu_ids (2) or more fails every operator, != included.
    expect(on('nid & CPUS{0-1}')).toEqual([0, 1]);
    expect(on('nid != CPUS{0-1}')).toEqual([0, 1]);
    expect(on('nid == CPUS{0-1}')).toEqual([]);
    expect(passes('sync & CPUS{1}', { sync: true })).toBe(true);
    expect(passes('pfn & CPUS{0-1}', { pfn: 2 ** 32 + 1 })).toBe(true); // cut to an unsigned int
  });

  it("v6.17: the kernel's errors and carets", () => {
    bad('comm & CPUS{0}', 'Illegal operation for field type', 8);
    bad('name == CPUS{0}', 'Illegal operation for field type', 9);
    bad('cpu < CPUS{0}', 'Illegal operation for field type', 7);
    // `str[i++] != '{'`: two bytes past where the `{` should be.
    bad('cpu & CPUS[0]', "Missing '{'", 12);
    bad('cpu & CPUS', "Missing '{'", 12);
    bad('cpu & CPUS{0', "Missing '}'", 13);
    bad('cpu & CPUS{}', 'Invalid cpulist', 12);
    // cpulist_parse() for nr_cpu_ids = 2 CPUs: CPU 2 is past the mask.
    bad('cpu & CPUS{2}', 'Invalid cpulist', 13);
    bad('cpu & CPUS{1-0}', 'Invalid cpulist', 15);
    bad('cpu & CPUS{0-1:3/2}', 'Invalid cpulist', 19);
    bad('cpu & CPUS{0-1:1/0}', 'Invalid cpulist', 19);
    bad('cpu & CPUS{x}', 'Invalid cpulist', 13);
    bad('cpu & CPUS{4294967296}', 'Invalid cpulist', 22);
    bad('cpu & CPUS{0} 1', 'Too many terms in predicate expression', 14);
    expectParseError('cpu & CPUS{0-1', "Missing '}'", 15, undefined, v617);
    // Without fields, only the braces and the list are checked.
    expect(parseTraceFilter('comm < CPUS{0}', v617)?.kind).toBe('pred');
  });

  it('v6.17: through the recorder, on the CPUs the tasks run on', () => {
    const record = (profile: ProfileName, filter: string) => {
      const m = createMachine({ memory: '16M', contents: false, profile });
      const rec = traceRecorder(m, {
        events: ['mm_page_alloc'],
        filter: { mm_page_alloc: filter },
      });
      for (const name of ['a', 'b'])
        m.sched.spawn(name, function* () {
          m.allocPages(GFP.KERNEL, 0);
          yield* [];
        });
      m.sched.runAll();
      return rec.lines.map((l) => /\[(\d+)\]/.exec(l)![1]);
    };
    expect(record('v6.17', 'cpu & CPUS{1}')).toEqual(['001']);
    expect(record('v6.17', 'cpu & CPUS{0-1}')).toEqual(['000', '001']);
    expect(record('v6.17', 'cpu == CPUS{0-1}')).toEqual([]);
    expect(() => record('v6.3', 'cpu & CPUS{1}')).toThrow(
      /^filter: Invalid value \(did you forget quotes\)\?\n/,
    );
  });
});

describe('cpu and CPU compare as filter_pred_cpu() does', () => {
  it.each(profiles)('%s: an int, and & never matches', (p) => {
    const { passes } = filterChecks(schema, PROFILES[p]);
    expect(passes('cpu == 1', { cpu: 1 })).toBe(true);
    expect(passes('CPU >= -1', { CPU: 0 })).toBe(true);
    expect(passes('cpu != 1', { cpu: 0 })).toBe(true);
    // filter_pred_cpu() has no case for OP_BAND: it returns 0.
    expect(passes('cpu & 1', { cpu: 1 })).toBe(false);
    expect(passes('CPU & 0xffffffff', { CPU: 3 })).toBe(false);
    expect(passes('!(cpu & 1)', { cpu: 1 })).toBe(true);
  });
});

describe('a subsystem filter (apply_subsystem_event_filter())', () => {
  const machine = (p: ProfileName) => createMachine({ memory: '16M', contents: false, profile: p });

  it.each(profiles)("%s: a filter that fits no event is the subsystem's error, at 0", (p) => {
    const m = machine(p);
    const err = thrown(() => traceRecorder(m, { filter: 'nosuch == 1' }));
    expect(err.message).toBe(
      `filter: ${BAD_SUBSYS}\n  nosuch == 1\n  ^\n` +
        '  (first refused by mm_page_alloc: Field not found, at byte 7)',
    );
    expect([err.reason, err.position, err.code, err.field]).toEqual([
      BAD_SUBSYS,
      0,
      'E_USAGE',
      'filter',
    ]);
    // Fields every event has, of the wrong type for each.
    const types = thrown(() => traceRecorder(m, { filter: 'common_pid == "x"' }));
    expect(types.reason).toBe(BAD_SUBSYS);
    // An empty one: each event refuses it (check_preds() in the dry run of v4.8,
    // process_preds() in 4.17 on).
    const empty = thrown(() => traceRecorder(m, { filter: ' \n' }));
    expect([empty.reason, empty.position]).toEqual([BAD_SUBSYS, 0]);
    expectNothingEnabled(m);
  });

  it.each(profiles)(
    '%s: a syntax error is its own message in v4.8, the subsystem one after',
    (p) => {
      const m = machine(p);
      const err = thrown(() => traceRecorder(m, { filter: 'order >' }));
      if (PROFILES[p].traceFilter.subsystem === 'dry_run') {
        // create_filter_start() parses the expression once, before any event is tried.
        expect([err.reason, err.position]).toEqual(['Invalid value (did you forget quotes)?', 8]);
        expect(err.message.split('\n')).toHaveLength(3);
      } else {
        // process_system_preds() parses it for each event and logs FILT_ERR_BAD_SUBSYS_FILTER.
        expect([err.reason, err.position]).toEqual([BAD_SUBSYS, 0]);
        expect(err.message.split('\n')[3]).toBe(
          '  (it does not parse: Invalid value (did you forget quotes)?, at byte 8)',
        );
      }
      expectNothingEnabled(m);
    },
  );

  it.each(profiles)(
    '%s: the events a filter does not fit, by field or by type, are recorded unfiltered',
    (p) => {
      const m = machine(p);
      // mm_page_alloc's order is an unsigned int, so -1 is an Illegal integer value there;
      // mm_compaction_suitable's is an int.
      const rec = traceRecorder(m, {
        events: ['mm_page_alloc', 'mm_compaction_suitable', 'mm_page_free'],
        filter: 'order == -1',
      });
      m.trace.fire('mm_page_alloc', { pfn: 1, order: 0, gfp_flags: 0, migratetype: 0 });
      m.trace.fire('mm_compaction_suitable', { nid: 0, idx: 1, order: 0, ret: 1 });
      m.trace.fire('mm_compaction_suitable', { nid: 0, idx: 1, order: -1, ret: 1 });
      m.trace.fire('mm_page_free', { pfn: 2, order: 3 });
      expect(rec.lines.map((l) => /: (\w+): .*order=(-?\d+)/.exec(l)!.slice(1).join(' '))).toEqual([
        'mm_page_alloc 0',
        'mm_compaction_suitable -1',
        'mm_page_free 3',
      ]);
    },
  );

  it.each(profiles)('%s: per-event filters keep their own messages', (p) => {
    const m = machine(p);
    const err = thrown(() => traceRecorder(m, { filter: { mm_page_free: 'nosuch == 1' } }));
    expect([err.reason, err.position]).toEqual(['Field not found', 7]);
  });
});
