import { MopsError } from '@mops/core';
import { expect } from 'vitest';

/** The races of spec §9 whose variants these tests run by name (9c-passes has tests of its own). */
export const RACES = ['9a', '9b', '9c', '9d', '9d-double', '9e', '9e-split'] as const;
/**
 * Preemptions a buggy variant needs when more than one: in 9b the lookup must hold its
 * reference across the migrator's check and its store, in 9c the fault across the
 * migrator's count.
 */
export const LEAST_PREEMPTIONS: Partial<Record<(typeof RACES)[number], number>> = {
  '9b': 2,
  '9c': 2,
};

/** Asserts that `fn` throws a one-line `MopsError` with code E_USAGE matching `match`. */
export function usageError(fn: () => unknown, match: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(MopsError);
  expect((err as MopsError).code).toBe('E_USAGE');
  expect((err as MopsError).message).toMatch(match);
  expect((err as MopsError).message).not.toContain('\n');
}
