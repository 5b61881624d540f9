/**
 * The check of a pooled instance's first reuse: the explorer runs the first schedule of a
 * new instance a second time, on the instance restored from its snapshot, and compares the
 * two runs. A scenario whose runs change something the snapshot does not reach (driver
 * bookkeeping left out of the instance's `state`, a variable in a closure) is caught there,
 * before it can make a later run fail or pass because of what an earlier one left behind.
 * @module
 */

import { MopsError } from '@mops/core';
import type { Execution } from './run_types.js';
import type { Scenario } from './scenario.js';
import type { GraphSnapshot } from './snapshot.js';

/** What a run did, as far as the probe compares it. */
export interface RunPrint {
  readonly decisions: readonly number[];
  readonly steps: number;
  /** The failed oracle and its message, or undefined. */
  readonly failure: { readonly key: string; readonly message: string } | undefined;
  /** The words of the machine's larger buffers the run left changed, and their values. */
  readonly runs: Int32Array;
  readonly words: Int32Array;
  /** The other recorded objects it left changed. */
  readonly slots: Int32Array;
}

/** The print of `e`, taken right after it ran, before anything restores its machine. */
export function printOf(e: Execution, snap: GraphSnapshot): RunPrint {
  const runs = snap.changedRuns();
  return {
    decisions: e.decisions,
    steps: e.steps,
    failure: e.failure && {
      key: `${e.failure.kind}\0${e.failure.message}`,
      message: e.failure.message,
    },
    runs,
    words: snap.wordsAt(runs),
    slots: snap.changedSlots(),
  };
}

/** Whether two arrays of numbers hold the same values in the same order. */
export function sameNumbers(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * How the run on the fresh instance (`fresh`) and the same schedule on the instance reused
 * (`reused`) differ, in words; undefined when they do not.
 */
export function reuseDifference(fresh: RunPrint, reused: RunPrint): string | undefined {
  const f = fresh.failure;
  const r = reused.failure;
  if (f?.key !== r?.key) {
    const outcome = (x: typeof f) => (x ? `failed with \`${x.message}\`` : 'passed');
    return `on the fresh instance it ${outcome(f)}; on the restored one it ${outcome(r)}`;
  }
  if (fresh.steps !== reused.steps || !sameNumbers(fresh.decisions, reused.decisions))
    return `it took ${fresh.steps} steps on the fresh instance, ${reused.steps} on the restored one`;
  if (!sameNumbers(fresh.runs, reused.runs) || !sameNumbers(fresh.words, reused.words))
    return 'it left the machine’s pages or zones otherwise on the restored instance';
  if (!sameNumbers(fresh.slots, reused.slots))
    return 'it left other objects of the machine or of `state` otherwise on the restored instance';
  return undefined;
}

/**
 * The error of a scenario whose `schedule` went otherwise on an instance restored from its
 * snapshot after earlier runs than on a fresh instance from `setup`.
 */
export function leakingState(scenario: Scenario, schedule: string, difference: string): MopsError {
  return new MopsError(
    'E_STATE',
    `scenario ${scenario.name}: ${schedule}, run on the instance restored from its snapshot after earlier runs, went otherwise than on a fresh instance from setup: ${difference}. ` +
      'A run changed something the explorer does not restore. List every object outside the machine that a run changes ' +
      '(driver bookkeeping, recorded outcomes) in the instance’s `state` (an object of a class that gains a field during a run itself, not only what reaches it), or keep it in the machine; ' +
      'a run must depend only on the machine, `state` and the schedule, not on a variable in a closure or at module level',
    'scenario',
  );
}
