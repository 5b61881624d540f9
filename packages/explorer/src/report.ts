/**
 * Race reports: the failing interleaving as a per-CPU table, the failed oracle, and the
 * command that replays it.
 * @module
 */

import type { Yielded } from '@mops/core';
import type { Execution, Failure, TaskInfo, TraceRow } from './runner.js';

/** Everything a report names besides the execution itself. */
export interface ReportContext {
  /** Scenario name. */
  readonly scenario: string;
  /** Variant. */
  readonly variant: string;
  /** Profile. */
  readonly profile: string;
  /** Strategy that found the failure (`random`, `pct`, `dfs`, `replay`). */
  readonly strategy: string;
  /** Seed of the failing run, when the strategy uses one. */
  readonly seed?: number;
  /** PCT depth or DFS bound, when relevant. */
  readonly param?: string;
  /** The schedule string. */
  readonly schedule: string;
  /** Size of the schedule before shrinking, when it was shrunk. */
  readonly shrunkFrom?: { readonly steps: number; readonly preemptions: number };
  /**
   * A failure exploring saw that the execution, the schedule's run on a fresh instance,
   * did not reproduce: the report then says `NOT REPRODUCED` with that failure, and what
   * the fresh run did instead.
   */
  readonly unreproduced?: Failure;
  /** A caveat printed under the outcome (why the failure did not reproduce, and so on). */
  readonly note?: string;
}

/** `op pfn=0x… lock note`, or `blocked on …` for a BlockPoint. */
export function describePoint(p: Yielded): string {
  if (p.op === 'block') return `blocked on ${(p as { what?: string }).what ?? '?'}`;
  if (p.op === 'BUG') return `!! ${p.note ?? 'failed'}`;
  let s = p.op;
  if (p.pfn !== undefined) s += ` pfn=0x${p.pfn.toString(16)}`;
  if (p.lock !== undefined) s += ` ${p.lock}`;
  if (p.note !== undefined) s += ` (${p.note})`;
  return s;
}

/** The command line that replays a schedule. */
export function replayCommand(ctx: {
  scenario: string;
  variant: string;
  profile: string;
  schedule: string;
}): string {
  return `mops replay ${ctx.scenario} --variant ${ctx.variant} --profile ${ctx.profile} --schedule ${ctx.schedule}`;
}

/** Rows a table shows in full; a longer one keeps its first and last {@link KEPT_ROWS}. */
export const MAX_TABLE_ROWS = 300;

/** Rows kept at each end of a table longer than {@link MAX_TABLE_ROWS}. */
export const KEPT_ROWS = 100;

/**
 * The interleaving as a table: one column per task that took a step (headed by its CPU and
 * label), one row per step; a `*` marks a step that preempted a task that could have
 * continued. A step names the point the task reached, whose primitive runs when the task is
 * next stepped, after the driver callbacks the VM called on the way (`putback_page(0x0) →
 * folio_clear_isolated …` in v6.3). A task of the run that took no step has no column: a
 * line under the table names it. A table of more than {@link MAX_TABLE_ROWS} rows shows its
 * first and last {@link KEPT_ROWS} and says how many steps it leaves out between them (the
 * execution's `trace` has them all).
 */
export function formatTrace(tasks: readonly TaskInfo[], rows: readonly TraceRow[]): string {
  const ran = new Set(rows.map((r) => r.task));
  const shown = tasks.filter((t) => ran.has(t.id));
  // A row of a task the list does not name (not expected) still gets a column.
  for (const id of ran)
    if (!shown.some((t) => t.id === id)) shown.push({ id, name: `task${id}`, cpu: -1 });
  const idle = tasks.filter((t) => !ran.has(t.id));
  const cols = shown.map((t) => `${t.cpu < 0 ? '' : `cpu${t.cpu} `}${t.name}/${t.id}`);
  const kept =
    rows.length > MAX_TABLE_ROWS
      ? [...rows.keys()].filter((k) => k < KEPT_ROWS || k >= rows.length - KEPT_ROWS)
      : [...rows.keys()];
  const cells = new Map<number, string[]>();
  for (const k of kept) {
    const r = rows[k];
    const line = shown.map(() => '');
    const calls = r.calls ? `${r.calls.join(', ')} → ` : '';
    line[shown.findIndex((t) => t.id === r.task)] =
      (r.preempted ? '* ' : '') + calls + describePoint(r.point);
    cells.set(k, line);
  }
  const width = cols.map((c, i) =>
    Math.max(c.length, ...[...cells.values()].map((l) => l[i].length)),
  );
  const pad = (s: string, n: number): string => s + ' '.repeat(n - s.length);
  const out = [
    ` step | ${cols.map((c, i) => pad(c, width[i])).join(' | ')}`,
    `------+-${width.map((w) => '-'.repeat(w)).join('-+-')}`,
  ];
  for (const k of kept) {
    if (k === rows.length - KEPT_ROWS && rows.length > MAX_TABLE_ROWS) {
      const left = rows.length - 2 * KEPT_ROWS;
      out.push(
        `  ... | ${left} steps left out (${KEPT_ROWS + 1} to ${rows.length - KEPT_ROWS}): the result's trace has every step`,
      );
    }
    const line = cells.get(k) as string[];
    out.push(
      `${String(k + 1).padStart(5)} | ${line.map((c, i) => pad(c, width[i])).join(' | ')}`.trimEnd(),
    );
  }
  if (idle.length > 0)
    out.push(
      `no step: ${idle.map((t) => `cpu${t.cpu} ${t.name}/${t.id}`).join(', ')} (the run ended before ${idle.length === 1 ? 'it' : 'they'} ran)`,
    );
  return out.join('\n');
}

/** One-paragraph summary of a failure. */
export function describeFailure(f: Failure): string {
  const at =
    f.raisedAt === undefined
      ? `after step ${f.step}`
      : `after step ${f.raisedAt} (a task running alone, checked after step ${f.step})`;
  return `${f.kind} ${at}: ${f.message}`;
}

/**
 * The full race report: header (scenario, variant, profile, strategy, seed), the failed
 * oracle (or the failure that did not reproduce, see {@link ReportContext.unreproduced}),
 * a note if any, the per-CPU trace (the execution must have been run with `trace: true`),
 * and the replay command.
 */
export function formatReport(ctx: ReportContext, e: Execution): string {
  const lines: string[] = [];
  lines.push(`mops race report: ${ctx.scenario} (variant ${ctx.variant}, profile ${ctx.profile})`);
  const how = [`strategy ${ctx.strategy}`];
  if (ctx.param) how.push(ctx.param);
  if (ctx.seed !== undefined) how.push(`seed ${ctx.seed}`);
  lines.push(how.join(', '));
  if (ctx.unreproduced) {
    lines.push(`NOT REPRODUCED: ${describeFailure(ctx.unreproduced)}`);
    lines.push(
      e.failure
        ? `on a fresh instance the schedule fails otherwise: ${describeFailure(e.failure)}`
        : 'on a fresh instance the schedule passes: no oracle fired',
    );
  } else if (e.failure) {
    lines.push(`FAILED: ${describeFailure(e.failure)}`);
    if (e.failure.detail && e.failure.detail !== e.failure.message)
      lines.push(...e.failure.detail.split('\n').map((l) => `  ${l}`));
  } else lines.push('passed: no oracle fired');
  if (ctx.note) lines.push(`note: ${ctx.note}`);
  const size = scheduleSize(e.steps, e.preemptions);
  const from = ctx.shrunkFrom;
  lines.push(
    from
      ? `schedule: ${size} (shrunk from ${scheduleSize(from.steps, from.preemptions)})`
      : `schedule: ${size}`,
  );
  lines.push('');
  if (e.trace)
    lines.push(
      'each cell is the point a task reached (after the driver callbacks it called on the way, with →); its primitive runs when that task next runs (* = preemption)',
      formatTrace(e.tasks, e.trace),
      '',
    );
  lines.push(`replay: ${replayCommand(ctx)}`);
  return lines.join('\n');
}

/** `7 steps, 1 preemption`. */
function scheduleSize(steps: number, preemptions: number): string {
  return `${steps} step${steps === 1 ? '' : 's'}, ${preemptions} preemption${preemptions === 1 ? '' : 's'}`;
}
