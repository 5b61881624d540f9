/**
 * Shrinking a failing schedule: fewer preemptions first, then fewer steps, keeping the same
 * failure (its kind and its message, numbers aside). Candidates are replayed leniently (see {@link ReplayChooser}), so any
 * edit of the decision list is a valid schedule.
 * @module
 */

import type { ProfileName } from '@mops/core';
import { type Chooser, type Execution, execute } from './runner.js';
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
  const switches: number[] = [];
  for (let i = 0; i < d.length; i++)
    if (d[i] !== defaults[i]) {
      switches.push(i);
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
  // When none of those helps: edits that only work together. Remove two preemptions (a
  // switch away and the switch back), or drop a run of decisions (what one task did
  // between two switches).
  for (let a = 0; a < switches.length; a++)
    for (let b = a + 1; b < switches.length; b++) {
      const c = d.slice();
      c[switches[a]] = defaults[switches[a]];
      c[switches[b]] = defaults[switches[b]];
      yield c;
    }
  for (let len = 2; len < d.length; len++)
    for (let i = 0; i + len <= d.length; i++) yield [...d.slice(0, i), ...d.slice(i + len)];
}

/**
 * Shrinking of `failing` (a failing execution of `scenario`) to a schedule that fails the
 * same way ({@link failureSignature}) and is smaller: fewer preemptions, then fewer steps,
 * then fewer decisions. Greedy edits (the first candidate that is smaller, again and again)
 * from two starts: `failing` itself, and the first schedule under a preemption bound from 0
 * up that fails the same way; of the two results, the one with the smaller report wins
 * (fewer preemptions, then fewer rows in its traced replay, then fewer decisions). At
 * most `maxAttempts` schedules are run, and two traced replays.
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
  const run = { scenario, variant, profile, signature, left: maxAttempts };
  let best = greedy(run, failing);
  const fewest = fewestPreemptions(run, failing, Math.floor(maxAttempts / 4));
  if (fewest) {
    const shrunk = greedy(run, fewest);
    if (smallerReport(run, shrunk, best)) best = shrunk;
  }
  return { execution: best, attempts: maxAttempts - run.left };
}

/**
 * Whether `a` makes the smaller report than `b`: fewer preemptions, then fewer rows in its
 * traced replay (which shows every point of a task running alone), then fewer decisions.
 */
function smallerReport(r: ShrinkRun, a: Execution, b: Execution): boolean {
  if (a.preemptions !== b.preemptions) return a.preemptions < b.preemptions;
  const rows = (e: Execution) =>
    execute(r.scenario, r.variant, r.profile, new ReplayChooser(normaliseDecisions(e)), {
      trace: true,
    }).steps;
  const ra = rows(a);
  const rb = rows(b);
  if (ra !== rb) return ra < rb;
  return normaliseDecisions(a).length < normaliseDecisions(b).length;
}

/** What one shrink needs to replay candidates, and its budget left. */
interface ShrinkRun {
  readonly scenario: Scenario;
  readonly variant: string;
  readonly profile: ProfileName;
  readonly signature: string;
  left: number;
}

/** Runs `chooser`'s schedule, counted against the budget. */
function attempt(r: ShrinkRun, chooser: Chooser): Execution {
  r.left--;
  return execute(r.scenario, r.variant, r.profile, chooser);
}

/**
 * Greedy edits from `from`: repeatedly the first candidate that still fails the same way
 * and is smaller, until none is or the budget is spent.
 */
function greedy(r: ShrinkRun, from: Execution): Execution {
  let best = from;
  let progress = true;
  while (progress && r.left > 0) {
    progress = false;
    const d = normaliseDecisions(best);
    for (const c of candidates(d, best.defaultIds)) {
      if (r.left <= 0) break;
      const e = attempt(r, new ReplayChooser(c));
      if (failureSignature(e) === r.signature && better(e, best)) {
        best = e;
        progress = true;
        break;
      }
    }
  }
  return best;
}

/**
 * The first schedule that fails the same way with fewer preemptions than `than`, or as
 * many: every schedule under a preemption bound of 0, then 1, … (DFS), within `budget`
 * runs. Edits that remove one preemption at a time cannot find a failure that needs two of
 * them moved.
 */
function fewestPreemptions(r: ShrinkRun, than: Execution, budget: number): Execution | undefined {
  const stop = r.left - Math.min(budget, r.left);
  for (let bound = 0; bound <= than.preemptions && r.left > stop; bound++) {
    const dfs = new DfsExplorer(bound);
    for (let c = dfs.next(); c !== undefined && r.left > stop; c = dfs.next()) {
      const e = attempt(r, c);
      if (failureSignature(e) === r.signature) return e;
      dfs.backtrack(e.decisions.length);
    }
  }
  return undefined;
}
