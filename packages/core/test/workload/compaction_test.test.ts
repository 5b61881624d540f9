import { describe, expect, it } from 'vitest';
import {
  COMPACT_PRIO,
  checkInvariants,
  compactionState,
  compactionTest,
  createMachine,
  PF_MEMALLOC,
  PROFILE_NAMES,
  type ProfileName,
  traceRecorder,
} from '../../src/index.js';

describe('compaction_test (tools/testing/selftests/mm/compaction_test.c)', () => {
  it.each(PROFILE_NAMES)(
    'passes on a 256 MiB machine once compaction moves the locked pages — %s',
    (profile) => {
      const m = createMachine({ memory: '256M', profile, contents: false });
      const r = compactionTest(m);
      expect(r.requested).toBeGreaterThan(0);
      expect(r.allocated).toBeGreaterThanOrEqual(1);
      expect(r.compactionIndex).toBeLessThanOrEqual(3);
      expect(r.passed).toBe(true);
      expect(r.skipped).toBe(false);
      expect(r.exitStatus).toBe(0);
      // 100 MiB chunks leave 100 MiB holes, plus the memory the test never touched.
      expect(r.notes[0]).toMatch(/^MemFree: \d+ kB, Hugepagesize: 2048 kB$/);
      expect(checkInvariants(m).ok).toBe(true);
    },
  );

  it("the index is the selftest's integer division: a ratio between 3 and 4 still passes", () => {
    const m = createMachine({ memory: '256M', contents: false });
    m.mem.slowpath.length = 0; // no direct compaction: only the untouched memory is left
    const r = compactionTest(m, { chunkPages: 600 });
    const ratio = Math.floor(r.memFreeKb * 0.8) / (r.allocated * r.hugepageKb);
    expect(ratio).toBeGreaterThan(3);
    expect(ratio).toBeLessThan(4);
    expect(r.compactionIndex).toBe(3);
    expect(r.passed).toBe(true);
    expect(r.log).toEqual([`No of huge pages allocated = ${r.allocated}`]);
  });

  it("frees the chunks the selftest's unmap loop frees: the last mapped, then every other one back", () => {
    for (const chunks of [3, 4]) {
      const m = createMachine({ memory: '64M', contents: false });
      m.mem.slowpath.length = 0; // no compaction: the filler pages stay where they are
      const target = Math.floor(m.mem.nrFreePages() * 0.8);
      const chunkPages = Math.ceil(target / chunks);
      const allocated: number[] = [];
      const freed = new Set<number>();
      let phase: 'fill' | 'unmap' | 'done' = 'fill';
      m.trace.on('mm_page_alloc', (e) => {
        if (e.order !== 0) phase = 'done';
        else if (phase === 'fill') allocated.push(e.pfn);
      });
      m.trace.on('mm_page_free', (e) => {
        if (phase === 'done') return;
        phase = 'unmap';
        freed.add(e.pfn);
      });
      compactionTest(m, { chunkPages });
      const chunk = (c: number) => allocated.slice(c * chunkPages, (c + 1) * chunkPages);
      expect(allocated.length).toBe(target);
      const unmapped = [...Array(chunks).keys()].filter((c) => chunk(c).every((p) => freed.has(p)));
      const kept = [...Array(chunks).keys()].filter((c) => chunk(c).every((p) => !freed.has(p)));
      // Chunks mapped 0..k-1; the list runs k-1..0 and the loop unmaps k-1, k-3, …
      const expected = [...Array(chunks).keys()].filter((c) => (chunks - 1 - c) % 2 === 0);
      expect(unmapped).toEqual(expected);
      expect(kept.length + unmapped.length).toBe(chunks);
    }
  });

  it('reports the locked MiB without 32-bit overflow (4 GiB)', () => {
    const big = createMachine({ memory: '4G', contents: false });
    big.mem.slowpath.length = 0;
    const r = compactionTest(big);
    const locked = /^locked (\d+) pages \((-?\d+) MiB\)/.exec(r.notes[1]);
    expect(Number(locked?.[2])).toBe(Math.floor((Number(locked?.[1]) * 4096) / 2 ** 20));
    expect(Number(locked?.[2])).toBeGreaterThan(3000);
    // The selftest's chunks on a machine this size; a smaller one says what it used.
    expect(r.notes[1]).toMatch(/ in chunks of 100 MiB, freeing every other chunk$/);
    const small = createMachine({ memory: '256M', contents: false });
    small.mem.slowpath.length = 0;
    expect(compactionTest(small).notes[1]).toMatch(
      / in chunks of 20\.5 MiB \(the selftest maps 100 MiB; a tenth of the 80 % on this machine\), freeing every other chunk$/,
    );
    // A size the caller chose is just said.
    const chosen = createMachine({ memory: '256M', contents: false });
    chosen.mem.slowpath.length = 0;
    expect(compactionTest(chosen, { chunkPages: 1000 }).notes[1]).toMatch(
      / in chunks of 3\.9 MiB, freeing every other chunk$/,
    );
  });

  it("says where mops's chunks depart from v4.8's 1 MiB mappings", () => {
    const m = createMachine({ memory: '2G', profile: 'v4.8', contents: false });
    m.mem.slowpath.length = 0;
    expect(compactionTest(m).notes[1]).toMatch(
      / in chunks of 100 MiB \(the selftest maps 1 MiB, which back to back would leave holes of half a pageblock that compaction_suitable\(\) rejects\), freeing every other chunk$/,
    );
  });

  it('a chunk that is not a whole number of pages is E_RANGE, before anything is locked', () => {
    const m = createMachine({ memory: '64M', contents: false });
    const free = m.mem.nrFreePages();
    for (const chunkPages of [0, -5, 1.5, Number.NaN])
      expect(() => compactionTest(m, { chunkPages })).toThrow(
        expect.objectContaining({ code: 'E_RANGE', field: 'chunkPages' }),
      );
    expect(m.mem.nrFreePages()).toBe(free);
    expect(checkInvariants(m).ok).toBe(true);
  });

  it('says an interleaved run frees every other page, not every other chunk', () => {
    const small = createMachine({ memory: '64M', contents: false });
    small.mem.slowpath.length = 0;
    const i = compactionTest(small, { interleave: true });
    expect(i.notes[1]).toMatch(/interleaved page by page, freeing every other page$/);
    expect(i.notes[1]).not.toMatch(/every other chunk/);
  });

  it.each(PROFILE_NAMES)(
    'the huge-page requests try direct compaction at ASYNC, then SYNC_LIGHT, never SYNC_FULL (a costly order) — %s',
    (profile) => {
      // Chunks interleaved page by page: a checkerboard no request finds a free huge page in.
      const m = createMachine({ memory: '256M', contents: false, profile });
      const prios: number[] = [];
      m.trace.on('mm_compaction_try_to_compact_pages', (e) => {
        prios.push(e.prio);
      });
      const r = compactionTest(m, { interleave: true });
      expect(new Set(prios)).toEqual(new Set([COMPACT_PRIO.SYNC_LIGHT, COMPACT_PRIO.ASYNC]));
      // The failed request that ends the write: ASYNC, then SYNC_LIGHT, then nothing more.
      expect(prios.slice(-2)).toEqual([COMPACT_PRIO.ASYNC, COMPACT_PRIO.SYNC_LIGHT]);
      expect(m.mem.vmstat.get('compact_stall')).toBeGreaterThan(0);
      const bare = createMachine({ memory: '256M', contents: false, profile });
      bare.mem.slowpath.length = 0; // no direct compaction
      expect(r.allocated).toBeGreaterThanOrEqual(
        compactionTest(bare, { interleave: true }).allocated,
      );
      expect(checkInvariants(m).ok).toBe(true);
    },
  );
});

describe('compaction_test runs as the selftest process: one task, one CPU', () => {
  /** The context columns of an ftrace line: comm, pid and CPU. */
  const context = (line: string) => {
    const c = /^\s*(.+)-(\d+)\s+\[(\d{3})\]/.exec(line);
    return c ? { comm: c[1], pid: Number(c[2]), cpu: Number(c[3]) } : undefined;
  };

  it.each(PROFILE_NAMES)(
    'its page faults, unmaps, huge-page allocations and direct compaction all trace as compaction_test on CPU 0 — %s',
    (profile) => {
      const m = createMachine({ memory: '64M', contents: false, profile });
      const rec = traceRecorder(m, {
        events: [
          'mm_page_alloc',
          'mm_page_free',
          'mm_compaction_try_to_compact_pages',
          'mm_compaction_begin',
        ],
      });
      compactionTest(m, { interleave: true });
      rec.stop();
      const compacting = rec.lines.filter((l) => l.includes('mm_compaction_try_to_compact_pages'));
      expect(compacting.length).toBeGreaterThan(1);
      expect(rec.lines.some((l) => / order=9 /.test(l) && l.includes('mm_page_alloc'))).toBe(true);
      const contexts = new Set(rec.lines.map((l) => JSON.stringify(context(l))));
      // The trace header's #P:2: CPU 0, the one task the test's process is.
      expect([...contexts].map((c) => JSON.parse(c))).toEqual([
        { comm: 'compaction_test', pid: 1, cpu: 0 },
      ]);
    },
  );

  it('direct compaction runs with PF_MEMALLOC in that task, which has it cleared again after', () => {
    const m = createMachine({ memory: '64M', contents: false });
    const flags: number[] = [];
    m.trace.on('mm_compaction_try_to_compact_pages', () => {
      flags.push(m.sched.current?.flags ?? -1);
    });
    m.trace.on('mm_page_alloc', (e) => {
      if (e.order === 9) flags.push(m.sched.current?.flags ?? -1);
    });
    compactionTest(m, { interleave: true });
    expect(flags).toContain(PF_MEMALLOC);
    // Each huge page the allocator hands out is traced after the compaction returned.
    expect(flags.at(-1)).toBe(0);
    expect(m.sched.tasks).toEqual([]);
    // The slow path is the machine's own again: a later allocation still compacts.
    expect(m.mem.slowpath.length).toBe(1);
  });

  it('refuses to run beside another task or inside one (E_STATE), leaving the machine as it was', () => {
    const m = createMachine({ memory: '64M', contents: false });
    const free = m.mem.nrFreePages();
    let inner: unknown;
    const t = m.sched.spawn('other', function* () {
      try {
        compactionTest(m);
      } catch (e) {
        inner = e;
      }
      yield { op: 'wait' };
    });
    expect(() => compactionTest(m)).toThrow(expect.objectContaining({ code: 'E_STATE' }));
    m.sched.runToEnd(t);
    expect(inner).toMatchObject({ code: 'E_STATE', message: expect.stringMatching(/other\/1/) });
    expect(m.mem.nrFreePages()).toBe(free);
    expect(checkInvariants(m).ok).toBe(true);
    expect(compactionTest(m).passed).toBe(true);
  });
});

describe("compaction_test prints what the profile's release prints", () => {
  const failing = (profile: ProfileName) => {
    // No direct compaction and a checkerboard: a few huge pages from the untouched memory.
    const m = createMachine({ memory: '64M', contents: false, profile });
    m.mem.slowpath.length = 0;
    return compactionTest(m, { interleave: true });
  };

  it.each(['v4.8', 'v6.0', 'v6.3'] as const)(
    '%s: printf, 100000 huge pages asked for, "No of huge pages allocated"',
    (profile) => {
      const m = createMachine({ memory: '256M', contents: false, profile });
      const r = compactionTest(m);
      expect(r.requested).toBe(100000);
      expect(r.stdout).toBe(`No of huge pages allocated = ${r.allocated}\n`);
      expect(r.stderr).toBe('');
      expect(r.exitStatus).toBe(0);
      expect(r.log).toEqual([`No of huge pages allocated = ${r.allocated}`]);
      // The write asks for more than memory holds: the kernel allocates to its first failure.
      expect(m.mem.allocFailures).toBe(1);
      const f = failing(profile);
      expect(f.passed).toBe(false);
      expect(f.stdout).toBe(
        `No of huge pages allocated = ${f.allocated}\nNot OK. Compaction test failed.`,
      );
      expect(f.stderr).toBe(
        `ERROR: Less that 1/${f.compactionIndex} of memory is available\nas huge pages\n`,
      );
      expect(f.exitStatus).toBe(255);
    },
  );

  it('v6.17: TAP, half of 80 % of MemFree asked for, "Number of huge pages allocated"', () => {
    const r = compactionTest(createMachine({ memory: '256M', contents: false, profile: 'v6.17' }));
    expect(r.requested).toBe(Math.floor(Math.floor(r.memFreeKb * 0.8) / 2048 / 2));
    expect(r.stdout).toBe(
      `TAP version 13\n1..1\n# Number of huge pages allocated = ${r.allocated}\nok 1 check_compaction\n# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0\n`,
    );
    expect(r.exitStatus).toBe(0);
    const f = failing('v6.17');
    expect(f.stdout).toBe(
      `TAP version 13\n1..1\n# Number of huge pages allocated = ${f.allocated}\n# ERROR: Less than 1/${f.compactionIndex} of memory is available\nas huge pages\nnot ok 1 check_compaction\n# Totals: pass:0 fail:1 xfail:0 xpass:0 skip:0 error:0\n`,
    );
    expect(f.stderr).toBe('');
    expect(f.exitStatus).toBe(1);
  });

  it('no huge page at all: the printf forms die of SIGFPE, v6.17 says so', () => {
    for (const profile of ['v4.8', 'v6.3'] as const) {
      const r = compactionTest(createMachine({ memory: '4M', contents: false, profile }));
      expect(r.allocated).toBe(0);
      expect(r.passed).toBe(false);
      expect([r.stdout, r.stderr, r.exitStatus]).toEqual(['', '', 128 + 8]);
      expect(r.notes.at(-1)).toMatch(/SIGFPE/);
    }
    const r = compactionTest(createMachine({ memory: '4M', contents: false, profile: 'v6.17' }));
    expect(r.stdout).toBe(
      'TAP version 13\n1..1\n# ERROR: No memory is available as huge pages\nnot ok 1 check_compaction\n# Totals: pass:0 fail:1 xfail:0 xpass:0 skip:0 error:0\n',
    );
    expect(r.exitStatus).toBe(1);
  });

  it.each([
    ['v4.8', 0],
    ['v6.3', 4],
  ] as const)(
    '%s: a skip (compact_unevictable_allowed = 0) prints the three lines, exit %i',
    (profile, status) => {
      const m = createMachine({ memory: '64M', contents: false, profile });
      compactionState(m).sysctl.compactUnevictableAllowed = 0;
      const free = m.mem.nrFreePages();
      const r = compactionTest(m);
      expect(r.skipped).toBe(true);
      expect(r.stdout).toBe(
        "Either the sysctl compact_unevictable_allowed is not\nset to 1 or couldn't read the proc file.\nSkipping the test\n",
      );
      expect(r.exitStatus).toBe(status);
      expect(m.mem.nrFreePages()).toBe(free);
    },
  );

  it('v6.17: a skip is TAP\'s "1..0 # SKIP", exit KSFT_SKIP', () => {
    const m = createMachine({ memory: '64M', contents: false, profile: 'v6.17' });
    compactionState(m).sysctl.compactUnevictableAllowed = 0;
    const r = compactionTest(m);
    expect(r.stdout).toBe(
      "TAP version 13\n# Compaction isn't allowed\n1..0 # SKIP Prerequisites unsatisfied\n",
    );
    expect(r.exitStatus).toBe(4);
  });

  it.each(PROFILE_NAMES)(
    "mops's own lines are notes, never in the selftest's output — %s",
    (profile) => {
      const r = compactionTest(createMachine({ memory: '64M', contents: false, profile }));
      expect(r.notes.map((n) => n.split(' ')[0])).toEqual(['MemFree:', 'locked', 'requested']);
      for (const out of [r.stdout, r.stderr, ...r.log])
        expect(out).not.toMatch(/MemFree|locked|requested|compaction index/);
    },
  );
});
