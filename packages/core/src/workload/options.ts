/**
 * Checking the numeric options of the workloads.
 * @module
 */

import { MopsError, valueKind } from '../errors.js';

/** An option in 0..1 (`dflt` when absent); MopsError E_RANGE otherwise. */
export function fraction(v: number | undefined, dflt: number, field: string): number {
  const x = v ?? dflt;
  if (!(typeof x === 'number' && x >= 0 && x <= 1))
    throw new MopsError('E_RANGE', `${field} must be between 0 and 1, got ${valueKind(x)}`, field);
  return x;
}
