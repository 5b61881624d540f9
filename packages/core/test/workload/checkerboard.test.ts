/** The checkerboard workload: every other page free, all free blocks of order 0. */
import { describe, expect, it } from 'vitest';
import {
  fragmentationIndex,
  fragmentationScoreNode,
  unusableIndex,
} from '../../src/compaction/metrics.js';
import { MopsError, PROFILE_NAMES, procView } from '../../src/index.js';
import { checkerboard } from '../../src/workload/checkerboard.js';
import { createMovableFiller } from '../../src/workload/movable_filler.js';
import { expectInvariants, nrFree, smallMachine, topZone } from '../helpers.js';

describe.each(PROFILE_NAMES)('checkerboard — %s', (profile) => {
  it('plain: even pfns stay allocated, odd ones are free order-0 blocks', () => {
    const m = smallMachine('4M', { profile });
    const kept = checkerboard(m);
    expect(kept).toEqual(Array.from({ length: 512 }, (_, i) => 2 * i));
    const z = topZone(m);
    expect(nrFree(z)).toEqual([512, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const p = m.mem.pages;
    for (let pfn = 0; pfn < 1024; pfn++) expect(p.refcount[pfn]).toBe(pfn & 1 ? 0 : 1);
    expect(m.mem.owners.name(p.ownerOf(0))).toBe('checkerboard');
    expect(unusableIndex(z, 1)).toBe(1000);
    // 512 blocks of one page at order 1: 1000 - (1000 + 256000)/512 = 1000 - 501
    expect(fragmentationIndex(z, 1)).toBe(499);
    if (profile !== 'v4.8') expect(fragmentationScoreNode(m.mem)).toBe(99);
    expectInvariants(m);
    expect(m.mem.warnings).toEqual([]);
  });

  it('driver: the kept pages belong to the filler; same layout as plain', () => {
    const m = smallMachine('4M', { profile });
    const kept = checkerboard(m, { movable: 'driver' });
    const f = createMovableFiller(m);
    expect([...f.pages].sort((a, b) => a - b)).toEqual(kept);
    expect(nrFree(topZone(m))[0]).toBe(512);
    expectInvariants(m);
    expect(m.mem.warnings).toEqual([]);
  });
});

describe('checkerboard options', () => {
  it('is deterministic and takes the reserves too', () => {
    const a = smallMachine('8M', { minFreeKbytes: 512 });
    const b = smallMachine('8M', { minFreeKbytes: 512 });
    expect(checkerboard(a)).toEqual(checkerboard(b));
    expect(procView(a, 'buddyinfo')).toBe(procView(b, 'buddyinfo'));
    expect(nrFree(topZone(a))).toEqual([1024, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('rejects an unknown movable mode', () => {
    const m = smallMachine('4M');
    expect(() => checkerboard(m, { movable: 'lru' as 'plain' })).toThrow(MopsError);
  });
});
