import { expect } from 'vitest';
import {
  GFP,
  type Machine,
  MIGRATE,
  type ProfileName,
  resetCachedPositions,
} from '../../src/index.js';
import { TestDriver } from '../driver.js';
import { smallMachine } from '../helpers.js';

/**
 * Puts every zone's cached scanner positions where the scanners meeting leaves them
 * (reset_cached_positions(): both migrate positions at the zone start, the free position
 * at the first pfn of the last pageblock). A fresh zone has all of them at 0, so in a zone
 * starting at pfn 0, as in every smallMachine, the first compaction from the cached
 * positions meets at once and scans nothing; tests of a compaction that scans start here.
 */
export function scannersMetBefore(m: Machine): void {
  for (const z of m.mem.populatedZones) resetCachedPositions(z);
}

/** Options of {@link driverPagesFirst}. */
export interface LayoutOptions {
  /** Free the rest of block 0 (the S32 layout). Default false. */
  freeRestOfBlock0?: boolean;
  /** Free block 3 but its first pfn (the S32 layout). Default true. */
  freeTop?: boolean;
}

/**
 * 8 MiB, one Normal zone of 4 MOVABLE pageblocks: `n` published driver pages at pfns
 * 0..n-1, every other page allocated and unmovable, then (by default) block 3 freed but for
 * its first pfn: the free scanner's targets at the top, the migrate scanner's sources at the
 * bottom, nothing in between.
 */
export function driverPagesFirst(profile: ProfileName, n: number, opts: LayoutOptions = {}) {
  const m = smallMachine('8M', { profile });
  const drv = new TestDriver(m);
  m.registerInvariantChecker('testdrv', () => drv.check());
  for (
    let p = m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
    p >= 0;
    p = m.allocPages(GFP.HIGHUSER_MOVABLE, 0)
  );
  for (let p = 0; p < n; p++) m.putPage(p);
  const pages = drv.alloc(n).sort((a, b) => a - b);
  expect(pages).toEqual(Array.from({ length: n }, (_, i) => i));
  if (opts.freeRestOfBlock0) for (let p = n; p < 512; p++) m.putPage(p);
  if (opts.freeTop ?? true) for (let p = 1537; p < 2048; p++) m.putPage(p);
  return { m, drv };
}

/**
 * 8 MiB, one Normal zone: 100 published driver pages at pfns 512-611 (block 1, of type
 * `blockType`), the rest of blocks 0-1 unmovable; blocks 2-3 a checkerboard of unmovable
 * and free pages (targets, but no free block of order 1 or more).
 */
export function driverPagesInBlock1(profile: ProfileName, blockType: number = MIGRATE.MOVABLE) {
  const m = smallMachine('8M', { profile });
  const drv = new TestDriver(m);
  m.registerInvariantChecker('testdrv', () => drv.check());
  for (let p = m.allocPages(GFP.HIGHUSER_MOVABLE, 0); p >= 0; )
    p = m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
  for (let p = 512; p < 612; p++) m.putPage(p);
  expect(drv.alloc(100).sort((a, b) => a - b)[0]).toBe(512);
  for (let p = 1025; p < 2048; p += 2) m.putPage(p);
  m.mem.setPageblockMigratetype(512, blockType);
  scannersMetBefore(m);
  return { m, drv };
}

/** 8 MiB, every even page an unmovable page, odd pages free: compaction cannot help. */
export function pinnedCheckerboard(profile: ProfileName) {
  const m = smallMachine('8M', { profile });
  const all: number[] = [];
  for (let p = m.allocPages(GFP.KERNEL, 0); p >= 0; p = m.allocPages(GFP.KERNEL, 0)) all.push(p);
  for (const p of all) if (p % 2) m.putPage(p);
  scannersMetBefore(m);
  return m;
}
