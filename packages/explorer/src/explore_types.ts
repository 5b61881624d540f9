/**
 * The options and results of `explore`, `replay` and `scenarios`: plain JSON-able objects.
 * @module
 */

import type { ProfileName } from '@mops/core';
import type { TaskInfo, TraceRow } from './run_types.js';
import type { Scenario } from './scenario.js';

/** Strategies `explore` accepts. */
export const STRATEGIES = ['random', 'pct', 'dfs'] as const;

/** Name of an exploration strategy. */
export type StrategyName = (typeof STRATEGIES)[number];

/** Options of {@link explore} (the CLI's flags). */
export interface ExploreOptions {
  /** Scenario variant (default: the scenario's first, `buggy`). */
  variant?: string;
  /** Strategy (default: the scenario's own, see {@link Scenario.strategy}; else `random`). */
  strategy?: string;
  /**
   * Runs for random/PCT (the seeds `seed … seed+runs−1`, see {@link nthSeed}), schedule cap
   * for DFS. Default 1000.
   */
  runs?: number;
  /** First seed of random and PCT runs, −2^31 … 2^31−1 (default 1); refused with DFS. */
  seed?: number;
  /** PCT bug depth d (default 3); refused with another strategy. */
  depth?: number;
  /** DFS preemption bound (default 2); refused with another strategy. */
  bound?: number;
  /**
   * `i/n` (1 ≤ i ≤ n ≤ 2^53−1, the largest safe integer): run only the seeds s with
   * s mod n = i−1. Random and PCT only.
   */
  shard?: string;
  /** Protocol profile (default: the scenario's first). */
  profile?: string;
  /** Shrink a failing schedule (default true). */
  shrink?: boolean;
}

/** What {@link explore} found. JSON-able. */
export interface ExploreResult {
  /** Scenario name. */
  readonly scenario: string;
  /** Variant explored. */
  readonly variant: string;
  /** Profile. */
  readonly profile: ProfileName;
  /** Strategy. */
  readonly strategy: StrategyName;
  /**
   * Whether an oracle fired (exit status 1). Also true when the failure did not reproduce
   * ({@link reproduced} false): a run that fails only after other runs is a scenario that
   * leaks state from run to run, which can as well hide failures; it needs fixing.
   */
  readonly failed: boolean;
  /** Schedules run (not counting shrinking). */
  readonly schedules: number;
  /** DFS: whether every schedule within the bound was run. */
  readonly exhausted?: boolean;
  /** PCT depth. */
  readonly depth?: number;
  /** DFS preemption bound. */
  readonly bound?: number;
  /** The shard, when one was given. */
  readonly shard?: string;
  /**
   * The first seed of the range explored (random, PCT): the `seed` option. The runs took
   * the seeds from here on (see {@link nthSeed}); {@link mergeShardResults} orders the
   * shards' failures by it.
   */
  readonly firstSeed?: number;
  /**
   * The `runs` option (random, PCT): how many seeds from {@link firstSeed} on the
   * exploration covers, with all its shards together; {@link mergeShardResults} merges only
   * shards of the same range.
   */
  readonly runs?: number;
  /** Seed of the failing run (random, PCT). */
  readonly seed?: number;
  /** The failing schedule, shrunk: pass it to `replay`. */
  readonly schedule?: string;
  /**
   * The failed oracle: as the reported schedule's traced run saw it, or, when the failure
   * did not reproduce, as exploring saw it.
   */
  readonly failure?: FailureInfo;
  /**
   * With a failure: whether it reproduced. Before reporting one, the explorer runs the
   * schedule as `replay` does, on a fresh instance from the scenario's `setup` (the same
   * variant and profile), and checks that it fails the same way (the same oracle and
   * message, numbers aside, as shrinking compares them). Exploring and shrinking reuse
   * one instance, restored between runs from a snapshot of the machine and of the
   * instance's `state`; what a run changes outside those is left over for the next run.
   * False when the failure came from such leftovers: then {@link schedule} is the one
   * exploring ran, unshrunk, {@link failure} what exploring saw, {@link note} the likely
   * cause, and the report shows the fresh run (`NOT REPRODUCED` in place of `FAILED`).
   */
  readonly reproduced?: boolean;
  /**
   * What a reader of the failure must know, when something did not reproduce on a fresh
   * instance: that the failure itself did not ({@link reproduced} false), or that the
   * shrunk schedule did not and {@link schedule} is the unshrunk one. Names the likely
   * cause (the scenario's `state`). Also in the report.
   */
  readonly note?: string;
  /** Size of the reported schedule, as its traced run counts steps. */
  readonly steps?: number;
  /** Preemptions of the reported schedule. */
  readonly preemptions?: number;
  /**
   * Size before shrinking, when shrinking made the schedule smaller (fewer steps or
   * preemptions); absent otherwise, and with `shrink: false`.
   */
  readonly shrunkFrom?: { readonly steps: number; readonly preemptions: number };
  /** Candidate schedules tried while shrinking. */
  readonly shrinkAttempts?: number;
  /**
   * The race report (per-CPU trace, oracle, replay command). Its table leaves out the
   * middle of a run longer than `MAX_TABLE_ROWS` steps: {@link trace} has every step.
   */
  readonly report?: string;
  /** The traced run the report shows, every step of it. */
  readonly trace?: TraceTable;
  /** The exact command that replays the failure. */
  readonly command?: string;
}

/**
 * Every step of a traced run, as a result carries it: a report's table in full (the table
 * leaves out the middle of a long run).
 */
export interface TraceTable {
  /** The tasks of the run, by id, with their CPUs (those that took no step included). */
  readonly tasks: readonly TaskInfo[];
  /** One row per step, in order: the task, the point it reached, and whether that preempted. */
  readonly rows: readonly TraceRow[];
}

/** Options of {@link replay}. */
export interface ReplayOptions {
  /** Scenario variant (default: the scenario's first). */
  variant?: string;
  /** The schedule string (`v1:SCENARIO:…`, or `v2:…` for task ids above 35). */
  schedule: string;
  /** Profile (default: the scenario's first). */
  profile?: string;
}

/** What {@link replay} saw. JSON-able. */
export interface ReplayResult {
  /** Scenario name. */
  readonly scenario: string;
  /** Variant. */
  readonly variant: string;
  /** Profile. */
  readonly profile: ProfileName;
  /** Whether an oracle fired (exit status 1). */
  readonly failed: boolean;
  /** The schedule actually followed (normalised). */
  readonly schedule: string;
  /**
   * True when the recorded decisions did not fit this run (a named task could not run, or
   * decisions were left over), e.g. a buggy-variant schedule replayed on the fixed variant.
   */
  readonly diverged: boolean;
  /** The failed oracle, if any. */
  readonly failure?: FailureInfo;
  /** Steps run. */
  readonly steps: number;
  /** Preemptions made. */
  readonly preemptions: number;
  /**
   * Report with the per-CPU trace, also for a passing run (`passed: no oracle fired`, then
   * the table): how the schedule went, e.g. a buggy variant's failing schedule on the fixed
   * variant. Its table leaves out the middle of a run longer than `MAX_TABLE_ROWS` steps.
   */
  readonly report: string;
  /** The traced run, every step of it. */
  readonly trace: TraceTable;
  /** The replay command. */
  readonly command: string;
}

/** A row of {@link scenarios}. */
export interface ScenarioInfo {
  /** Name. */
  readonly name: string;
  /** One line. */
  readonly description: string;
  /** Variants (`buggy`, `fixed`). */
  readonly variants: readonly string[];
  /** Supported profiles, default first. */
  readonly profiles: readonly string[];
  /** The strategy `explore` uses when none is named. */
  readonly strategy: NonNullable<Scenario['strategy']>;
}

/**
 * The failed oracle of a result: its kind, its message, the step after which it was seen
 * and, from the traced run, the step it arose at when a task running alone came before (see
 * {@link Failure.raisedAt}).
 */
export interface FailureInfo {
  readonly kind: string;
  readonly message: string;
  readonly step: number;
  readonly raisedAt?: number;
}
