import { expect } from 'vitest';
import { MopsError } from '../../src/errors.js';
import { compileTraceFilter, type FilterSchema, TraceFilterError } from '../../src/trace/index.js';

/**
 * Expects compiling `expr` against `schema` to fail as the kernel's filter parser reports
 * it: `reason` on the first line, the expression, and the caret under offset `at`.
 */
export function expectFilterError(
  schema: FilterSchema,
  expr: string,
  reason: string,
  at: number,
): void {
  let err: TraceFilterError | undefined;
  try {
    compileTraceFilter(expr, schema);
  } catch (e) {
    expect(e).toBeInstanceOf(TraceFilterError);
    expect(e).toBeInstanceOf(MopsError);
    err = e as TraceFilterError;
  }
  if (!err) throw new Error(`'${expr.slice(0, 60)}…' compiled`);
  expect(err.code).toBe('E_USAGE');
  expect(err.field).toBe('filter');
  expect(err.position).toBe(at);
  const [first, shown, caret] = err.message.split('\n');
  expect(first).toBe(`filter: ${reason}`);
  expect(shown).toBe(`  ${expr}`);
  expect(caret).toBe(`  ${' '.repeat(at)}^`);
}
