/**
 * Workloads that fragment a machine reproducibly from its seed.
 * @module
 */

import { freePages } from '../buddy/free_page.js';
import { __GFP, GFP } from '../buddy/gfp.js';
import { allocPages } from '../buddy/page_alloc.js';
import { MopsError } from '../errors.js';
import type { Machine } from '../machine.js';

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
}

/** What {@link mixedChurn} left allocated. */
export interface ChurnResult {
  /** Blocks still allocated, as [pfn, order, movable]. */
  readonly live: [number, number, boolean][];
  /** Allocations that failed on the way (normal near the watermarks). */
  readonly failed: number;
}

/** An option in 0..1 (`dflt` when absent); MopsError E_RANGE otherwise. */
export function fraction(v: number | undefined, dflt: number, field: string): number {
  const x = v ?? dflt;
  if (!(x >= 0 && x <= 1))
    throw new MopsError('E_RANGE', `${field} must be between 0 and 1, got ${x}`, field);
  return x;
}

/**
 * Mixed unmovable/movable churn: fill most of memory with blocks of random orders and
 * types drawn from the machine's PRNG, then free a random half, leaving unmovable pages
 * scattered through movable pageblocks — the fragmentation compaction exists to undo.
 */
export function mixedChurn(m: Machine, opts: ChurnOptions = {}): ChurnResult {
  m.mem.assertRunning();
  const fill = fraction(opts.fill, 0.9, 'fill');
  const free = fraction(opts.free, 0.5, 'free');
  const unmovable = fraction(opts.unmovable, 0.25, 'unmovable');
  const maxOrder = opts.maxOrder ?? 3;
  if (!Number.isInteger(maxOrder) || maxOrder < 0 || maxOrder > 10)
    throw new MopsError(
      'E_RANGE',
      `maxOrder must be an integer 0..10, got ${maxOrder}`,
      'maxOrder',
    );
  const mem = m.mem;
  const rnd = m.prng;
  const owner = mem.owners.register('workload');
  const target = Math.floor(mem.nrFreePages() * fill);
  const live: [number, number, boolean][] = [];
  let used = 0;
  let failed = 0;
  while (used < target && failed < 64) {
    const order = rnd.below(maxOrder + 1);
    const movable = rnd.float() >= unmovable;
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
    if (rnd.float() < free) freePages(mem, b[0], b[1]);
    else keep.push(b);
  }
  return { live: keep, failed };
}
