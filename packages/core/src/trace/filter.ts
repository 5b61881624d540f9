/**
 * tracefs event filters (kernel/trace/trace_events_filter.c,
 * Documentation/trace/events.rst §5): `order > 2 && migratetype == 1`, `comm ~ "kcomp*"`.
 *
 * Grammar: predicates `field op value` combined with `&&`, `||`, `!` and parentheses.
 * Numeric fields take `==`, `!=`, `<`, `<=`, `>`, `>=` and `&` (true when any bit is set);
 * their values are integers read as `kstrtoll(…, 0)` / `kstrtoull(…, 0)` do (`0x` hex, a
 * leading `0` octal) and must fit one of them: from -2^63 to 2^64-1.
 * String fields take `==`, `!=` and `~` (a glob as lib/glob.c's glob_match() reads it:
 * `*`, `?`, `[…]` classes with ranges and `!`, `\` quoting the next character; a leading `!`
 * inverts the match, as filter_parse_regex() makes it, so `comm ~ "!kcomp*"` keeps the
 * events whose comm does not match `kcomp*`); their values may be quoted with `"` or `'`, or bare words. An empty filter, or `0`, accepts everything, as
 * writing `0` to a `filter` file clears it.
 *
 * Like the `filter` file, which refuses a write of PAGE_SIZE bytes or more, an expression
 * may be at most 4095 bytes long. Within that, nesting and chains of any depth parse and run
 * without recursion.
 * @module
 */

import { MopsError } from '../errors.js';
import { globMatch, parseGlob } from './glob.js';

/** The type of a filterable field: a number or a string. */
export type FilterFieldType = 'num' | 'str';

/** Fields a filter may name, with their types. */
export type FilterSchema = Readonly<Record<string, FilterFieldType>>;

/** Comparison operators of a predicate. */
export type FilterOp = '==' | '!=' | '<' | '<=' | '>' | '>=' | '&' | '~';

/** A parsed filter expression. */
export type FilterNode =
  | { readonly kind: 'and' | 'or'; readonly left: FilterNode; readonly right: FilterNode }
  | { readonly kind: 'not'; readonly arg: FilterNode }
  | {
      readonly kind: 'pred';
      /** Field name as written. */
      readonly field: string;
      /** The operator. */
      readonly op: FilterOp;
      /** The value as written (quotes removed). */
      readonly value: string;
      /** Offsets of the field, operator and value in the expression (for errors). */
      readonly at: { readonly field: number; readonly op: number; readonly value: number };
    };

/** A compiled filter: true when the record passes. */
export type FilterFn = (record: Readonly<Record<string, unknown>>) => boolean;

/**
 * A filter expression that does not parse or does not fit the event's fields. It is a
 * `MopsError('E_USAGE')`; the message names the problem (in the kernel's words, as
 * tracefs's `error_log` prints them) and shows the expression with a caret under the bad
 * token.
 */
export class TraceFilterError extends MopsError {
  /** Offset of the bad token in {@link expression}. */
  readonly position: number;
  /** The filter expression. */
  readonly expression: string;

  /**
   * @param reason the kernel's error text, e.g. `Field not found`
   * @param expression the whole expression
   * @param position offset of the bad token
   */
  constructor(reason: string, expression: string, position: number) {
    super(
      'E_USAGE',
      `filter: ${reason}\n  ${expression}\n  ${' '.repeat(Math.max(0, position))}^`,
      'filter',
    );
    this.position = position;
    this.expression = expression;
  }
}

const OPS: readonly FilterOp[] = ['==', '!=', '<=', '>=', '<', '>', '&', '~'];

/**
 * PAGE_SIZE: event_filter_write() (kernel/trace/trace_events.c) refuses, with -EINVAL, a
 * write of this many bytes or more to a `filter` file, so no filter the kernel runs is
 * longer than PAGE_SIZE - 1 bytes. That is the kernel's only bound on a filter: since the
 * 4.17 rewrite, predicate_parse() sizes its stacks from the expression (calc_stack()), and
 * the 4.x MAX_FILTER_PRED (16384 terms) cannot be reached within a page.
 */
const FILTER_PAGE_SIZE = 4096;

/** Byte lengths are counted in UTF-8, as the kernel sees the text written to it. */
const UTF8 = new TextEncoder();

/** Wraps `node` in `count` nots, innermost first (`!!a` is not(not(a))). */
function wrapNots(node: FilterNode, count: number): FilterNode {
  let out = node;
  for (let i = 0; i < count; i++) out = { kind: 'not', arg: out };
  return out;
}

/** A `(` being parsed: its position, the `!`s before it and its `||` / `&&` chains so far. */
interface OpenGroup {
  readonly open: number;
  readonly nots: number;
  or?: FilterNode;
  and?: FilterNode;
}

/**
 * Parser over the expression text. Nesting is kept on an explicit stack of open groups,
 * not the JS call stack, so `((((…))))`, `!!!!…` and long `&&` / `||` chains cannot
 * overflow it (predicate_parse() likewise walks the string with a stack of its own).
 */
class Parser {
  pos = 0;
  constructor(readonly src: string) {}

  fail(reason: string, at = this.pos): never {
    throw new TraceFilterError(reason, this.src, at);
  }

  skip(): void {
    while (this.pos < this.src.length && /\s/.test(this.src[this.pos])) this.pos++;
  }

  peek(s: string): boolean {
    this.skip();
    return this.src.startsWith(s, this.pos);
  }

  /**
   * An expression: `&&` binds tighter than `||`, both left-associative; `!` applies to the
   * predicate or parenthesized group after it. Returns at the end of the input or at a
   * token that cannot continue the outermost level (the caller reports it).
   */
  parseExpr(): FilterNode {
    const groups: OpenGroup[] = [{ open: -1, nots: 0 }];
    let nots = 0; // `!`s read before the operand being parsed
    for (;;) {
      // An operand: any `!`s and `(`s, then a predicate.
      this.skip();
      if (this.pos >= this.src.length) this.fail('Missing field name and/or value');
      const c = this.src[this.pos];
      if (c === '!' && this.src[this.pos + 1] !== '=') {
        this.pos++;
        nots++;
        continue;
      }
      if (c === '(') {
        groups.push({ open: this.pos, nots });
        nots = 0;
        this.pos++;
        continue;
      }
      let operand = wrapNots(this.parsePred(), nots);
      nots = 0;
      // After an operand: `&&` or `||` (then the next operand), or the end of a group.
      for (;;) {
        const g = groups[groups.length - 1];
        const and: FilterNode = g.and ? { kind: 'and', left: g.and, right: operand } : operand;
        if (this.peek('&&')) {
          this.pos += 2;
          g.and = and;
          break;
        }
        const value: FilterNode = g.or ? { kind: 'or', left: g.or, right: and } : and;
        if (this.peek('||')) {
          this.pos += 2;
          g.or = value;
          g.and = undefined;
          break;
        }
        if (groups.length === 1) return value;
        if (!this.peek(')'))
          this.fail('Unbalanced parens', this.pos < this.src.length ? this.pos : g.open);
        this.pos++;
        groups.pop();
        operand = wrapNots(value, g.nots);
      }
    }
  }

  parsePred(): FilterNode {
    this.skip();
    const fieldAt = this.pos;
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.src.slice(this.pos));
    if (!m) {
      if (this.src[this.pos] === ')') this.fail('Unbalanced parens');
      this.fail('Field name is missing or invalid');
    }
    this.pos += m[0].length;
    this.skip();
    const opAt = this.pos;
    const op = OPS.find((o) => this.src.startsWith(o, this.pos));
    // `&&` after a field is a missing operator, not a bit test.
    if (!op || (op === '&' && this.src[this.pos + 1] === '&'))
      this.fail(this.pos >= this.src.length ? 'Missing operator' : 'Invalid operator', opAt);
    this.pos += op.length;
    this.skip();
    const valueAt = this.pos;
    const value = this.readValue();
    return {
      kind: 'pred',
      field: m[0],
      op,
      value,
      at: { field: fieldAt, op: opAt, value: valueAt },
    };
  }

  readValue(): string {
    const q = this.src[this.pos];
    if (q === '"' || q === "'") {
      const end = this.src.indexOf(q, this.pos + 1);
      if (end < 0) this.fail('Unterminated string');
      const v = this.src.slice(this.pos + 1, end);
      this.pos = end + 1;
      return v;
    }
    const start = this.pos;
    while (this.pos < this.src.length && !/[\s()&|!]/.test(this.src[this.pos])) this.pos++;
    if (this.pos === start) this.fail('Missing field name and/or value');
    return this.src.slice(start, this.pos);
  }
}

/**
 * Refuses an expression the `filter` file would not take: PAGE_SIZE bytes (UTF-8, as
 * written) or more. The caret is under the first character past PAGE_SIZE - 1 bytes.
 */
function checkLength(expression: string): void {
  const { read } = UTF8.encodeInto(expression, new Uint8Array(FILTER_PAGE_SIZE - 1));
  if (read < expression.length)
    throw new TraceFilterError(
      `Filter too long: ${UTF8.encode(expression).length} bytes, but a filter file takes at ` +
        `most ${FILTER_PAGE_SIZE - 1} (PAGE_SIZE - 1)`,
      expression,
      read,
    );
}

/**
 * Parses a filter expression into a tree. Throws {@link TraceFilterError} (E_USAGE) on a
 * syntax error. Returns undefined for an empty expression or `0` (no filter).
 */
export function parseTraceFilter(expression: string): FilterNode | undefined {
  checkLength(expression);
  const trimmed = expression.trim();
  if (trimmed === '' || trimmed === '0') return undefined;
  const p = new Parser(expression);
  const node = p.parseExpr();
  p.skip();
  if (p.pos < expression.length) {
    if (expression[p.pos] === ')') p.fail('Unbalanced parens');
    p.fail('Invalid operator; expected && or ||');
  }
  return node;
}

/** Field names a filter tree mentions. */
export function filterFields(node: FilterNode | undefined): string[] {
  return [...new Set(filterPreds(node).map((p) => p.field))];
}

/** A predicate of a parsed filter (`field op value`). */
export type FilterPred = Extract<FilterNode, { kind: 'pred' }>;

/** The predicates of a parsed filter, left to right. */
export function filterPreds(node: FilterNode | undefined): FilterPred[] {
  const out: FilterPred[] = [];
  // Depth-first with an explicit stack (trees may be thousands of levels deep).
  const todo: FilterNode[] = node ? [node] : [];
  for (let n = todo.pop(); n; n = todo.pop()) {
    if (n.kind === 'pred') out.push(n);
    else if (n.kind === 'not') todo.push(n.arg);
    else todo.push(n.right, n.left);
  }
  return out;
}

/** The smallest value kstrtoll() returns: -2^63. */
const S64_MIN = -(1n << 63n);
/** The largest value kstrtoull() returns: 2^64 - 1. */
const U64_MAX = (1n << 64n) - 1n;

/**
 * An integer as parse_pred() reads it: kstrtoll(s, 0) for a signed field, kstrtoull(s, 0)
 * for an unsigned one (lib/kstrtox.c): decimal, `0x` hex or leading-`0` octal, after an
 * optional sign (kstrtoull takes `+` only). Both fail with -ERANGE past 64 bits, which the
 * filter reports as "Illegal integer value". mops's schema does not say which fields are
 * signed, so a value either function accepts is taken: -2^63 to 2^64 - 1. Undefined for
 * anything else.
 */
function parseInteger(s: string): bigint | undefined {
  const m = /^([-+]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(s);
  if (!m) return undefined;
  const body = m[2];
  // BigInt reads `0x…` (and `0X…`) itself; octal needs its `0o` spelling.
  const magnitude =
    body.length > 1 && body[0] === '0' && !/^0[xX]/.test(body)
      ? BigInt(`0o${body.slice(1)}`)
      : BigInt(body);
  const v = m[1] === '-' ? -magnitude : magnitude;
  return v >= S64_MIN && v <= U64_MAX ? v : undefined;
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

/** A predicate's test on one record. */
type PredFn = (record: Readonly<Record<string, unknown>>) => boolean;

/**
 * parse_pred()'s bounds on a value: a string of MAX_FILTER_STR_VAL (256) characters or more,
 * or a number of 24 or more (its `num_buf[24]`), is "Operand too long", with the caret past
 * the value.
 */
const MAX_FILTER_STR_VAL = 256;
const NUM_BUF = 24;

/** Where parse_pred() puts the caret past a value (`pos + i`): at its closing quote, if any. */
function valueEnd(node: FilterPred, src: string): number {
  const q = src[node.at.value];
  return node.at.value + node.value.length + (q === '"' || q === "'" ? 1 : 0);
}

/** Checks a predicate against `schema` and builds its test. */
function compilePred(node: FilterPred, schema: FilterSchema, src: string): PredFn {
  const { field, op, value } = node;
  const type = Object.hasOwn(schema, field) ? schema[field] : undefined;
  if (type === undefined) throw new TraceFilterError('Field not found', src, node.at.field);
  if (type === 'str') {
    if (op !== '==' && op !== '!=' && op !== '~')
      throw new TraceFilterError('Illegal operation for field type', src, node.at.op);
    // The length in bytes, as the kernel counts it, checked after the operator.
    if (UTF8.encode(value).length >= MAX_FILTER_STR_VAL)
      throw new TraceFilterError('Operand too long', src, valueEnd(node, src));
    if (op === '~') {
      const negate = value.startsWith('!');
      const glob = parseGlob(negate ? value.slice(1) : value);
      return (r) => globMatch(glob, String(r[field] ?? '')) !== negate;
    }
    const eq = op === '==';
    return (r) => (String(r[field] ?? '') === value) === eq;
  }
  if (op === '~') throw new TraceFilterError('Illegal operation for field type', src, node.at.op);
  // A number starts with a digit or `-` (parse_pred()); anything else, `+5` among it, is
  // not read as one.
  if (!/^[-0-9]/.test(value))
    throw new TraceFilterError('Invalid value (did you forget quotes)?', src, node.at.value);
  if (value.length >= NUM_BUF)
    throw new TraceFilterError('Operand too long', src, valueEnd(node, src));
  const v = parseInteger(value);
  if (v === undefined) throw new TraceFilterError('Illegal integer value', src, node.at.value);
  // Most literals are safe integers and most record values numbers: compare those as
  // numbers, and only the rest exactly, as bigints.
  const n = Number(v);
  const cmp = Number.isSafeInteger(n)
    ? (r: Readonly<Record<string, unknown>>) => {
        const x = r[field];
        return typeof x === 'number' ? compareTo(x, n) : compareTo(toNumeric(x), v);
      }
    : (r: Readonly<Record<string, unknown>>) => compareTo(toNumeric(r[field]), v);
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
    case '>=':
      return (r) => cmp(r) >= 0;
    default: {
      const bits = BigInt.asUintN(64, v);
      return (r) => {
        const x = toNumeric(r[field]);
        if (typeof x === 'number' && !Number.isInteger(x)) return false;
        return (BigInt.asUintN(64, BigInt(x)) & bits) !== 0n;
      };
    }
  }
}

/**
 * One step of a compiled filter: run a predicate into the result register, invert it, or
 * jump ahead when it is false (`&&`) or true (`||`), leaving it as the value of the whole
 * `&&` / `||`.
 */
type FilterStep =
  | { readonly op: 'pred'; readonly fn: PredFn }
  | { readonly op: 'not' }
  | { readonly op: 'jump-if'; readonly when: boolean; to: number };

/**
 * Flattens the tree into a program of {@link FilterStep}s, walking it with an explicit
 * stack: like the kernel's prog_entry array (predicate_parse()), it runs in a loop, so no
 * depth of nesting can overflow the JS stack. Predicates are checked left to right, so the
 * first bad one is reported.
 */
function compileProgram(root: FilterNode, schema: FilterSchema, src: string): FilterStep[] {
  const prog: FilterStep[] = [];
  type Task =
    | { readonly visit: FilterNode }
    | { readonly emit: FilterStep }
    | { readonly land: { op: 'jump-if'; when: boolean; to: number } };
  const todo: Task[] = [{ visit: root }];
  for (let task = todo.pop(); task; task = todo.pop()) {
    if ('emit' in task) prog.push(task.emit);
    else if ('land' in task) task.land.to = prog.length;
    else {
      const n = task.visit;
      if (n.kind === 'pred') prog.push({ op: 'pred', fn: compilePred(n, schema, src) });
      else if (n.kind === 'not') todo.push({ emit: { op: 'not' } }, { visit: n.arg });
      else {
        // left; jump past right when left decides (false for &&, true for ||); right.
        const jump = { op: 'jump-if' as const, when: n.kind === 'or', to: -1 };
        todo.push({ land: jump }, { visit: n.right }, { emit: jump }, { visit: n.left });
      }
    }
  }
  return prog;
}

/** Runs a program from {@link compileProgram} on one record. */
function runProgram(prog: readonly FilterStep[], record: Readonly<Record<string, unknown>>) {
  let r = true;
  for (let pc = 0; pc < prog.length; pc++) {
    const step = prog[pc];
    if (step.op === 'pred') r = step.fn(record);
    else if (step.op === 'not') r = !r;
    else if (r === step.when) pc = step.to - 1;
  }
  return r;
}

/**
 * Parses `expression` and checks it against `schema` (every field known; string operators
 * only on string fields, numeric ones only on numbers; integer values well formed). Returns
 * a predicate over event records. Throws {@link TraceFilterError} (E_USAGE) pointing at the
 * bad token.
 */
export function compileTraceFilter(expression: string, schema: FilterSchema): FilterFn {
  const node = parseTraceFilter(expression);
  if (node === undefined) return () => true;
  const prog = compileProgram(node, schema, expression);
  return (record) => runProgram(prog, record);
}
