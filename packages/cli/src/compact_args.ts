/**
 * The values of `compact --alloc` and `compact --kcompactd` (a module of its own: the
 * command line parses them without loading the emulator).
 * @module
 */

import { MopsError } from '@mops/core/errors';

/** MAX_PAGE_ORDER of every profile: the largest order `--alloc` takes. */
const MAX_ORDER = 10;

/** The most machine time `--kcompactd` runs: an hour, 7200 of kcompactd's 500 ms periods. */
export const KCOMPACTD_MAX_SECONDS = 3600;

/** `--alloc ORDERxN`: N allocations of order ORDER. */
export interface AllocRequest {
  /** The order of each allocation, 1..10 (order 0 never enters direct compaction). */
  readonly order: number;
  /** How many to make (at least 1; compact checks that the machine could hold them). */
  readonly count: number;
}

/**
 * Parses `--alloc ORDERxN` (`9x10`: ten order-9 allocations). `MopsError('E_USAGE')` for
 * another form, an order outside 1..10 or a count below 1.
 */
export function allocArg(v: string): AllocRequest {
  const m = /^\s*(\d+)x(\d+)\s*$/.exec(v);
  if (!m)
    throw new MopsError(
      'E_USAGE',
      `--alloc takes ORDERxN, e.g. 9x10 for ten order-9 allocations, got '${v}'`,
      '--alloc',
    );
  const order = Number(m[1]);
  const count = Number(m[2]);
  if (order < 1 || order > MAX_ORDER)
    throw new MopsError(
      'E_USAGE',
      `--alloc ${v.trim()}: the order must be 1..${MAX_ORDER} (an order-0 allocation never enters direct compaction), got ${m[1]}`,
      '--alloc',
    );
  if (count < 1 || !Number.isSafeInteger(count))
    throw new MopsError(
      'E_USAGE',
      `--alloc ${v.trim()}: the number of allocations must be at least 1, got ${m[2]}`,
      '--alloc',
    );
  return { order, count };
}

/**
 * Parses `--kcompactd SECONDS`: a decimal number of seconds of machine time, 0 to
 * {@link KCOMPACTD_MAX_SECONDS}, to the millisecond (`0.5`, `10`, `2.25`). Returns the
 * milliseconds; `MopsError('E_USAGE')` for anything else.
 */
export function kcompactdArg(v: string): number {
  const m = /^\s*(\d+)(?:\.(\d{1,3}))?\s*$/.exec(v);
  const ms = m ? Number(m[1]) * 1000 + Number((m[2] ?? '').padEnd(3, '0')) : Number.NaN;
  if (!(ms >= 0 && ms <= KCOMPACTD_MAX_SECONDS * 1000))
    throw new MopsError(
      'E_USAGE',
      `--kcompactd takes seconds of machine time, 0..${KCOMPACTD_MAX_SECONDS} to the millisecond (e.g. 10 or 2.5), got '${v}'`,
      '--kcompactd',
    );
  return ms;
}
