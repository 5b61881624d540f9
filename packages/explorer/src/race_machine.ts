/**
 * What the built-in race scenarios share: their variants, the profiles they run on, and the
 * machine they race on.
 * @module
 */

import { createMachine, GFP, type Machine, type ProfileName } from '@mops/core';

/** Variants of every built-in scenario. */
export const BUGGY_FIXED: readonly string[] = ['buggy', 'fixed'];

/** Every profile, the default (v6.3) first: for scenarios that run on all four releases. */
export const EVERY_PROFILE: readonly ProfileName[] = ['v6.3', 'v6.0', 'v4.8', 'v6.17'];

/**
 * The smallest machine that shows the races: 2 MiB (one pageblock, the least mops builds),
 * one Normal zone, no page contents.
 */
export function raceMachine(profile: ProfileName, seed = 1): Machine {
  return createMachine({
    memory: '2M',
    zones: 'normal-only',
    minFreeKbytes: 0,
    contents: false,
    profile,
    seed,
  });
}

/**
 * Puts the rest of `m`'s memory in use: every free page becomes a movable user page, as on
 * a machine that is not idle (movable, so that a one-pageblock machine's block stays
 * MOVABLE). A block a scenario frees then goes back on a
 * free list without merging into a larger one, and the next allocation takes it back
 * without splitting one, so the freed page is recycled at once, as the races need.
 * Returns how many pages it took.
 */
export function fillFreePages(m: Machine): number {
  let n = 0;
  while (m.allocPages(GFP.HIGHUSER_MOVABLE, 0, 'user') >= 0) n++;
  return n;
}
