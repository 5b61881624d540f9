import { COMPACT, compactMemory, GFP, pageIsBuddy } from '@mops/core';
import { describe, expect, it } from 'vitest';
import { expectClean, PROFILES, run, withBalloon } from './helpers.js';

/**
 * The S32 layout with a real balloon: 8 MiB, one Normal zone of 4 MOVABLE pageblocks; the
 * balloon holds pfns 0-9 and the rest of block 0 is free; blocks 1-2 are full of other
 * pages; block 3 has one allocated page at its first pfn and 511 free pages.
 */
function s32Balloon(profile: (typeof PROFILES)[number]) {
  const rig = withBalloon(profile, 0, {}, { memory: '8M' });
  const { m, vb } = rig;
  while (m.allocPages(GFP.HIGHUSER_MOVABLE, 0) >= 0);
  for (let p = 0; p < 10; p++) m.putPage(p);
  expect(run(m, () => vb.fill(10))).toBe(10);
  for (let p = 10; p < 512; p++) m.putPage(p);
  for (let p = 1537; p < 2048; p++) m.putPage(p);
  return rig;
}

describe.each(PROFILES)('S32 compaction with a real balloon, %s', (profile) => {
  it('S32 compact_memory moves the 10 balloon pages from block 0 into block 3', () => {
    const { m, vb, dev } = s32Balloon(profile);
    const src = [...dev.listPages()].sort((a, b) => a - b);
    expect(src).toEqual(Array.from({ length: 10 }, (_, i) => i));
    const dsts: number[] = [];
    const orig = vb.migratepage.bind(vb);
    vb.dev.migratepage = (d, newpage, page, mode) => {
      dsts.push(newpage);
      return orig(d, newpage, page, mode);
    };
    const ev0 = m.mem.vmstat.snapshotEvents();
    const d = (n: string) => m.mem.vmstat.get(n) - ev0[n];
    expect(run(m, () => compactMemory(m))).toEqual([COMPACT.COMPLETE]);
    expect(d('balloon_migrate')).toBe(10);
    expect(d('pgmigrate_success')).toBe(10);
    // §12 S32 exact figures: the split list is handed out from its head (v4.8-v6.3), or
    // split from the per-order lists lowest pfn first (v6.17).
    expect(dsts).toEqual(
      profile === 'v6.17'
        ? [1537, 1538, 1539, 1540, 1541, 1542, 1543, 1544, 1545, 1546]
        : [1551, 1550, 1549, 1548, 1547, 1546, 1545, 1544, 1543, 1542],
    );
    for (const t of dsts) expect(t).toBeGreaterThan(Math.max(...src));
    expect([...dev.listPages()].sort((a, b) => a - b)).toEqual([...dsts].sort((a, b) => a - b));
    expect(dev.isolatedPages).toBe(0);
    for (const t of dsts) expect(vb.host.isInflated(t)).toBe(true);
    for (const s of src) expect(vb.host.isInflated(s)).toBe(false);
    expect(pageIsBuddy(m.mem, 0, 9)).toBe(true);
    expect(m.mem.warnings).toEqual([]);
    expectClean(m);
  });
});
