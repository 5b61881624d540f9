import { describe, expect, it } from 'vitest';
import {
  COMPACT_PRIO,
  checkInvariants,
  compactionTest,
  createMachine,
  PROFILE_NAMES,
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
      // 100 MiB chunks leave 100 MiB holes, plus the memory the test never touched.
      expect(r.log[0]).toMatch(/^MemFree: \d+ kB, Hugepagesize: 2048 kB$/);
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
    expect(r.log.at(-1)).toBe(`Number of huge pages allocated = ${r.allocated}`);
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
    const locked = /^locked (\d+) pages \((-?\d+) MiB\)/.exec(r.log[1]);
    expect(Number(locked?.[2])).toBe(Math.floor((Number(locked?.[1]) * 4096) / 2 ** 20));
    expect(Number(locked?.[2])).toBeGreaterThan(3000);
    // The selftest's chunks on a machine this size; a smaller one says what it used.
    expect(r.log[1]).toMatch(/ in chunks of 100 MiB, freeing every other chunk$/);
    const small = createMachine({ memory: '256M', contents: false });
    small.mem.slowpath.length = 0;
    expect(compactionTest(small).log[1]).toMatch(
      / in chunks of 20\.5 MiB \(the selftest maps 100 MiB; a tenth of the 80 % on this machine\), freeing every other chunk$/,
    );
    // A size the caller chose is just said.
    const chosen = createMachine({ memory: '256M', contents: false });
    chosen.mem.slowpath.length = 0;
    expect(compactionTest(chosen, { chunkPages: 1000 }).log[1]).toMatch(
      / in chunks of 3\.9 MiB, freeing every other chunk$/,
    );
  });

  it('says an interleaved run frees every other page, not every other chunk', () => {
    const small = createMachine({ memory: '64M', contents: false });
    small.mem.slowpath.length = 0;
    const i = compactionTest(small, { interleave: true });
    expect(i.log[1]).toMatch(/interleaved page by page, freeing every other page$/);
    expect(i.log[1]).not.toMatch(/every other chunk/);
  });

  it.each(PROFILE_NAMES)(
    'the huge-page requests try direct compaction at ASYNC, then SYNC_LIGHT, never SYNC_FULL (a costly order) — %s',
    (profile) => {
      // Chunks interleaved page by page: a checkerboard no request finds a free huge page in.
      const m = createMachine({ memory: '256M', contents: false, profile });
      const prios = new Set<number>();
      m.trace.on('mm_compaction_try_to_compact_pages', (e) => {
        prios.add(e.prio);
      });
      const r = compactionTest(m, { interleave: true });
      expect([...prios].sort()).toEqual([COMPACT_PRIO.SYNC_LIGHT, COMPACT_PRIO.ASYNC]);
      expect(m.mem.vmstat.get('compact_stall')).toBeGreaterThan(0);
      const bare = createMachine({ memory: '256M', contents: false, profile });
      bare.mem.slowpath.length = 0; // no direct compaction
      expect(r.allocated).toBeGreaterThanOrEqual(
        compactionTest(bare, { interleave: true }).allocated,
      );
      // The selftest's two-line message, as ksft_print_msg() prints it.
      if (!r.passed)
        expect(r.log.at(-1)).toBe(
          `ERROR: Less than 1/${r.compactionIndex} of memory is available\nas huge pages`,
        );
      expect(checkInvariants(m).ok).toBe(true);
    },
  );
});
