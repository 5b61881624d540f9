import {
  __SetPageMovable,
  type Machine,
  MopsError,
  type MovableOperations,
  makeAddressSpace,
  PGTY,
  SetPageMovableOps,
  setMovableOps,
  trylockPage,
  unlockPage,
} from '@mops/core';
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

/**
 * Publishes `pfn` as a movable page of `ops` the way the machine's profile does it, under the
 * page lock: v6.17 a PageOffline with PG_movable_ops (registering `ops` for the type), v4.8
 * an address_space called `name`, v6.0/v6.3 the ops themselves.
 */
export function publishMovable(
  m: Machine,
  pfn: number,
  ops: MovableOperations,
  name: string,
): void {
  const mem = m.mem;
  trylockPage(mem, pfn);
  if (m.profile.movableMarker === 'page_type') {
    setMovableOps(mem, ops, PGTY.offline);
    mem.pages.type[pfn] = PGTY.offline << 24;
    SetPageMovableOps(mem, pfn);
  } else
    __SetPageMovable(
      mem,
      pfn,
      m.profile.movableMarker === 'address_space' ? makeAddressSpace(name, ops) : ops,
    );
  unlockPage(m, pfn);
}
