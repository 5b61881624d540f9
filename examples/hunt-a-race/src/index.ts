/**
 * Hunting a race with the explorer: race 9a from the January 2023 thread. A PFN scanner
 * examines a tail page, derives its head, and takes `folio_try_get` on the head without
 * holding a reference; meanwhile the folio is freed and the head reused. The scanner then
 * isolates a page it never examined. `folio_get_nontail_page` (v6.3) fixed it.
 * @module
 */

import { explore, replay } from '@mops/explorer';
import { registerOnePageRelease } from './own_race.js';

export { onePageRelease, registerOnePageRelease, registerScenarios } from './own_race.js';

/** What the hunt found. */
export interface Hunt {
  /** The buggy variant's failure, shrunk, with its replayable schedule. */
  readonly bug: { readonly schedule: string; readonly report: string; readonly steps: number };
  /** Whether replaying that schedule fails again (it must: runs are deterministic). */
  readonly replayFails: boolean;
  /** Schedules DFS ran on the fixed variant, and whether it exhausted the bound. */
  readonly fixed: {
    readonly schedules: number;
    readonly exhausted: boolean;
    readonly failed: boolean;
  };
}

/** Explores 9a: PCT finds the bug, replay reproduces it, bounded DFS clears the fix. */
export function hunt(): Hunt {
  const found = explore('9a', { variant: 'buggy', strategy: 'pct', runs: 1000, seed: 1 });
  if (!found.failed || !found.schedule) throw new Error('the explorer should find 9a');
  const again = replay('9a', {
    variant: 'buggy',
    profile: found.profile,
    schedule: found.schedule,
  });
  const fixed = explore('9a', { variant: 'fixed', strategy: 'dfs', bound: 2 });
  return {
    bug: { schedule: found.schedule, report: found.report ?? '', steps: found.steps ?? 0 },
    replayFails: again.failed,
    fixed: {
      schedules: fixed.schedules,
      exhausted: fixed.exhausted === true,
      failed: fixed.failed,
    },
  };
}

/** What hunting the race of one's own driver found. */
export interface OwnHunt {
  /** The buggy variant: the shrunk failure and its report. */
  readonly bug: { readonly message: string; readonly report: string; readonly steps: number };
  /** The fixed variant: schedules DFS ran, whether it exhausted the bound, whether it failed. */
  readonly fixed: {
    readonly schedules: number;
    readonly exhausted: boolean;
    readonly failed: boolean;
  };
}

/**
 * Registers the one-page driver's race, lets random runs find the bug and DFS clear the fix
 * on one release (`v6.3`, `v6.0` or `v4.8`).
 */
export function huntOwnRace(profile = 'v6.3'): OwnHunt {
  registerOnePageRelease();
  const found = explore('onepage-release', { variant: 'buggy', strategy: 'random', profile });
  if (!found.failed) throw new Error('the explorer should find the early release');
  const fixed = explore('onepage-release', {
    variant: 'fixed',
    strategy: 'dfs',
    bound: 2,
    profile,
  });
  return {
    bug: {
      message: found.failure?.message ?? '',
      report: found.report ?? '',
      steps: found.steps ?? 0,
    },
    fixed: {
      schedules: fixed.schedules,
      exhausted: fixed.exhausted === true,
      failed: fixed.failed,
    },
  };
}
