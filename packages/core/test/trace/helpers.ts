import { expect } from 'vitest';
import { MopsError } from '../../src/errors.js';
import type { Machine } from '../../src/machine.js';
import type { Profile } from '../../src/profile.js';
import {
  compileTraceFilter,
  type FilterSchema,
  parseTraceFilter,
  TraceFilterError,
} from '../../src/trace/index.js';

/** mm_page_alloc's fields with their 6.x types, and the task name. */
export const PAGE_ALLOC_SCHEMA: FilterSchema = {
  pfn: 'u64',
  order: 'u32',
  migratetype: 's32',
  gfp_flags: 'u64',
  comm: 'comm',
};

/**
 * Expects `run` to throw a {@link TraceFilterError} as the kernel's filter parser reports
 * it: `reason` on the first line, then `shown` (the expression, as its trailing spaces
 * stripped leave it), then the caret under offset `at`, where tracefs's error_log puts it.
 */
function expectThrown(
  run: () => unknown,
  expr: string,
  reason: string,
  at: number,
  shown: string,
): void {
  let err: TraceFilterError | undefined;
  try {
    run();
  } catch (e) {
    expect(e).toBeInstanceOf(TraceFilterError);
    expect(e).toBeInstanceOf(MopsError);
    err = e as TraceFilterError;
  }
  if (!err) throw new Error(`'${expr.slice(0, 60)}…' was taken`);
  expect(err.code).toBe('E_USAGE');
  expect(err.field).toBe('filter');
  expect([err.position, err.message.split('\n')[0]]).toEqual([at, `filter: ${reason}`]);
  expect(err.expression).toBe(shown);
  const [, line, caret] = err.message.split('\n');
  expect(line).toBe(`  ${shown}`);
  expect(caret).toBe(`  ${' '.repeat(at)}^`);
}

/**
 * Expects compiling `expr` against `schema` to fail as the kernel's filter parser reports it:
 * `reason` on the first line, the expression (`shown`), and the caret under byte offset `at`.
 */
function expectFilterError(
  schema: FilterSchema,
  expr: string,
  reason: string,
  at: number,
  shown = expr,
  profile?: Profile,
): void {
  expectThrown(() => compileTraceFilter(expr, schema, profile), expr, reason, at, shown);
}

/** Like expectFilterError, for {@link parseTraceFilter}, which has no schema. */
export function expectParseError(
  expr: string,
  reason: string,
  at: number,
  shown = expr,
  profile?: Profile,
): void {
  expectThrown(() => parseTraceFilter(expr, profile), expr, reason, at, shown);
}

/** The checks a filter test makes against one schema. */
export interface FilterChecks {
  /**
   * Expects compiling `expr` to fail with `reason` and the caret under byte offset `at`, the
   * expression shown as `shown`.
   */
  bad(expr: string, reason: string, at: number, shown?: string): void;
  /** Whether the filter `expr` keeps `record`. */
  passes(expr: string, record: Readonly<Record<string, unknown>>): boolean;
}

/** {@link FilterChecks} against `schema`, as `profile`'s release reads filters (default: the default profile's). */
export function filterChecks(schema: FilterSchema, profile?: Profile): FilterChecks {
  return {
    bad: (expr, reason, at, shown) => expectFilterError(schema, expr, reason, at, shown, profile),
    passes: (expr, record) => compileTraceFilter(expr, schema, profile)(record),
  };
}

/** Expects no tracepoint of `m` left enabled (a refused recorder subscribes to nothing). */
export function expectNothingEnabled(m: Machine): void {
  expect(Object.values(m.trace.enabled).some((v) => v)).toBe(false);
}
