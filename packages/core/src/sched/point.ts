/**
 * What a kernel generator may yield: a scheduling point, an object with a string `op`
 * (`{ op: 'trylock', pfn }`). Anything else is thrown back at the yield that made it.
 * @module
 */

import { MopsError, printable } from '../errors.js';
import type { Yielded } from './types.js';

/** Whether `v` is a scheduling point. */
export function isPoint(v: unknown): v is Yielded {
  return typeof v === 'object' && v !== null && typeof (v as { op?: unknown }).op === 'string';
}

/** The error thrown back into a generator that yielded `v`, which is not a scheduling point. */
export function notAPoint(v: unknown): MopsError {
  return new MopsError(
    'E_USAGE',
    `yielded ${printable(v)}, which is not a scheduling point: yield an object with a string op, e.g. { op: 'my_step' }`,
    'yield',
  );
}
