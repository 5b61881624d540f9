/**
 * Scheduling strategies over the scheduling points: seeded random, PCT, bounded DFS and
 * replay of a recorded schedule.
 * @module
 */

import { Prng, type Task } from '@mops/core';
import { type Chooser, defaultPick } from './runner.js';

/** Uniformly random choice at each decision, from a PRNG seeded per run. */
export class RandomChooser implements Chooser {
  private readonly prng: Prng;

  /** @param seed the run's seed */
  constructor(seed: number) {
    this.prng = new Prng(seed);
  }

  /** Picks a runnable task uniformly. */
  choose(runnable: readonly Task[]): Task {
    return runnable[this.prng.below(runnable.length)];
  }
}

/**
 * PCT (Burckhardt, Kothari, Musuvathi, Nagarakatte, ASPLOS 2010): every task gets a random
 * distinct priority ≥ d; d−1 change points are drawn uniformly over the estimated number of
 * steps k; the highest-priority runnable task runs; when the running task executes the i-th
 * change point its priority drops to d−i, below every initial priority. Finds a bug of
 * depth d with probability ≥ 1/(n·k^(d−1)) per run.
 */
export class PctChooser implements Chooser {
  private readonly prng: Prng;
  private readonly prio = new Map<number, number>();
  private readonly changeAt: number[] = [];

  /**
   * @param seed the run's seed
   * @param depth bug depth d (≥ 1)
   * @param estimatedSteps k, the expected number of steps of a run
   */
  constructor(
    seed: number,
    readonly depth: number,
    estimatedSteps: number,
  ) {
    this.prng = new Prng(seed);
    const k = Math.max(1, estimatedSteps);
    for (let i = 0; i < depth - 1; i++) this.changeAt.push(1 + this.prng.below(k));
  }

  private priorityOf(t: Task): number {
    let p = this.prio.get(t.id);
    if (p === undefined) {
      // Distinct with probability 1; ties fall back to the lower id.
      p = this.depth + this.prng.float();
      this.prio.set(t.id, p);
    }
    return p;
  }

  /** Runs the highest-priority runnable task. */
  choose(runnable: readonly Task[]): Task {
    let best = runnable[0];
    let bp = this.priorityOf(best);
    for (let i = 1; i < runnable.length; i++) {
      const p = this.priorityOf(runnable[i]);
      if (p > bp) {
        best = runnable[i];
        bp = p;
      }
    }
    return best;
  }

  /** Lowers the running task's priority at a change point. */
  afterStep(task: Task, steps: number): void {
    for (let i = 0; i < this.changeAt.length; i++)
      if (this.changeAt[i] === steps) this.prio.set(task.id, this.depth - 1 - i);
  }
}

/**
 * Follows recorded decisions (task ids). Where the recorded task is not runnable, or past
 * the end of the record, it continues the previous task (no preemption) and notes a
 * divergence in the first case.
 */
export class ReplayChooser implements Chooser {
  /** Set when a recorded decision named a task that could not run. */
  diverged = false;

  /** @param decisions task ids, one per decision */
  constructor(readonly decisions: readonly number[]) {}

  /** The recorded task if it may run, else the default continuation. */
  choose(runnable: readonly Task[], prev: Task | undefined, decision: number): Task {
    if (decision < this.decisions.length) {
      const id = this.decisions[decision];
      for (const t of runnable) if (t.id === id) return t;
      this.diverged = true;
    }
    return defaultPick(runnable, prev);
  }
}

interface DfsFrame {
  /** Task ids to try here, the non-preempting one first. */
  readonly options: number[];
  idx: number;
}

/**
 * Depth-first enumeration of schedules with a preemption bound (CHESS-style iterative
 * context bounding, loom's `preemption_bound`): stateless, each schedule re-runs the
 * scenario from scratch following the current prefix. At a new decision the non-preempting
 * task is tried first; switching away from a task that could continue is a preemption and
 * only allowed while fewer than `bound` were made. Call {@link next} for the chooser of the
 * next schedule and {@link backtrack} after running it.
 */
export class DfsExplorer {
  private readonly stack: DfsFrame[] = [];
  private done = false;
  /** Schedules started so far. */
  schedules = 0;

  /** @param bound the preemption bound */
  constructor(readonly bound: number) {}

  /** True once every schedule within the bound has been run. */
  get exhausted(): boolean {
    return this.done;
  }

  /** The chooser for the next schedule, or undefined when exhausted. */
  next(): Chooser | undefined {
    if (this.done) return undefined;
    this.schedules++;
    const stack = this.stack;
    const bound = this.bound;
    let preemptions = 0;
    return {
      choose(runnable: readonly Task[], prev: Task | undefined, decision: number): Task {
        const dflt = defaultPick(runnable, prev);
        // defaultPick() returns prev exactly when prev may still run.
        const canContinue = prev !== undefined && dflt === prev;
        let frame = stack[decision];
        if (frame === undefined) {
          const options = [dflt.id];
          if (!canContinue || preemptions < bound)
            for (const t of runnable) if (t !== dflt) options.push(t.id);
          frame = { options, idx: 0 };
          stack.push(frame);
        }
        const id = frame.options[frame.idx];
        let pick = dflt;
        for (const t of runnable) if (t.id === id) pick = t;
        if (pick !== dflt && canContinue) preemptions++;
        return pick;
      },
    };
  }

  /**
   * Moves to the next untried branch after a schedule that made `decisions` decisions
   * (deeper frames of an earlier, longer schedule are dropped).
   */
  backtrack(decisions: number): void {
    const stack = this.stack;
    if (stack.length > decisions) stack.length = decisions;
    while (
      stack.length > 0 &&
      stack[stack.length - 1].idx + 1 >= stack[stack.length - 1].options.length
    )
      stack.pop();
    if (stack.length === 0) this.done = true;
    else stack[stack.length - 1].idx++;
  }
}
