import { describe, expect, it } from 'vitest';
import { __GFP, GFP } from '../../src/buddy/gfp.js';
import { MopsError } from '../../src/errors.js';
import { createMachine } from '../../src/machine.js';
import { PROFILES } from '../../src/profile.js';
import type { KernelGen } from '../../src/sched/types.js';
import {
  ftraceHeader,
  ftraceLine,
  ftraceTimestamp,
  gfpMaskV4_8,
  pagePointer,
  registerFtraceFormat,
  showGfpFlags,
  TraceFilterError,
  traceRecorder,
} from '../../src/trace/index.js';
import { expectNothingEnabled } from './helpers.js';

const at0 = { comm: 'mops', pid: 0, cpu: 0, jiffies: 0 };

describe('ftrace lines', () => {
  it('formats that differ by release: v4.8 mm_migrate_pages has no THP fields; its compaction success prints as partial', () => {
    const mig = {
      succeeded: 3,
      failed: 1,
      thp_succeeded: 0,
      thp_failed: 0,
      thp_split: 0,
      large_folio_split: 0,
      mode: 0,
      reason: 0,
    };
    const body = (name: string, e: Record<string, unknown>, p: 'v4.8' | 'v6.3' | 'v6.17') =>
      ftraceLine(name, e, { ...at0, profile: PROFILES[p] }).split(`${name}: `)[1];
    expect(body('mm_migrate_pages', mig, 'v4.8')).toBe(
      'nr_succeeded=3 nr_failed=1 mode=MIGRATE_ASYNC reason=compaction',
    );
    expect(body('mm_migrate_pages', mig, 'v6.3')).toBe(
      'nr_succeeded=3 nr_failed=1 nr_thp_succeeded=0 nr_thp_failed=0 nr_thp_split=0 mode=MIGRATE_ASYNC reason=compaction',
    );
    expect(body('mm_migrate_pages', mig, 'v6.17')).toBe(
      'nr_succeeded=3 nr_failed=1 nr_thp_succeeded=0 nr_thp_failed=0 nr_thp_split=0 nr_split=0 mode=MIGRATE_ASYNC reason=compaction',
    );
    // kmem events: pfn=%lu before 5.14, pfn=0x%lx after.
    const free = { pfn: 0x42, order: 0 };
    expect(body('mm_page_free', free, 'v4.8')).toBe('page=ffffea0000001080 pfn=66 order=0');
    expect(body('mm_page_free', free, 'v6.3')).toBe('page=ffffea0000001080 pfn=0x42 order=0');
    const alloc = { pfn: 0x42, order: 1, gfp_flags: GFP.KERNEL, migratetype: 0 };
    expect(body('mm_page_alloc', alloc, 'v4.8')).toMatch(/^page=\S+ pfn=66 order=1 /);
    const end = {
      zone_start: 0,
      migrate_pfn: 0x10,
      free_pfn: 0x200,
      zone_end: 0x400,
      sync: 0,
      status: 8,
    };
    expect(body('mm_compaction_end', end, 'v4.8')).toMatch(/ status=partial$/);
    expect(body('mm_compaction_end', end, 'v6.3')).toMatch(/ status=success$/);
    const fin = { nid: 0, idx: 2, order: 3, ret: 8 };
    expect(body('mm_compaction_finished', fin, 'v4.8')).toMatch(/ ret=partial$/);
  });

  it('v4.8 context columns: %-5d pids, four irq-info columns, the 4.x header', () => {
    const ctx = { ...at0, comm: 'kcompactd0', pid: 42, preemptCount: 1, profile: PROFILES['v4.8'] };
    expect(ftraceLine('mm_page_free', { pfn: 66, order: 0 }, ctx)).toBe(
      '      kcompactd0-42    [000] ...1     0.000000: mm_page_free: page=ffffea0000001080 pfn=66 order=0',
    );
    const header = ftraceHeader(1, 1, 2, PROFILES['v4.8']).split('\n');
    expect(header.slice(4)).toEqual([
      '#                              _-----=> irqs-off',
      '#                             / _----=> need-resched',
      '#                            | / _---=> hardirq/softirq',
      '#                            || / _--=> preempt-depth',
      '#                            ||| /     delay',
      '#           TASK-PID   CPU#  ||||    TIMESTAMP  FUNCTION',
      '#              | |       |   ||||       |         |',
      '',
    ]);
    // The columns line up under the header's.
    expect(header[9].indexOf('CPU#')).toBe(
      ftraceLine('mm_page_free', { pfn: 1, order: 0 }, ctx).indexOf('[000]'),
    );
  });

  it('mm_page_alloc in the kernel TP_printk format and trace_print_context columns', () => {
    const line = ftraceLine(
      'mm_page_alloc',
      { pfn: 0x1000, order: 0, gfp_flags: GFP.KERNEL, migratetype: 0 },
      at0,
    );
    expect(line).toBe(
      '            mops-0       [000] .....     0.000000: mm_page_alloc: page=ffffea0000040000 pfn=0x1000 order=0 migratetype=0 gfp_flags=GFP_KERNEL',
    );
    // "%16s-%-7d [%03d] " puts the CPU bracket at column 25, as in real traces.
    expect(line.indexOf('[')).toBe(25);
  });

  it('task name, pid, CPU, preempt depth and the timestamp in the context columns', () => {
    const line = ftraceLine(
      'mm_page_free',
      { pfn: 0x12345, order: 3 },
      { comm: 'kcompactd0', pid: 42, cpu: 1, preemptCount: 1, jiffies: 250 * 1049 + 135 },
    );
    expect(line).toBe(
      '      kcompactd0-42      [001] ...1.  1049.540000: mm_page_free: page=ffffea000048d140 pfn=0x12345 order=3',
    );
    expect(ftraceTimestamp(1)).toBe('    0.004000');
    expect(ftraceTimestamp(250 * 123456 + 249)).toBe('123456.996000');
    // comm is cut to TASK_COMM_LEN - 1 characters.
    expect(
      ftraceLine('mm_page_free', { pfn: 0, order: 0 }, { ...at0, comm: 'a-very-long-task-name' }),
    ).toMatch(/^ a-very-long-tas-0 /);
  });

  it('a failed allocation prints a NULL page and pfn 0', () => {
    expect(
      ftraceLine(
        'mm_page_alloc',
        { pfn: -1, order: 9, gfp_flags: GFP.HIGHUSER_MOVABLE | __GFP.COMP, migratetype: 1 },
        at0,
      ),
    ).toMatch(
      /: mm_page_alloc: page=0000000000000000 pfn=0x0 order=9 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE\|__GFP_COMP$/,
    );
  });

  it('v4.8 prints a failed allocation as a (null) page of the pointer width and pfn 0', () => {
    const failed = { pfn: -1, order: 3, gfp_flags: GFP.KERNEL, migratetype: 0 };
    const line = ftraceLine('mm_page_alloc', failed, { ...at0, profile: PROFILES['v4.8'] });
    expect(line.split('mm_page_alloc: ')[1]).toBe(
      'page=          (null) pfn=0 order=3 migratetype=0 gfp_flags=GFP_KERNEL',
    );
    for (const name of ['v6.0', 'v6.3', 'v6.17'] as const)
      expect(ftraceLine('mm_page_alloc', failed, { ...at0, profile: PROFILES[name] })).toMatch(
        /: mm_page_alloc: page=0000000000000000 pfn=0x0 order=3 /,
      );
    // Hashed pointers do not change a NULL page.
    expect(
      ftraceLine('mm_page_alloc', failed, { ...at0, profile: PROFILES['v4.8'] }, 'hashed'),
    ).toBe(line);
  });

  it('mm_page_alloc_extfrag with pageblock_order, fragmenting and change_ownership', () => {
    const e = {
      pfn: 0x40200,
      alloc_order: 0,
      fallback_order: 3,
      alloc_migratetype: 0,
      fallback_migratetype: 1,
      change_ownership: 0,
    };
    expect(ftraceLine('mm_page_alloc_extfrag', e, at0).split(': ')[2]).toBe(
      'page=ffffea0001008000 pfn=0x40200 alloc_order=0 fallback_order=3 pageblock_order=9 alloc_migratetype=0 fallback_migratetype=1 fragmenting=1 change_ownership=0',
    );
    expect(
      ftraceLine('mm_page_alloc_extfrag', { ...e, fallback_order: 10, change_ownership: 1 }, at0),
    ).toMatch(/fragmenting=0 change_ownership=1$/);
  });

  it('show_gfp_flags: combinations first, then single bits, leftovers in hex', () => {
    expect(showGfpFlags(0)).toBe('none');
    expect(showGfpFlags(GFP.KERNEL)).toBe('GFP_KERNEL');
    expect(showGfpFlags(GFP.KERNEL | __GFP.COMP | __GFP.ZERO)).toBe(
      'GFP_KERNEL|__GFP_ZERO|__GFP_COMP',
    );
    expect(showGfpFlags(GFP.KERNEL_RECLAIMABLE)).toBe('GFP_KERNEL|__GFP_RECLAIMABLE');
    expect(showGfpFlags(GFP.HIGHUSER_MOVABLE)).toBe('GFP_HIGHUSER_MOVABLE');
    expect(showGfpFlags(GFP.USER | __GFP.HIGHMEM)).toBe('GFP_HIGHUSER');
    expect(showGfpFlags(GFP.ATOMIC)).toBe('GFP_ATOMIC');
    expect(showGfpFlags(GFP.NOWAIT)).toBe('GFP_NOWAIT');
    expect(showGfpFlags(__GFP.DIRECT_RECLAIM)).toBe('__GFP_DIRECT_RECLAIM');
    expect(showGfpFlags(__GFP.DMA | __GFP.HIGH)).toBe('GFP_DMA|__GFP_HIGH');
    expect(showGfpFlags(__GFP.FS | 0x200)).toBe('__GFP_FS|0x200');
  });

  it("a hugetlb pool allocation's mask: __GFP_RETRY_MAYFAIL (v4.8: __GFP_REPEAT) and __GFP_THISNODE, named and in v4.8's layout", () => {
    const huge =
      GFP.HIGHUSER_MOVABLE | __GFP.COMP | __GFP.NOWARN | __GFP.RETRY_MAYFAIL | __GFP.THISNODE;
    const names = (p: (typeof PROFILES)[keyof typeof PROFILES]) => showGfpFlags(huge, p);
    expect(names(PROFILES['v6.17'])).toBe(
      'GFP_HIGHUSER_MOVABLE|__GFP_NOWARN|__GFP_RETRY_MAYFAIL|__GFP_COMP|__GFP_THISNODE',
    );
    expect(names(PROFILES['v6.3'])).toBe(
      'GFP_HIGHUSER_MOVABLE|__GFP_NOWARN|__GFP_RETRY_MAYFAIL|__GFP_COMP|__GFP_THISNODE',
    );
    expect(names(PROFILES['v4.8'])).toBe(
      'GFP_HIGHUSER_MOVABLE|__GFP_NOWARN|__GFP_REPEAT|__GFP_COMP|__GFP_THISNODE',
    );
    // alloc_fresh_huge_page_node()'s mask as v4.8's mm_compaction_try_to_compact_pages prints it.
    expect(gfpMaskV4_8(huge).toString(16)).toBe('24646ca');
    // Accepted by the allocator, and only printed: one node, no reclaim to retry after.
    const m = createMachine({ memory: '16M', contents: false });
    expect(m.allocPages(huge, 9)).toBeGreaterThanOrEqual(0);
  });

  it('show_gfp_flags by release: the hand-written order before 6.15, GFP_TEMPORARY in v4.8', () => {
    const byRelease = (gfp: number) =>
      (['v4.8', 'v6.0', 'v6.3', 'v6.17'] as const).map((n) => showGfpFlags(gfp, PROFILES[n]));
    // 6.15+ lists single bits in bit order; earlier releases by hand (NOWARN, COMP, ZERO, …).
    expect(byRelease(GFP.KERNEL | __GFP.COMP | __GFP.ZERO | __GFP.NOWARN)).toEqual([
      'GFP_KERNEL|__GFP_NOWARN|__GFP_COMP|__GFP_ZERO',
      'GFP_KERNEL|__GFP_NOWARN|__GFP_COMP|__GFP_ZERO',
      'GFP_KERNEL|__GFP_NOWARN|__GFP_COMP|__GFP_ZERO',
      'GFP_KERNEL|__GFP_ZERO|__GFP_NOWARN|__GFP_COMP',
    ]);
    expect(byRelease(GFP.KERNEL_RECLAIMABLE)).toEqual([
      'GFP_TEMPORARY',
      'GFP_KERNEL|__GFP_RECLAIMABLE',
      'GFP_KERNEL|__GFP_RECLAIMABLE',
      'GFP_KERNEL|__GFP_RECLAIMABLE',
    ]);
    expect(byRelease(__GFP.MOVABLE | __GFP.HIGH | __GFP.DIRECT_RECLAIM)).toEqual([
      '__GFP_HIGH|__GFP_MOVABLE|__GFP_DIRECT_RECLAIM',
      '__GFP_HIGH|__GFP_MOVABLE|__GFP_DIRECT_RECLAIM',
      '__GFP_HIGH|__GFP_MOVABLE|__GFP_DIRECT_RECLAIM',
      '__GFP_MOVABLE|__GFP_HIGH|__GFP_DIRECT_RECLAIM',
    ]);
    expect(byRelease(GFP.HIGHUSER_MOVABLE)).toEqual(Array(4).fill('GFP_HIGHUSER_MOVABLE'));
  });

  it("mm_page_alloc prints the gfp flags with the release's table", () => {
    for (const [name, want] of [
      ['v4.8', 'gfp_flags=GFP_KERNEL|__GFP_NOWARN|__GFP_ZERO'],
      ['v6.17', 'gfp_flags=GFP_KERNEL|__GFP_ZERO|__GFP_NOWARN'],
    ] as const) {
      const m = createMachine({ memory: '16M', contents: false, profile: name });
      const lines: string[] = [];
      const rec = traceRecorder(m, { events: ['mm_page_alloc'] });
      m.allocPages(GFP.KERNEL | __GFP.ZERO | __GFP.NOWARN, 0);
      lines.push(...rec.lines);
      rec.stop();
      expect(lines.join('\n')).toContain(want);
    }
  });

  it('page pointers: vmemmap addresses, or stable hashes', () => {
    expect(pagePointer(0)).toBe('ffffea0000000000');
    expect(pagePointer(1)).toBe('ffffea0000000040');
    const h = pagePointer(1, 'hashed');
    expect(h).toMatch(/^00000000[0-9a-f]{8}$/);
    expect(pagePointer(1, 'hashed')).toBe(h);
    expect(pagePointer(2, 'hashed')).not.toBe(h);
  });

  it('events without a registered format print their fields; a format can be added', () => {
    expect(ftraceLine('mm_unknown_thing', { a: 1, b: 'x' }, at0)).toMatch(
      /: mm_unknown_thing: a=1 b=x$/,
    );
    registerFtraceFormat('mm_test_event', {
      system: 'test',
      fields: { nr: 'num' },
      print: (e) => `nr=${e.nr}`,
    });
    expect(ftraceLine('mm_test_event', { nr: 5 }, at0)).toMatch(/: mm_test_event: nr=5$/);
    expect(() =>
      registerFtraceFormat('Bad Name', { system: 'x', fields: {}, print: () => '' }),
    ).toThrow(MopsError);
  });

  it('the trace file header', () => {
    const h = ftraceHeader(2, 3, 2).split('\n');
    expect(h[0]).toBe('# tracer: nop');
    expect(h[2]).toBe('# entries-in-buffer/entries-written: 2/3   #P:2');
    expect(h[10]).toBe('#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION');
    // The columns of the header line up with a line's columns.
    const line = ftraceLine('mm_page_free', { pfn: 1, order: 0 }, at0);
    expect(h[10].indexOf('CPU#')).toBe(line.indexOf('['));
    expect(h[10].indexOf('|||||')).toBe(line.indexOf('.....'));
  });
});

describe('traceRecorder', () => {
  const alloc = (pfn: number, order: number, migratetype = 0) => ({
    pfn,
    order,
    gfp_flags: GFP.KERNEL,
    migratetype,
  });

  it('collects lines from the machine bus with clock time and task context', () => {
    const m = createMachine({ memory: '64M', contents: false });
    const rec = traceRecorder(m);
    expect(m.trace.enabled.mm_page_alloc).toBe(true);
    m.trace.fire('mm_page_alloc', alloc(0x100, 0));
    m.clock.tick(500);
    m.sched.spawn(
      'kcompactd0',
      function* (): KernelGen {
        yield { op: 'spin_lock', lock: 'zone->lock' };
        m.trace.fire('mm_page_free', { pfn: 0x200, order: 2 });
      },
      { cpu: 1 },
    );
    m.sched.runAll();
    expect(rec.lines).toEqual([
      '            mops-0       [000] .....     0.000000: mm_page_alloc: page=ffffea0000004000 pfn=0x100 order=0 migratetype=0 gfp_flags=GFP_KERNEL',
      '      kcompactd0-1       [001] .....     2.000000: mm_page_free: page=ffffea0000008000 pfn=0x200 order=2',
    ]);
    expect(rec.text()).toBe(`${ftraceHeader(2, 2, 2)}${rec.lines.join('\n')}\n`);
    rec.stop();
    expectNothingEnabled(m);
    m.trace.fire('mm_page_alloc', alloc(1, 0));
    expect(rec.lines).toHaveLength(2);
  });

  it('applies a filter to the events that have its fields (subsystem filter semantics)', () => {
    const m = createMachine({ memory: '64M', contents: false });
    const rec = traceRecorder(m, { filter: 'order > 2 && migratetype == 1' });
    m.trace.fire('mm_page_alloc', alloc(1, 3, 1));
    m.trace.fire('mm_page_alloc', alloc(2, 3, 0));
    m.trace.fire('mm_page_alloc', alloc(3, 1, 1));
    // mm_page_free has no migratetype field: recorded unfiltered, as the kernel leaves it.
    m.trace.fire('mm_page_free', { pfn: 4, order: 0 });
    expect(rec.lines.map((l) => / pfn=0x(\w+)/.exec(l)![1])).toEqual(['1', '4']);
  });

  it('per-event filters, event selection, COMM globs and the ring limit', () => {
    const m = createMachine({ memory: '64M', contents: false });
    const rec = traceRecorder(m, {
      events: ['mm_page_alloc'],
      filter: { mm_page_alloc: 'comm ~ "kcomp*" || pfn & 0x10' },
      limit: 2,
    });
    expect(m.trace.enabled.mm_page_free).toBe(false);
    for (const pfn of [0x10, 0x11, 0x20, 0x30]) m.trace.fire('mm_page_alloc', alloc(pfn, 0));
    expect(rec.written).toBe(3);
    expect(rec.lines.map((l) => / pfn=0x(\w+)/.exec(l)![1])).toEqual(['11', '30']);
    m.sched.spawn('kcompactd0', function* (): KernelGen {
      yield { op: 'spin_lock', lock: 'zone->lock' };
      m.trace.fire('mm_page_alloc', alloc(0x40, 0));
    });
    m.sched.runAll();
    expect(rec.lines.at(-1)).toMatch(/kcompactd0-1 .* pfn=0x40 /);
    rec.clear();
    expect(rec.lines).toEqual([]);
  });

  it.each(['v4.8', 'v6.3'] as const)(
    'a failed allocPages fires mm_page_alloc once with a NULL page; every call is traced once — %s',
    (profile) => {
      const m = createMachine({ memory: '16M', contents: false, profile });
      const rec = traceRecorder(m, { events: ['mm_page_alloc'] });
      let calls = 0;
      let got = 0;
      // GFP_ATOMIC goes on below the low watermark through the slow path, to the reserves.
      do {
        got = m.allocPages(GFP.ATOMIC | __GFP.NOWARN, 0);
        calls++;
      } while (got >= 0);
      expect(calls).toBeGreaterThan(1);
      expect(rec.lines).toHaveLength(calls);
      const nulls = rec.lines.filter((l) => / pfn=(0x)?0 /.test(l));
      expect(nulls).toEqual([rec.lines.at(-1)]);
      expect(nulls[0]).toMatch(
        profile === 'v4.8'
          ? /: mm_page_alloc: page= {10}\(null\) pfn=0 order=0 /
          : /: mm_page_alloc: page=0{16} pfn=0x0 order=0 /,
      );
    },
  );

  it("filters test the values the release stores: v4.8's gfp bit layout and compact_priority; 6.x's __GFP_NOMEMALLOC bit", () => {
    const tryCompact = (m: ReturnType<typeof createMachine>, prio: number, gfp: number) =>
      m.trace.fire('mm_compaction_try_to_compact_pages', { order: 3, gfp_mask: gfp, prio });
    const old = createMachine({ memory: '16M', contents: false, profile: 'v4.8' });
    // mops numbers priorities as 6.x (SYNC_FULL 0, SYNC_LIGHT 1, ASYNC 2); 4.8 has no
    // SYNC_FULL and prints and stores SYNC_LIGHT as 0.
    const byPrio = traceRecorder(old, { filter: 'prio == 0' });
    tryCompact(old, 1, GFP.KERNEL);
    tryCompact(old, 2, GFP.KERNEL);
    expect(byPrio.lines).toHaveLength(1);
    expect(byPrio.lines[0]).toMatch(/priority=0$/);
    byPrio.stop();
    // 4.8's __GFP_COMP is 0x4000 (6.x: 0x40000).
    const byComp = traceRecorder(old, { filter: 'gfp_mask & 0x4000' });
    tryCompact(old, 2, GFP.HIGHUSER_MOVABLE | __GFP.COMP);
    tryCompact(old, 2, GFP.HIGHUSER_MOVABLE);
    expect(byComp.lines).toHaveLength(1);
    expect(byComp.lines[0]).toMatch(/gfp_mask=0x24240ca /);
    byComp.stop();
    const alloc = traceRecorder(old, { events: ['mm_page_alloc'], filter: 'gfp_flags & 0x4000' });
    old.allocPages(GFP.KERNEL | __GFP.COMP, 2);
    old.allocPages(GFP.KERNEL, 0);
    expect(alloc.lines).toHaveLength(1);
    expect(alloc.lines[0]).toMatch(/order=2 /);
    alloc.stop();
    // include/linux/gfp_types.h: ___GFP_NOMEMALLOC is bit 19 (0x10000 is __GFP_NORETRY).
    const m = createMachine({ memory: '16M', contents: false, profile: 'v6.3' });
    const noMemalloc = traceRecorder(m, { filter: 'gfp_mask & 0x80000' });
    tryCompact(m, 2, GFP.KERNEL | __GFP.NOMEMALLOC);
    tryCompact(m, 2, GFP.KERNEL);
    expect(noMemalloc.lines).toHaveLength(1);
    expect(noMemalloc.lines[0]).toMatch(/__GFP_NOMEMALLOC/);
  });

  it('filter fields follow the release: v4.8 classzone_idx and no THP fields in mm_migrate_pages', () => {
    const wake = (m: ReturnType<typeof createMachine>, zone: number) =>
      m.trace.fire('mm_compaction_wakeup_kcompactd', { nid: 0, order: 2, highest_zoneidx: zone });
    const old = createMachine({ memory: '16M', contents: false, profile: 'v4.8' });
    const rec = traceRecorder(old, { filter: 'classzone_idx == 1' });
    wake(old, 1);
    wake(old, 2);
    expect(rec.lines).toHaveLength(1);
    expect(rec.lines[0]).toMatch(/classzone_idx=DMA32 {3}$/);
    rec.stop();
    // One expression is a subsystem filter: one no event has is the subsystem's error.
    expect(() => traceRecorder(old, { filter: 'highest_zoneidx == 1' })).toThrow(
      /^filter: Couldn't find or set field in one of a subsystem's events\n/,
    );
    const events = ['mm_migrate_pages'];
    expect(() =>
      traceRecorder(old, { events, filter: { mm_migrate_pages: 'thp_split == 0' } }),
    ).toThrow(/Field not found/);
    traceRecorder(old, {
      events,
      filter: { mm_migrate_pages: 'succeeded > 0 && reason == 0' },
    }).stop();
    for (const name of ['v6.0', 'v6.3', 'v6.17'] as const) {
      const m = createMachine({ memory: '16M', contents: false, profile: name });
      expect(() => traceRecorder(m, { filter: 'classzone_idx == 1' })).toThrow(
        /^filter: Couldn't find or set field in one of a subsystem's events\n/,
      );
      const r = traceRecorder(m, { filter: 'highest_zoneidx == 2' });
      wake(m, 1);
      wake(m, 2);
      expect(r.lines).toHaveLength(1);
      r.stop();
      traceRecorder(m, { events, filter: { mm_migrate_pages: 'thp_split == 0' } }).stop();
      // large_folio_split (printed nr_split) came in 6.7.
      const split = () =>
        traceRecorder(m, { events, filter: { mm_migrate_pages: 'large_folio_split == 0' } }).stop();
      if (name === 'v6.17') split();
      else expect(split).toThrow(/Field not found/);
    }
  });

  it('common_flags is 0, as the irq-info columns show; common_type is refused', () => {
    const m = createMachine({ memory: '64M', contents: false });
    const keep = traceRecorder(m, { events: ['mm_page_free'], filter: 'common_flags == 0' });
    const none = traceRecorder(m, { events: ['mm_page_free'], filter: 'common_flags & 0xff' });
    m.trace.fire('mm_page_free', { pfn: 4, order: 0 });
    m.sched.spawn('kcompactd0', function* (): KernelGen {
      yield { op: 'spin_lock', lock: 'zone->lock' };
      m.trace.fire('mm_page_free', { pfn: 5, order: 0 });
    });
    m.sched.runAll();
    expect(keep.lines).toHaveLength(2);
    // The first three irq-info columns are '.' on every line.
    for (const l of keep.lines) expect(l).toMatch(/\] \.\.\.[.0-9a-f]\. /);
    expect(none.lines).toEqual([]);
    for (const filter of ['common_type == 1', { mm_page_free: 'order == 0 || common_type > 0' }]) {
      let err: unknown;
      try {
        traceRecorder(m, { events: ['mm_page_free'], filter });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TraceFilterError);
      expect((err as TraceFilterError).code).toBe('E_USAGE');
      expect((err as Error).message).toMatch(/common_type .*event type ids/);
    }
  });

  it('rejects unknown events and bad filters with E_USAGE', () => {
    const m = createMachine({ memory: '64M', contents: false });
    expect(() => traceRecorder(m, { events: ['mm_nothing'] })).toThrow(/no event 'mm_nothing'/);
    expect(() => traceRecorder(m, { filter: 'nosuchfield == 1' })).toThrow(TraceFilterError);
    expect(() => traceRecorder(m, { filter: 'nosuchfield == 1' })).toThrow(
      /^filter: Couldn't find or set field in one of a subsystem's events\n/,
    );
    expect(() => traceRecorder(m, { filter: { mm_page_free: 'migratetype == 1' } })).toThrow(
      /Field not found/,
    );
    expect(() =>
      traceRecorder(m, { events: ['mm_page_free'], filter: { mm_page_alloc: 'order == 1' } }),
    ).toThrow(/not recorded/);
    // Nothing stayed subscribed after the failures.
    expectNothingEnabled(m);
  });
});
