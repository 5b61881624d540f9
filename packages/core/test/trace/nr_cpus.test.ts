/**
 * The number of CPUs a machine's trace reports: the header's `#P:` (num_online_cpus()) and
 * the CPUs a `CPUS{…}` filter can name (nr_cpu_ids) are one number, past every CPU a line
 * prints, as in the kernel, where the `[%03d]` column is always below them.
 */
import { describe, expect, it } from 'vitest';
import { GFP } from '../../src/buddy/gfp.js';
import { createMachine, type Machine } from '../../src/machine.js';
import { PROFILES } from '../../src/profile.js';
import { parseTraceFilter, TraceFilterError, traceRecorder } from '../../src/trace/index.js';

const v617 = PROFILES['v6.17'];

/** `#P:` of a recorder's `trace` file. */
const nrOf = (text: string): number => Number(/#P:(\d+)/.exec(text)?.[1]);
/** The CPU column of each line. */
const cpusOf = (lines: readonly string[]): number[] =>
  lines.map((l) => Number(/\[(\d{3})\]/.exec(l)?.[1]));

/** `n` tasks live together, each allocating (and freeing) an order-`order` page. */
function allocTogether(m: Machine, n: number, order = 0): void {
  for (let i = 0; i < n; i++)
    m.sched.spawn(`t${i}`, function* () {
      yield { op: 'work' };
      m.putPage(m.allocPages(GFP.KERNEL, order));
    });
  m.sched.runAll('round-robin');
}

describe('#P: and the CPUS{} count', () => {
  it('#P: is past the highest CPU printed, and CPUS{} names that CPU', () => {
    const m = createMachine({ memory: '16M', contents: false, profile: 'v6.17' });
    const rec = traceRecorder(m, { events: ['mm_page_alloc'] });
    allocTogether(m, 4);
    const cpus = cpusOf(rec.lines);
    expect(cpus).toEqual([0, 1, 2, 3]);
    const highest = Math.max(...cpus);
    expect(nrOf(rec.text())).toBeGreaterThanOrEqual(highest + 1);
    expect(nrOf(rec.text())).toBe(4);
    // A filter naming that CPU parses, and selects its lines.
    const only = traceRecorder(m, {
      events: ['mm_page_alloc'],
      filter: { mm_page_alloc: `cpu & CPUS{${highest}}` },
    });
    const last = traceRecorder(m, {
      events: ['mm_page_alloc'],
      filter: { mm_page_alloc: 'cpu & CPUS{N}' },
    });
    allocTogether(m, 4);
    expect(cpusOf(only.lines)).toEqual([3]);
    expect(cpusOf(last.lines)).toEqual([3]);
    // One past the machine's CPUs is past the mask, as the header says.
    expect(() =>
      traceRecorder(m, { events: ['mm_page_alloc'], filter: { mm_page_alloc: 'cpu & CPUS{4}' } }),
    ).toThrow(/^filter: Invalid cpulist\n/);
  });

  it('a fresh machine has two CPUs; one run alone at a time stays on CPU 0', () => {
    const m = createMachine({ memory: '16M', contents: false, profile: 'v6.17' });
    const rec = traceRecorder(m, { events: ['mm_page_alloc'] });
    for (let i = 0; i < 3; i++) allocTogether(m, 1);
    expect(cpusOf(rec.lines)).toEqual([0, 0, 0]);
    expect(nrOf(rec.text())).toBe(2);
    expect(() =>
      traceRecorder(m, { events: ['mm_page_alloc'], filter: { mm_page_alloc: 'cpu & CPUS{2}' } }),
    ).toThrow(TraceFilterError);
  });

  it('a CPU given to spawn counts', () => {
    const m = createMachine({ memory: '16M', contents: false, profile: 'v6.17' });
    const rec = traceRecorder(m, { events: ['mm_page_alloc'] });
    m.sched.spawn(
      'pinned',
      function* () {
        yield { op: 'work' };
        m.allocPages(GFP.KERNEL, 0);
      },
      { cpu: 5 },
    );
    m.sched.runAll();
    expect(cpusOf(rec.lines)).toEqual([5]);
    expect(nrOf(rec.text())).toBe(6);
    traceRecorder(m, { events: ['mm_page_alloc'], filter: { mm_page_alloc: 'cpu & CPUS{5}' } });
  });

  it("a numeric field against a mask is bounded by the machine's count", () => {
    const m = createMachine({ memory: '16M', contents: false, profile: 'v6.17' });
    allocTogether(m, 4); // four CPUs from now on
    const rec = traceRecorder(m, {
      events: ['mm_page_alloc'],
      filter: { mm_page_alloc: 'order != CPUS{0-1}' },
    });
    // do_filter_scalar_cpumask(): a value below nr_cpu_ids (4) passes `!=` (a scalar is no
    // mask of two CPUs); one of nr_cpu_ids or more fails it.
    for (const order of [1, 2, 3, 4]) m.putPage(m.allocPages(GFP.KERNEL, order));
    expect(rec.lines.map((l) => Number(/ order=(\d+)/.exec(l)?.[1]))).toEqual([1, 2, 3]);
  });

  it('a filter parsed with no machine keeps the two CPUs', () => {
    const m = createMachine({ memory: '16M', contents: false, profile: 'v6.17' });
    allocTogether(m, 4);
    traceRecorder(m, { events: ['mm_page_alloc'], filter: { mm_page_alloc: 'cpu & CPUS{3}' } });
    expect(() => parseTraceFilter('cpu & CPUS{2}', v617)).toThrow(/Invalid cpulist/);
    expect(parseTraceFilter('cpu & CPUS{1}', v617)?.kind).toBe('pred');
  });
});
