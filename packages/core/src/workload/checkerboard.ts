/**
 * The checkerboard: the most fragmented state memory can be in — every other page free.
 * @module
 */

import { putPage } from '../buddy/free_page.js';
import { checkMachine, checkOptionsObject, MopsError, valueKind } from '../errors.js';
import type { Machine } from '../machine.js';
import { allocAllFree, createMovableFiller } from './movable_filler.js';

/** Options of {@link checkerboard}. */
export interface CheckerboardOptions {
  /** Owner name of the pages kept in `'plain'` mode (default `'checkerboard'`). */
  owner?: string;
  /**
   * What the kept pages are: `'plain'` (default) allocated pages with no movable_ops, which
   * compaction cannot move; `'driver'` pages of the machine's filler driver
   * (`createMovableFiller`), which it can.
   */
  movable?: 'driver' | 'plain';
}

/**
 * checkerboard(machine): allocates every free page as an order-0 page (the reserves below
 * the watermarks included), then frees every page with an odd pfn. No two free pages are
 * buddies afterwards, so every free block has order 0 and each lies between allocated
 * pages: unusable_index reads 1.000 at every order above 0 and the fragmentation score is
 * 100 in every zone. Deterministic (no randomness). Returns the pfns still allocated (the
 * even ones that were free before), ascending.
 */
export function checkerboard(machine: Machine, opts: CheckerboardOptions = {}): number[] {
  checkMachine(machine, 'checkerboard');
  checkOptionsObject(opts, 'checkerboard', ['owner', 'movable']);
  const mode = opts.movable ?? 'plain';
  if (mode !== 'plain' && mode !== 'driver')
    throw new MopsError(
      'E_USAGE',
      `checkerboard: movable must be 'plain' or 'driver', got ${valueKind(mode)}`,
      'movable',
    );
  const mem = machine.mem;
  const filler = mode === 'driver' ? createMovableFiller(machine) : undefined;
  const grabbed = Float64Array.from(allocAllFree(machine, opts.owner ?? 'checkerboard')).sort();
  const kept: number[] = [];
  for (const pfn of grabbed) {
    if (pfn & 1) putPage(mem, pfn);
    else {
      filler?.adopt(pfn);
      kept.push(pfn);
    }
  }
  return kept;
}
