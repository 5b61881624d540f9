import { describe, expect, it } from 'vitest';
import {
  __GFP,
  allocPagesDirectCompact,
  COMPACT,
  COMPACT_PRIO,
  compactMemory,
  GFP,
  type Machine,
  PROFILE_NAMES,
  type ProfileName,
  traceRecorder,
} from '../../src/index.js';
import { TestDriver } from '../driver.js';
import { expectInvariants, smallMachine } from '../helpers.js';
import { driverPagesFirst } from './layout.js';

function machine(profile: ProfileName, n: number) {
  return driverPagesFirst(profile, n);
}

/** compact_memory in a task that gets SIGKILL at the point `when` picks (or at once). */
function compactKilled(m: Machine, when?: (op: string, pfn: number | undefined) => boolean) {
  const rec = traceRecorder(m, {
    events: [
      'mm_compaction_isolate_migratepages',
      'mm_compaction_isolate_freepages',
      'mm_compaction_end',
    ],
  });
  const ev0 = m.mem.vmstat.snapshotEvents();
  const t = m.sched.spawn('compact', () => compactMemory(m));
  if (when) {
    m.sched.manual = true;
    m.sched.runUntil(t, (p) => when(p.op, (p as { pfn?: number }).pfn));
  }
  m.sched.sendSigkill(t);
  const result = m.sched.runToEnd(t);
  m.sched.manual = false;
  rec.stop();
  const d = (n: string) => m.mem.vmstat.get(n) - ev0[n];
  return { result, lines: rec.lines, d };
}

const calls = (drv: TestDriver, cb: string) =>
  drv.calls.filter((c) => c.cb === cb).map((c) => c.pfn);

describe.each(PROFILE_NAMES)('fatal signals stop compaction — %s', (profile) => {
  it('SIGKILL pending from the start: nothing is isolated (v6.17: no zone is even started)', () => {
    const { m, drv } = machine(profile, 10);
    const { result, lines, d } = compactKilled(m);
    expect(drv.calls).toEqual([]);
    expect(d('compact_isolated')).toBe(0);
    expect(d('compact_migrate_scanned')).toBe(0);
    if (profile === 'v6.17') {
      // compact_node() returns -EINTR before the zone.
      expect(result).toEqual([]);
      expect(lines).toEqual([]);
    } else {
      // v4.8 stops in __compact_finished; 6.x at the migrate scanner's first pfn (-EINTR,
      // without its tracepoint).
      expect(result).toEqual([COMPACT.CONTENDED]);
      expect(lines.filter((l) => l.includes('isolate_migratepages'))).toEqual([]);
      expect(lines.at(-1)).toMatch(/mm_compaction_end: .* status=contended$/);
    }
    expect(m.mem.warnings).toEqual([]);
    expectInvariants(m);
  });

  it('SIGKILL during the migrate scan: the scan stops at the next 32-pfn boundary and the isolated pages go back', () => {
    const { m, drv } = machine(profile, 10);
    const { result, lines, d } = compactKilled(
      m,
      (op, pfn) => op === 'isolate_movable_page' && pfn === 9,
    );
    expect(result).toEqual([COMPACT.CONTENDED]);
    expect(calls(drv, 'isolate')).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(calls(drv, 'migrate')).toEqual([]);
    expect(calls(drv, 'putback')).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    expect(d('compact_isolated')).toBe(10);
    expect(d('compact_migrate_scanned')).toBe(32);
    const scan = lines.filter((l) => l.includes('isolate_migratepages'));
    if (profile === 'v4.8')
      // The scan breaks out and ends as usual, then isolate_migratepages() aborts.
      expect(scan).toEqual([
        expect.stringMatching(
          /mm_compaction_isolate_migratepages: range=\(0x0 ~ 0x20\) nr_scanned=32 nr_taken=10$/,
        ),
      ]);
    else expect(scan).toEqual([]);
    expect(lines.some((l) => l.includes('isolate_freepages'))).toBe(false);
    // v4.8's isolate_migratepages() returns ISOLATE_ABORT before it records where the
    // scanner restarts; 6.x's isolate_migratepages_block() records it (-EINTR).
    expect(lines.at(-1)).toMatch(
      new RegExp(`migrate_pfn=${profile === 'v4.8' ? '0x0' : '0x20'} .*status=contended$`),
    );
    expect(drv.owned.size).toBe(10);
    expect(m.mem.warnings).toEqual([]);
    expectInvariants(m);
  });

  it('S16 with the scanners apart: SIGKILL stops the free scanner, migrate_pages gets -ENOMEM, COMPACT_CONTENDED', () => {
    // Block 0 full of driver pages. v4.8 stops isolating at the 32nd; 6.x finishes block 0
    // in one batch (the first iteration starts in pageblock 0, last_migrated_pfn's initial
    // block) and stops at its end. Either way the signal sent after the last isolation is
    // first seen by the free scanner.
    const { m, drv } = machine(profile, 512);
    const last = profile === 'v4.8' ? 31 : 511;
    const { result, lines, d } = compactKilled(
      m,
      (op, pfn) => op === 'isolate_movable_page' && pfn === last,
    );
    expect(result).toEqual([COMPACT.CONTENDED]);
    expect(calls(drv, 'isolate')).toHaveLength(last + 1);
    expect(calls(drv, 'migrate')).toEqual([]);
    expect(calls(drv, 'putback')).toEqual(calls(drv, 'isolate').reverse());
    expect(d('pgmigrate_success')).toBe(0);
    expect(d('compact_free_scanned')).toBe(0);
    expect(lines).toContainEqual(
      expect.stringMatching(
        /mm_compaction_isolate_freepages: range=\(0x600 ~ 0x600\) nr_scanned=0 nr_taken=0$/,
      ),
    );
    expect(lines.at(-1)).toMatch(/status=contended$/);
    expect(drv.owned.size).toBe(512);
    expect(m.mem.warnings).toEqual([]);
    expectInvariants(m);
  });

  it('direct compaction with SIGKILL pending tries no further zone', () => {
    // DMA and DMA32, each a checkerboard of unmovable and free pages: suitable, but
    // compaction cannot help, so without the signal both zones are tried.
    const run = (kill: boolean) => {
      const m = smallMachine('32M', { profile, zones: 'x86_64' });
      const all: number[] = [];
      // Down to the lowmem reserves of each zone.
      for (const gfp of [GFP.KERNEL, GFP.KERNEL | __GFP.DMA32, GFP.KERNEL | __GFP.DMA])
        for (let p = m.allocPages(gfp, 0); p >= 0; p = m.allocPages(gfp, 0)) all.push(p);
      expect(m.mem.populatedZones.map((z) => z.nrFreePages)).toEqual([0, 0]);
      for (const p of all) if (p % 2) m.putPage(p);
      const rec = traceRecorder(m, { events: ['mm_compaction_begin', 'mm_compaction_end'] });
      const t = m.sched.spawn('alloc', () =>
        allocPagesDirectCompact(m, {
          gfp: GFP.HIGHUSER_MOVABLE,
          order: 2,
          allocFlags: 0,
          prio: COMPACT_PRIO.SYNC_LIGHT,
        }),
      );
      if (kill) m.sched.sendSigkill(t);
      expect(m.sched.runToEnd(t)).toBe(-1);
      rec.stop();
      expectInvariants(m);
      return rec.lines.filter((l) => l.includes('mm_compaction_end'));
    };
    expect(run(false)).toHaveLength(2);
    const killed = run(true);
    expect(killed).toHaveLength(1);
    expect(killed[0]).toMatch(/status=contended$/);
  });
});

describe('sendSigkill', () => {
  it('marks the task, not its siblings; a finished task is left alone', () => {
    const m = smallMachine('4M');
    const a = m.sched.spawn('a', function* () {
      yield { op: 'a' };
    });
    const b = m.sched.spawn('b', function* () {
      yield { op: 'b' };
    });
    m.sched.sendSigkill(a);
    expect(a.sigkill).toBe(true);
    expect(b.sigkill).toBe(false);
    m.sched.runToEnd(b);
    m.sched.sendSigkill(b);
    expect(b.sigkill).toBe(false);
    m.sched.runToEnd(a);
  });
});
