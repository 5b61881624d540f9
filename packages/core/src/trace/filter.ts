/**
 * tracefs event filters (kernel/trace/trace_events_filter.c,
 * Documentation/trace/events.rst §5): `order > 2 && migratetype == 1`, `comm ~ "kcomp*"`.
 *
 * Grammar: predicates `field op value` combined with `&&`, `||`, `!` and parentheses. As
 * parse_pred() does since the 4.17 rewrite, the value's first character says what it is: a
 * quote (`"` or `'`) starts a string, a digit or `-` a number, and anything else (a bare
 * word, `+5`) is "Invalid value (did you forget quotes)?". A string for a numeric field is
 * "Expecting numeric field", a number for a string field "Expecting string field".
 *
 * Numeric fields take `==`, `!=`, `<`, `<=`, `>`, `>=` and `&` (true when any bit is set).
 * Each has the C type its event's `format` file declares (`size:` and `signed:`, see
 * {@link FilterFieldType}): a signed field reads its value with `kstrtoll(…, 0)`, an unsigned
 * one with `kstrtoull(…, 0)` (lib/kstrtox.c: `0x` hex, a leading `0` octal, else decimal), so
 * `pfn > -1` is an "Illegal integer value" for the `unsigned long` pfn. The record's value and
 * the literal are both cast to the field's type, as filter_pred_##type() casts them, and
 * compared in it: unsigned fields compare as unsigned, and a field stores what its C type
 * holds (a failed allocation's pfn, -1UL, is 2^64 - 1).
 *
 * String fields take `==`, `!=` and `~` (a glob as lib/glob.c's glob_match() reads it:
 * `*`, `?`, `[…]` classes with ranges and `!`, `\` quoting the next character; a leading `!`
 * inverts the match, as filter_parse_regex() makes it, so `comm ~ "!kcomp*"` keeps the
 * events whose comm does not match `kcomp*`). `COMM`/`comm` (type `comm`, FILTER_COMM) test
 * the task's name as current->comm holds it: at most TASK_COMM_LEN - 1 = 15 bytes, so
 * `comm == "kcompactd-very-long"` never matches and `comm == "kcompactd-very-"` does. An
 * empty filter, or `0`, accepts everything, as writing `0` to a `filter` file clears it.
 *
 * Like the `filter` file, which refuses a write of PAGE_SIZE bytes or more, an expression
 * may be at most 4095 bytes long. Within that, nesting and chains of any depth parse and run
 * without recursion.
 * @module
 */

import { MopsError } from '../errors.js';
import { numericPred, type PredFn, parseFilterLiteral, stringPred } from './filter_pred.js';

/**
 * The type of a filterable field, as the event's `format` file declares it:
 * - a C integer type, by its `size:` and `signed:` columns (x86_64): `'u64'` for
 *   `unsigned long`, `'s32'` for `int`, `'u32'` for `unsigned int`, `gfp_t` and an enum with
 *   no negative value, `'bool'` for `bool` (one byte, unsigned, storing 0 or 1), and
 *   `'s64'`, `'u16'`, `'s16'`, `'u8'`, `'s8'`;
 * - `'str'`, a string;
 * - `'comm'`, the task name (the `COMM`/`comm` pseudo-fields, FILTER_COMM): a string cut to
 *   TASK_COMM_LEN - 1 bytes, as current->comm holds it;
 * - `'num'`, a number whose C type is not declared: it takes a literal that kstrtoll() or
 *   kstrtoull() reads (-2^63 to 2^64 - 1) and compares it with the record's value exactly.
 */
export type FilterFieldType =
  | 'u8'
  | 's8'
  | 'u16'
  | 's16'
  | 'u32'
  | 's32'
  | 'u64'
  | 's64'
  | 'bool'
  | 'str'
  | 'comm'
  | 'num';

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
      if (end < 0) this.fail('Missing matching quote');
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

/**
 * Checks a predicate against `schema` and builds its test, in parse_pred()'s order: the field,
 * then what the value's first character makes it (a quoted string, a number, or neither),
 * then whether the operator and the field's type take that.
 */
function compilePred(node: FilterPred, schema: FilterSchema, src: string): PredFn {
  const { field, op, value } = node;
  const fail = (reason: string, at: number): never => {
    throw new TraceFilterError(reason, src, at);
  };
  const type = Object.hasOwn(schema, field) ? schema[field] : undefined;
  if (type === undefined) return fail('Field not found', node.at.field);
  const isString = type === 'str' || type === 'comm';
  const first = src[node.at.value];
  if (first === '"' || first === "'") {
    if (op !== '==' && op !== '!=' && op !== '~')
      fail('Illegal operation for field type', node.at.op);
    if (!isString) fail('Expecting numeric field', node.at.value);
    // The length in bytes, as the kernel counts it.
    if (UTF8.encode(value).length >= MAX_FILTER_STR_VAL)
      fail('Operand too long', valueEnd(node, src));
    return stringPred(field, op, value, type === 'comm');
  }
  // A number starts with a digit or `-`; anything else, `+5` and bare words among it, is
  // neither a number nor a string.
  if (!/^[-0-9]/.test(value)) fail('Invalid value (did you forget quotes)?', node.at.value);
  if (isString) fail('Expecting string field', node.at.value);
  if (op === '~') fail('Illegal operation for field type', node.at.op);
  if (value.length >= NUM_BUF) fail('Operand too long', valueEnd(node, src));
  const lit = parseFilterLiteral(type, value);
  if (lit === undefined) return fail('Illegal integer value', node.at.value);
  return numericPred(field, op, lit);
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
 * Parses `expression` and checks it against `schema` (every field known; quoted strings
 * only for string fields, with string operators; numbers only for numeric fields, read as
 * their type's kstrtoll() or kstrtoull() reads them). Returns a predicate over event
 * records. Throws {@link TraceFilterError} (E_USAGE) pointing at the bad token.
 */
export function compileTraceFilter(expression: string, schema: FilterSchema): FilterFn {
  const node = parseTraceFilter(expression);
  if (node === undefined) return () => true;
  const prog = compileProgram(node, schema, expression);
  return (record) => runProgram(prog, record);
}
