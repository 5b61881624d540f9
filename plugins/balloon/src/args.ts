/**
 * Argument checks of the balloon's constructors and of the driver's calls by hand: a bad
 * value is a MopsError naming the option or argument and what was given, before anything
 * is allocated, registered or changed.
 * @module
 */

import { hexPfn, type Kctx, MopsError, type Profile, valueKind } from '@mops/core';
import { type BalloonDesign, BalloonDevice, type BalloonMistakes } from './device.js';
import { balloonRules } from './rules.js';
import type { VirtioBalloon } from './virtio.js';

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
 * `design` on `profile`: `dequeueWaitsForPageLock` to the classic design of v4.8-v6.3, whose
 * dequeue takes the page lock and re-checks PG_isolated (v6.17 dropped that re-check as dead
 * code and finalizes instead of deleting, a dequeue the mistake does not reproduce);
 * `perDeviceLockWithoutPageLock` to the 2026 design, which has dropped the page lock.
 */
export function checkMistakes(
  profile: Profile,
  design: BalloonDesign,
  mistakes: BalloonMistakes | undefined,
): void {
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
  // The mistake leaves out the "raced with isolation" PG_isolated re-check of the v4.8-v6.3
  // dequeue; v6.17 has no such re-check to leave out.
  if (mistakes.dequeueWaitsForPageLock === true && !balloonRules(profile).dequeueSkipsIsolated)
    throw new MopsError(
      'E_USAGE',
      `mistakes.dequeueWaitsForPageLock reproduces the dequeue of v4.8, v6.0 and v6.3 (page lock, PG_isolated re-check, balloon_page_delete), not that of profile ${profile.name}, which finalizes the page and has no PG_isolated re-check; use one of those profiles`,
      'mistakes',
    );
}

/** E_USAGE unless `num`, a page count given to `what` (fill, leak), is a non-negative integer. */
export function checkCount(num: number, what: string): void {
  if (!Number.isInteger(num) || num < 0)
    throw new MopsError(
      'E_USAGE',
      `${what}: the page count must be a non-negative integer, got ${valueKind(num)}`,
      'num',
    );
}

/**
 * The checks of virtballoon_migratepage called by hand ({@link VirtioBalloon.migratepage});
 * the VM's path, which checked the pages in balloon_page_migrate and isolated `page`, does
 * without. E_RANGE for a `newpage` or `page` that is no page of the machine, E_USAGE for a
 * `dev` other than the driver's, E_STATE for a `page` the device does not count isolated or
 * a `newpage` that is not a fresh allocated order-0 page nothing uses.
 */
export function checkMigrateByHand(
  vb: VirtioBalloon,
  dev: BalloonDevice,
  newpage: number,
  page: number,
): void {
  const what = 'virtballoon_migratepage';
  const mem = vb.k.mem;
  mem.checkPfn(newpage, what);
  mem.checkPfn(page, what);
  if (dev !== vb.dev)
    throw new MopsError(
      'E_USAGE',
      `${what}: dev must be this driver's device (vb.dev, balloon ${vb.dev.name}), got ${dev instanceof BalloonDevice ? `balloon ${dev.name}` : valueKind(dev)}`,
      'dev',
    );
  if (!dev.isCountedIsolated(page))
    throw new MopsError(
      'E_STATE',
      `${what}: page pfn ${hexPfn(page)} is not a page balloon ${dev.name} counts isolated (isolated_pages ${dev.isolatedPages}); only a page the VM isolated (isolateMovablePage) migrates`,
      'page',
    );
  const p = mem.pages;
  if (
    p.refcount[newpage] === 0 ||
    p.compound[newpage] !== 0 ||
    p.type[newpage] !== -1 ||
    p.priv[newpage] !== 0 ||
    p.mapping[newpage] !== 0 ||
    p.lists.isLinked(newpage)
  )
    throw new MopsError(
      'E_STATE',
      `${what}: newpage pfn ${hexPfn(newpage)} is not a fresh migration target (an allocated order-0 page that is not typed, mapped, private or on a list); give the page allocated for the migration`,
      'newpage',
    );
}
