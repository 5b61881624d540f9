import { describe, expect, it } from 'vitest';
import { allocAllFree, GFP, MIGRATE, type ProfileName } from '../../src/index.js';
import { expectInvariants, smallMachine, topZone } from '../helpers.js';

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

/**
 * min 256, low 320 pages. 300 free pages in block 0: a GFP_ATOMIC order-1 request passes
 * only the slow path and reserves block 0. Then `more` pages are freed.
 */
function reservedThenFreed(profile: ProfileName, more: number[]) {
  const m = smallMachine('8M', { profile, minFreeKbytes: 1024 });
  const z = topZone(m);
  expect([z.watermark[0], z.watermark[1]]).toEqual([256, 320]);
  allocAllFree(m);
  for (const p of range(0, 300)) m.putPage(p);
  const atomic = m.allocPages(GFP.ATOMIC, 1);
  expect(atomic).toBeLessThan(512);
  expect(z.nrReservedHighatomic).toBe(512);
  for (const p of more) m.putPage(p);
  return { m, z };
}

describe('zone_watermark_fast(): the order-0 shortcut and the high-atomic reserve', () => {
  // 4.7 to 5.9: free_pages > mark + lowmem_reserve passes, the reserve not subtracted
  // (598 > 320). 5.10 on: the reserve is subtracted (86), and the full check fails too.
  it.each([
    ['v4.8', true],
    ['v6.0', false],
    ['v6.3', false],
  ] as const)(
    '%s: GFP_KERNEL order 0 with the free pages mostly reserved succeeds: %s',
    (p, ok) => {
      // 300 more free pages in block 1: 598 free, 512 counted reserved.
      const { m, z } = reservedThenFreed(p, range(600, 900));
      expect(z.nrFreePages).toBe(598);
      const failures = m.mem.allocFailures;
      const pfn = m.allocPages(GFP.KERNEL, 0);
      expect(pfn >= 0).toBe(ok);
      expect(m.mem.allocFailures - failures).toBe(ok ? 0 : 1);
      // Served outside the reserve, which keeps its block and count.
      if (ok) expect(pfn).toBeGreaterThanOrEqual(512);
      expect(m.mem.pageblockMigratetype(0)).toBe(MIGRATE.HIGHATOMIC);
      expect(z.nrReservedHighatomic).toBe(512);
      expectInvariants(m);
    },
  );

  // Block 0 wholly free and reserved, nothing else: 510 free pages, all reserved.
  it.each([
    ['v4.8', true],
    ['v6.0', false],
  ] as const)(
    '%s: with only the reserve free, rmqueue() is tried (and finds nothing): %s',
    (p, tried) => {
      const { m, z } = reservedThenFreed(p, range(300, 512));
      expect(z.nrFreePages).toBe(510);
      const taken: number[] = [];
      m.trace.on('mm_page_alloc_zone_locked', (e) => taken.push(e.pfn));
      expect(m.allocPages(GFP.KERNEL, 0)).toBe(-1);
      // v4.8's __rmqueue() traces its failures: once in the fast path, once at the min mark.
      expect(taken).toEqual(tried ? [-1, -1] : []);
      expect(z.nrFreePages).toBe(510);
      expectInvariants(m);
    },
  );
});
