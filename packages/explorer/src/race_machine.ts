/**
 * What the built-in race scenarios share: their variants, the profiles they run on, and the
 * machine they race on.
 * @module
 */

import { createMachine, type Machine, type ProfileName } from '@mops/core';

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

/** A pfn as the kernel prints it. */
export const hex = (pfn: number): string => `0x${pfn.toString(16)}`;
