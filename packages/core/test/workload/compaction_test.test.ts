import { describe, expect, it } from 'vitest';
import { checkInvariants, compactionTest, createMachine, PROFILE_NAMES } from '../../src/index.js';

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

  it('with chunks interleaved page by page, compaction still turns part of the checkerboard into huge pages', () => {
    const withCompaction = compactionTest(createMachine({ memory: '256M', contents: false }), {
      interleave: true,
    });
    const m = createMachine({ memory: '256M', contents: false });
    m.mem.slowpath.length = 0; // no direct compaction
    const without = compactionTest(m, { interleave: true });
    expect(withCompaction.allocated).toBeGreaterThan(without.allocated);
    expect(without.passed).toBe(false);
  });
});
