/**
 * The tests behind a tracefs filter's predicates (kernel/trace/trace_events_filter.c's
 * filter_pred_*()): integer literals read as lib/kstrtox.c reads them, record values held in
 * their field's C type, strings matched exactly or by glob, and `comm` cut as current->comm
 * holds it. `filter.ts` parses the expression and checks each predicate before it builds
 * one of these.
 * @module
 */

import type { FilterFieldType, FilterOp } from './filter.js';
import { cStringBytes, fromKernelBytes, kernelBytes } from './filter_ctype.js';
import { compileFilterRegex } from './glob.js';

/** The largest value kstrtoull() returns: 2^64 - 1. */
const U64_MAX = (1n << 64n) - 1n;
/** The largest value kstrtoll() returns, 2^63 - 1; the smallest is -2^63. */
const S64_MAX = (1n << 63n) - 1n;

/**
 * _kstrtoull() with base 0: `0x`/`0X` then a hex digit makes it hex, any other leading `0`
 * octal, anything else decimal; then digits of that base to the end, at most 2^64 - 1.
 * Undefined for what it refuses (-EINVAL or -ERANGE).
 */
function kstrtoullMagnitude(s: string): bigint | undefined {
  const hex = /^0[xX][0-9a-fA-F]/.test(s);
  const digits = hex ? s.slice(2) : s;
  const ok = hex ? /^[0-9a-fA-F]+$/ : s[0] === '0' ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!ok.test(digits)) return undefined;
  const v = BigInt(hex ? `0x${digits}` : s[0] === '0' ? `0o${digits}` : digits);
  return v <= U64_MAX ? v : undefined;
}

/** kstrtoull(s, 0): an optional `+`, no `-`, then _kstrtoull(); undefined where it fails. */
function kstrtoull(s: string): bigint | undefined {
  return kstrtoullMagnitude(s[0] === '+' ? s.slice(1) : s);
}

/**
 * kstrtoll(s, 0): `-` then _kstrtoull() (no second sign), else kstrtoull(); the result must
 * lie in -2^63 to 2^63 - 1. Undefined where it fails.
 */
function kstrtoll(s: string): bigint | undefined {
  if (s[0] !== '-') {
    const v = kstrtoull(s);
    return v !== undefined && v <= S64_MAX ? v : undefined;
  }
  const m = kstrtoullMagnitude(s.slice(1));
  return m !== undefined && m <= S64_MAX + 1n ? -m : undefined;
}

/** A C integer type of a field: its width and signedness (`bool` stores 0 or 1). */
interface IntType {
  readonly bits: number;
  readonly signed: boolean;
  readonly bool?: true;
}

const INT_TYPES: Readonly<Partial<Record<FilterFieldType, IntType>>> = {
  u8: { bits: 8, signed: false },
  s8: { bits: 8, signed: true },
  u16: { bits: 16, signed: false },
  s16: { bits: 16, signed: true },
  u32: { bits: 32, signed: false },
  s32: { bits: 32, signed: true },
  u64: { bits: 64, signed: false },
  s64: { bits: 64, signed: true },
  bool: { bits: 8, signed: false, bool: true },
  cpu: { bits: 32, signed: true },
};

/** A numeric field's literal, parsed for its type: the value, or undefined if refused. */
export interface FilterLiteral {
  /** The field's C type; undefined for an undeclared (`num`) field. */
  readonly type: IntType | undefined;
  /** The literal as kstrtoll()/kstrtoull() returns it. */
  readonly value: bigint;
}

/**
 * Reads a numeric field's literal as parse_pred() does: kstrtoll() for a signed field,
 * kstrtoull() for an unsigned one (so `-1` is refused for an unsigned field), and for an
 * undeclared (`num`) field what either reads. Undefined where the kernel reports "Illegal
 * integer value".
 */
export function parseFilterLiteral(type: FilterFieldType, s: string): FilterLiteral | undefined {
  const t = INT_TYPES[type];
  const value = t ? (t.signed ? kstrtoll(s) : kstrtoull(s)) : (kstrtoll(s) ?? kstrtoull(s));
  return value === undefined ? undefined : { type: t, value };
}

/** `v` cast to `t`, as `(type)` casts an integer: its low bits, read as `t` reads them. */
function castTo(t: IntType, v: bigint): bigint {
  return t.signed ? BigInt.asIntN(t.bits, v) : BigInt.asUintN(t.bits, v);
}

/**
 * A record's value as a field of type `t` holds it (`__entry->field = value`): wrapped to
 * its width, or 0/1 for `bool`; undefined when it is no integer.
 */
function storedAs(t: IntType, v: unknown): bigint | undefined {
  let x: bigint;
  if (typeof v === 'bigint') x = v;
  else if (typeof v === 'number' && Number.isInteger(v)) x = BigInt(v);
  else if (typeof v === 'boolean') x = v ? 1n : 0n;
  else return undefined;
  return t.bool ? (x === 0n ? 0n : 1n) : castTo(t, x);
}

/**
 * A record's value as the unsigned bits a field of type `type` holds (a `num` field: 64), as
 * the equality and cpumask predicates load it (`*(u##size *)`); undefined when it is no
 * integer.
 */
export function fieldBits(type: FilterFieldType, v: unknown): bigint | undefined {
  const t = INT_TYPES[type] ?? INT_TYPES.s64!;
  const held = storedAs(t, v);
  return held === undefined ? undefined : BigInt.asUintN(t.bits, held);
}

/** TASK_COMM_LEN: task_struct's comm holds the name in 16 bytes, its NUL included. */
const TASK_COMM_LEN = 16;
/**
 * A task's name as current->comm holds it, {@link taskCommBytes} decoded: its first
 * TASK_COMM_LEN - 1 = 15 bytes of UTF-8 up to any NUL (__set_task_comm() copies no more), a
 * character cut in the middle read as U+FFFD: what the context column of a `trace` line
 * shows, and the bytes a `comm` predicate tests.
 */
export function taskComm(name: string): string {
  return fromKernelBytes(taskCommBytes(name));
}

/** A predicate's test on one record. */
export type PredFn = (record: Readonly<Record<string, unknown>>) => boolean;

/** A record's value against a literal: negative, zero, positive, or NaN. */
type CompareFn = (record: Readonly<Record<string, unknown>>) => number;

/**
 * The bytes a `comm` predicate tests: current->comm's, the name's first TASK_COMM_LEN - 1
 * bytes up to any NUL (a character cut in the middle keeps its first bytes), one character
 * per byte. An ASCII name is only scanned and sliced.
 */
export function taskCommBytes(name: string): string {
  return cStringBytes(name).slice(0, TASK_COMM_LEN - 1);
}

/**
 * A string predicate: `==`, `!=` or a `~` pattern read as filter_parse_regex() reads it
 * (see `compileFilterRegex`), on the record's text as the kernel holds it: its UTF-8 bytes up
 * to the first NUL (a `char[]` field is a C string), and for a `comm` field current->comm's
 * bytes, {@link taskCommBytes}. The kernel compares bytes (strncmp(), strnstr(), memcmp(),
 * glob_match()), so the literal is taken as its UTF-8 bytes once, here, and an ASCII value is
 * compared as it is.
 */
export function stringPred(field: string, op: FilterOp, value: string, comm: boolean): PredFn {
  const bytes = comm ? taskCommBytes : cStringBytes;
  // The last value and its bytes: a task's comm, or a field, repeats from record to record.
  let lastIn = '';
  let lastOut = '';
  const text = (r: Readonly<Record<string, unknown>>) => {
    const s = String(r[field] ?? '');
    if (s !== lastIn) {
      lastIn = s;
      lastOut = bytes(s);
    }
    return lastOut;
  };
  const literal = kernelBytes(value);
  if (op === '~') {
    const { negate, match } = compileFilterRegex(literal);
    return (r) => match(text(r)) !== negate;
  }
  const eq = op === '==';
  return (r) => (text(r) === literal) === eq;
}

/** A numeric record value, exact: a bigint stays one; NaN for what is no number. */
function toNumeric(v: unknown): number | bigint {
  if (typeof v === 'number' || typeof v === 'bigint') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return Number.NaN;
}

/**
 * `x` against the literal `v`: negative, zero or positive, or NaN when `x` is NaN. Numbers
 * and bigints compare exactly, so literals past 2^53 are not rounded.
 */
function compareTo(x: number | bigint, v: number | bigint): number {
  if (typeof x === 'number' && Number.isNaN(x)) return Number.NaN;
  return x < v ? -1 : x > v ? 1 : 0;
}

/**
 * A field of C type `t` against the literal `v`, as filter_pred_##type() compares them: both
 * cast to the type, then compared in it (so an unsigned field compares as unsigned). A
 * record value within the type's range is what the field holds and is compared as a
 * number; any other is stored into the type first.
 */
function typedCompare(field: string, t: IntType, v: bigint): CompareFn {
  const lit = castTo(t, v);
  const litN = Number.isSafeInteger(Number(lit)) ? Number(lit) : lit;
  const lo = t.signed ? -(2 ** (t.bits - 1)) : 0;
  const hi = t.bool ? 1 : t.signed ? 2 ** (t.bits - 1) - 1 : 2 ** t.bits - 1;
  return (r) => {
    const x = r[field];
    if (typeof x === 'number' && Number.isSafeInteger(x) && x >= lo && x <= hi)
      return compareTo(x, litN);
    const held = storedAs(t, x);
    return held === undefined ? Number.NaN : compareTo(held, lit);
  };
}

/** An undeclared (`num`) field against the literal `v`: the record's value, exactly. */
function exactCompare(field: string, v: bigint): CompareFn {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) return (r) => compareTo(toNumeric(r[field]), v);
  // Most literals are safe integers and most record values numbers: compare those as
  // numbers, and only the rest exactly, as bigints.
  return (r) => {
    const x = r[field];
    return typeof x === 'number' ? compareTo(x, n) : compareTo(toNumeric(x), v);
  };
}

/**
 * A numeric predicate. `&` is true when the record's value and the literal share a bit
 * within the field's width (64 bits for an undeclared field), except on `cpu`/`CPU`, where
 * filter_pred_cpu() knows no `&` and never matches; a value that is no integer passes only
 * `!=`.
 */
export function numericPred(field: string, op: FilterOp, lit: FilterLiteral, cpu = false): PredFn {
  const t = lit.type;
  if (op === '&' && cpu) return () => false;
  if (op === '&') {
    const width = t ? t.bits : 64;
    const bits = BigInt.asUintN(width, lit.value);
    const as = t ?? INT_TYPES.s64!;
    return (r) => {
      const held = storedAs(as, r[field]);
      return held !== undefined && (BigInt.asUintN(width, held) & bits) !== 0n;
    };
  }
  const cmp = t ? typedCompare(field, t, lit.value) : exactCompare(field, lit.value);
  switch (op) {
    case '==':
      return (r) => cmp(r) === 0;
    case '!=':
      return (r) => cmp(r) !== 0; // NaN too: != is !(==)
    case '<':
      return (r) => cmp(r) < 0;
    case '<=':
      return (r) => cmp(r) <= 0;
    case '>':
      return (r) => cmp(r) > 0;
    default:
      return (r) => cmp(r) >= 0;
  }
}
