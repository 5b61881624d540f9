/**
 * Argument checks of the balloon's constructors: a bad value is MopsError('E_USAGE') naming
 * the option and what was given, before anything is allocated or registered.
 * @module
 */

import { type Kctx, MopsError, type Profile, valueKind } from '@mops/core';
import type { BalloonDesign, BalloonMistakes } from './device.js';

/** E_USAGE unless `k` is a machine or a kernel context `{ mem, sched }`. */
export function checkKctx(k: unknown): asserts k is Kctx {
  const c = k as Partial<Kctx> | null | undefined;
  if (
    typeof c?.mem !== 'object' ||
    c.mem === null ||
    typeof c.sched !== 'object' ||
    c.sched === null
  )
    throw new MopsError(
      'E_USAGE',
      `BalloonDevice: the first argument must be a machine (createMachine) or a kernel context { mem, sched }, got ${valueKind(k)}`,
      'machine',
    );
}

/**
 * E_USAGE unless option `key` of `opts` is absent or of type `type` (`'object'`: a
 * non-null object); `what` names the constructor.
 */
export function optionType(
  opts: object,
  key: string,
  type: 'string' | 'boolean' | 'object',
  what: string,
): void {
  const v = (opts as Record<string, unknown>)[key];
  if (v === undefined) return;
  if (type === 'object' ? typeof v === 'object' && v !== null : typeof v === type) return;
  throw new MopsError(
    'E_USAGE',
    `${what}: ${key} must be ${type === 'object' ? 'an object' : `a ${type}`}, got ${valueKind(v)}`,
    key,
  );
}

/**
 * The balloon design `design` names (default `'classic'`), or E_USAGE: a value other than
 * `'classic'` and `'2026'`, or `'2026'` on a profile older than v6.17.
 */
export function checkDesign(profile: Profile, design: unknown): BalloonDesign {
  const d = design ?? 'classic';
  if (d !== 'classic' && d !== '2026')
    throw new MopsError(
      'E_USAGE',
      `design must be 'classic' or '2026', got ${valueKind(d)}`,
      'design',
    );
  if (d === '2026' && profile.movableMarker !== 'page_type')
    throw new MopsError(
      'E_USAGE',
      `the 2026 balloon design builds on PG_movable_ops; use profile v6.17, not ${profile.name}`,
      'design',
    );
  return d;
}

/**
 * E_USAGE unless every mistake of `mistakes` switched on (a boolean each) applies to
 * `design`: `dequeueWaitsForPageLock` to the classic design, whose dequeue takes the page
 * lock; `perDeviceLockWithoutPageLock` to the 2026 design, which has dropped it.
 */
export function checkMistakes(design: BalloonDesign, mistakes: BalloonMistakes | undefined): void {
  if (mistakes === undefined) return;
  const applies: Record<keyof BalloonMistakes, BalloonDesign> = {
    dequeueWaitsForPageLock: 'classic',
    perDeviceLockWithoutPageLock: '2026',
  };
  for (const key of Object.keys(applies) as (keyof BalloonMistakes)[]) {
    const v: unknown = mistakes[key];
    if (v !== undefined && typeof v !== 'boolean')
      throw new MopsError(
        'E_USAGE',
        `mistakes.${key} must be a boolean, got ${valueKind(v)}`,
        'mistakes',
      );
    if (v === true && design !== applies[key])
      throw new MopsError(
        'E_USAGE',
        `mistakes.${key} applies to the ${applies[key]} balloon design, not the ${design} one`,
        'mistakes',
      );
  }
}
