/**
 * Shrinking a failing schedule: fewer preemptions first, then fewer steps, keeping the same
 * failure (its kind and its message, numbers aside). Candidates are replayed leniently (see {@link ReplayChooser}), so any
 * edit of the decision list is a valid schedule.
 * @module
 */

import type { ProfileName } from '@mops/core';
import { type Execution, execute } from './runner.js';
import type { Scenario } from './scenario.js';
import { DfsExplorer, ReplayChooser } from './strategies.js';

/** Result of {@link shrinkSchedule}. */
export interface ShrinkResult {
  /** The smallest failing execution found (its decisions are normalised). */
  readonly execution: Execution;
  /** Candidate schedules run. */
  readonly attempts: number;
}

/**
 * Drops trailing decisions that only continue the previous task: replay makes the same
 * choices without them.
 */
export function normaliseDecisions(e: Execution): number[] {
  let n = e.decisions.length;
  while (n > 0 && e.decisions[n - 1] === e.defaultIds[n - 1]) n--;
  return e.decisions.slice(0, n);
}

/**
 * What a shrunk schedule must still show: the oracle that fired and its message with the
 * numbers (pfns, counts, task ids) left out, so a smaller schedule may hit the same bug on
 * another page but not another bug.
 */
export function failureSignature(e: Execution): string | undefined {
  const f = e.failure;
  return f && `${f.kind}\0${f.message.replace(/\b(0x[0-9a-f]+|\d+)\b/gi, '#')}`;
}

function better(a: Execution, b: Execution): boolean {
  if (a.preemptions !== b.preemptions) return a.preemptions < b.preemptions;
  if (a.steps !== b.steps) return a.steps < b.steps;
  return normaliseDecisions(a).length < normaliseDecisions(b).length;
}

function* candidates(d: readonly number[], defaults: readonly number[]): Generator<number[]> {
  // Remove a preemption: take the non-preempting choice at one decision.
  for (let i = 0; i < d.length; i++)
    if (d[i] !== defaults[i]) {
      const c = d.slice();
      c[i] = defaults[i];
      yield c;
    }
  // Shorter prefixes (the rest continues without preemption).
  for (let n = 0; n < d.length; n++) yield d.slice(0, n);
  // Drop one decision.
  for (let i = 0; i < d.length; i++) yield [...d.slice(0, i), ...d.slice(i + 1)];
  // Swap neighbours.
  for (let i = 0; i + 1 < d.length; i++)
    if (d[i] !== d[i + 1]) {
      const c = d.slice();
      c[i] = d[i + 1];
      c[i + 1] = d[i];
      yield c;
    }
}

/**
 * Shrinking of `failing` (a failing execution of `scenario`): first a search for the same
 * failure ({@link failureSignature}) with fewer preemptions, every schedule under a
 * preemption bound from 0 up; then, greedily, the first candidate edit that still fails the
 * same way and is smaller (fewer preemptions, then fewer steps, then fewer decisions), until
 * none is or `maxAttempts` schedules were run.
 */
export function shrinkSchedule(
  scenario: Scenario,
  variant: string,
  profile: ProfileName,
  failing: Execution,
  maxAttempts = 2000,
): ShrinkResult {
  const signature = failureSignature(failing);
  if (signature === undefined) return { execution: failing, attempts: 0 };
  let best = failing;
  let attempts = 0;
  // First the fewest preemptions: every schedule with 0, then 1, … preemptions (DFS under
  // that bound), up to half the budget. Removing one preemption at a time cannot find a
  // failure that needs two of them moved.
  for (let bound = 0; bound < best.preemptions && attempts < maxAttempts / 2; bound++) {
    const dfs = new DfsExplorer(bound);
    let found: Execution | undefined;
    for (let c = dfs.next(); c !== undefined && attempts < maxAttempts / 2; c = dfs.next()) {
      attempts++;
      const e = execute(scenario, variant, profile, c);
      if (failureSignature(e) === signature) {
        found = e;
        break;
      }
      dfs.backtrack(e.decisions.length);
    }
    if (found && better(found, best)) {
      best = found;
      break;
    }
  }
  let progress = true;
  while (progress && attempts < maxAttempts) {
    progress = false;
    const d = normaliseDecisions(best);
    for (const c of candidates(d, best.defaultIds)) {
      if (attempts >= maxAttempts) break;
      attempts++;
      const e = execute(scenario, variant, profile, new ReplayChooser(c));
      if (failureSignature(e) === signature && better(e, best)) {
        best = e;
        progress = true;
        break;
      }
    }
  }
  return { execution: best, attempts };
}
