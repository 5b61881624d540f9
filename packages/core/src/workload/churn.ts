/**
 * Workloads that fragment a machine reproducibly from its seed.
 * @module
 */

import { freePages } from '../buddy/free_page.js';
import { __GFP, GFP } from '../buddy/gfp.js';
import { allocPages } from '../buddy/page_alloc.js';
import { checkMachine, checkOptionsObject, MopsError, valueKind } from '../errors.js';
import type { Machine } from '../machine.js';
import { createMovableFiller } from './movable_filler.js';
import { fraction } from './options.js';

export { fraction } from './options.js';

/** Options of {@link mixedChurn}. */
export interface ChurnOptions {
  /** Fraction of the machine's free pages to fill first (0..1, default 0.9). */
  fill?: number;
  /** Fraction of the filled allocations to free again, at random (0..1, default 0.5). */
  free?: number;
  /** Share of unmovable allocations (0..1, default 0.25); the rest are movable. */
  unmovable?: number;
  /** Largest order allocated (default 3). */
  maxOrder?: number;
  /**
   * What a movable allocation is:
   * - `'plain'` (default): a GFP_HIGHUSER_MOVABLE block nobody publishes, standing for the
   *   LRU pages of a real machine, which mops does not migrate (it models movable_ops pages
   *   only): compaction scans such pages and leaves them where they are;
   * - `'filler'`: 2^order order-0 pages of the machine's filler driver
   *   ({@link createMovableFiller}), published movable_ops pages compaction migrates.
   */
  movable?: 'plain' | 'filler';
}

/** What {@link mixedChurn} left allocated. */
export interface ChurnResult {
  /** Blocks still allocated, as [pfn, order, movable] (filler pages one by one, order 0). */
  readonly live: [number, number, boolean][];
  /** Allocations that failed on the way (normal near the watermarks). */
  readonly failed: number;
}

/**
 * Mixed unmovable/movable churn: fill most of memory with blocks of random orders and
 * types drawn from the machine's PRNG, then free a random half, leaving free holes of
 * every size between the live blocks. The allocator keeps the two kinds apart by
 * pageblock (a fallback from an empty machine claims a whole free block for its type), so
 * the unmovable pages end up in pageblocks of their own. With
 * `movable: 'filler'` the movable pages are ones compaction can migrate, and it undoes what
 * it can of the fragmentation; with the default plain pages it can move none of them.
 */
export function mixedChurn(m: Machine, opts: ChurnOptions = {}): ChurnResult {
  checkMachine(m, 'mixedChurn');
  checkOptionsObject(opts, 'mixedChurn', ['fill', 'free', 'unmovable', 'maxOrder', 'movable']);
  m.mem.assertRunning();
  const fill = fraction(opts.fill, 0.9, 'fill');
  const free = fraction(opts.free, 0.5, 'free');
  const unmovable = fraction(opts.unmovable, 0.25, 'unmovable');
  const maxOrder = opts.maxOrder ?? 3;
  const kind = opts.movable ?? 'plain';
  if (kind !== 'plain' && kind !== 'filler')
    throw new MopsError(
      'E_RANGE',
      `movable must be 'plain' or 'filler', got ${valueKind(kind)}`,
      'movable',
    );
  if (!Number.isInteger(maxOrder) || maxOrder < 0 || maxOrder > 10)
    throw new MopsError(
      'E_RANGE',
      `maxOrder must be an integer 0..10, got ${valueKind(maxOrder)}`,
      'maxOrder',
    );
  const mem = m.mem;
  const rnd = m.prng;
  const filler = kind === 'filler' ? createMovableFiller(m) : undefined;
  const owner = mem.owners.register('workload');
  const target = Math.floor(mem.nrFreePages() * fill);
  const live: [number, number, boolean][] = [];
  let used = 0;
  let failed = 0;
  while (used < target && failed < 64) {
    const order = rnd.below(maxOrder + 1);
    const movable = rnd.float() >= unmovable;
    if (movable && filler) {
      const got = filler.alloc(1 << order);
      for (const pfn of got) live.push([pfn, 0, true]);
      used += got.length;
      if (got.length < 1 << order) failed++;
      continue;
    }
    const gfp = movable ? GFP.HIGHUSER_MOVABLE : GFP.KERNEL | __GFP.NOWARN;
    const pfn = allocPages(mem, gfp, order, { owner });
    if (pfn < 0) {
      failed++;
      continue;
    }
    live.push([pfn, order, movable]);
    used += 1 << order;
  }
  const keep: [number, number, boolean][] = [];
  for (const b of live) {
    if (rnd.float() >= free) keep.push(b);
    else if (b[2] && filler) filler.free(b[0]);
    else freePages(mem, b[0], b[1]);
  }
  return { live: keep, failed };
}
