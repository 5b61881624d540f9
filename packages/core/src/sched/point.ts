/**
 * What a kernel generator may yield: a scheduling point, an object with a string `op`
 * (`{ op: 'trylock', pfn }`). Anything else is thrown back at the yield that made it.
 * @module
 */

import { MopsError, printable } from '../errors.js';
import type { Yielded } from './types.js';

/** Whether `v` is a scheduling point (a `block` point also names its wait key, a string). */
export function isPoint(v: unknown): v is Yielded {
  if (typeof v !== 'object' || v === null) return false;
  const op = (v as { op?: unknown }).op;
  return (
    typeof op === 'string' && (op !== 'block' || typeof (v as { key?: unknown }).key === 'string')
  );
}

/** The error thrown back into a generator that yielded `v`, which is not a scheduling point. */
export function notAPoint(v: unknown): MopsError {
  return new MopsError(
    'E_USAGE',
    `yielded ${printable(v)}, which is not a scheduling point: yield an object with a string op, e.g. { op: 'my_step' } (a { op: 'block' } point also needs its wait key, a string)`,
    'yield',
  );
}
