/**
 * The reading of a tracefs event filter, as kernel/trace/trace_events_filter.c reads one
 * since the 4.17 rewrite: calc_stack() first checks the quotes and parentheses of the whole
 * expression, then predicate_parse() walks it and hands each predicate to parse_pred(), which
 * checks it against the event's fields as it reads it (the field, then the operator, then the
 * value). The first error found in that order is the one reported, in the kernel's words and
 * at the offset parse_error() records for it, which is where tracefs's `error_log` prints the
 * caret.
 * @module
 */

import { MopsError } from '../errors.js';
import type { FilterFieldType, FilterNode, FilterOp, FilterPred, FilterSchema } from './filter.js';
import { parseFilterLiteral } from './filter_pred.js';

/**
 * A filter expression that does not parse or does not fit the event's fields. It is a
 * `MopsError('E_USAGE')`; the message names the problem in the kernel's words, as tracefs's
 * `error_log` prints them, and shows the expression with a caret under the character at
 * {@link position}, where `error_log` puts it. Where the kernel reports no parse error of its
 * own, only an errno (its `error_log` then says `Error` with the caret at 0), the message is
 * `Error` with what is wrong in parentheses.
 */
export class TraceFilterError extends MopsError {
  /**
   * The offset the kernel records for the error (parse_error()'s `pos`), which `error_log`
   * prints the caret under; it may lie past the end of the expression.
   */
  readonly position: number;
  /** The filter expression. */
  readonly expression: string;

  /**
   * @param reason the kernel's error text, e.g. `Field not found`
   * @param expression the whole expression
   * @param position the offset the caret is under
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

/** The operators parse_pred() tries, in its order (`<=` before `<`, `>=` before `>`). */
const OPS: readonly FilterOp[] = ['~', '!=', '==', '<=', '<', '>=', '>', '&'];

/** isspace() of the kernel's ctype for ASCII. */
const isSpace = (c: string | undefined): boolean =>
  c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';
const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
const isAlnum = (c: string | undefined): boolean =>
  c !== undefined && (isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
const isQuote = (c: string | undefined): boolean => c === '"' || c === "'";

/** Byte lengths are counted in UTF-8, as the kernel sees the text written to it. */
const UTF8 = new TextEncoder();

/**
 * parse_pred()'s bounds on a value: a string of MAX_FILTER_STR_VAL (256) bytes or more, or a
 * number of 24 characters or more (its `num_buf[24]`), is "Operand too long".
 */
const MAX_FILTER_STR_VAL = 256;
const NUM_BUF = 24;

/** Whether parse_pred() reads a field of this type as a string (is_string_field()). */
const isStringType = (t: FilterFieldType): boolean => t === 'str' || t === 'comm';

/**
 * calc_stack()'s walk of the whole expression: a quote (`"` or `'`) left open is "Missing
 * matching quote" at that quote, a `)` closing nothing "Too few '('" at it, and a `(` left
 * open "Too many '('" at it (the one {@link unmatchedOpen} finds). Returns whether the
 * expression has anything but spaces and parentheses, that is, a predicate to parse.
 */
function calcStack(src: string): boolean {
  let open = 1; // the expression counts as "(E)"
  let quote = '';
  let lastQuote = 0;
  let anyPred = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (isSpace(c)) continue;
    if (quote) {
      if (c === quote) quote = '';
      continue;
    }
    if (c === ')') {
      if (open === 1) throw new TraceFilterError("Too few '('", src, i);
      open--;
    } else if (c === '(') open++;
    else {
      if (isQuote(c)) {
        quote = c;
        lastQuote = i;
      }
      anyPred = true;
    }
  }
  if (quote) throw new TraceFilterError('Missing matching quote', src, lastQuote);
  if (open !== 1) throw new TraceFilterError("Too many '('", src, unmatchedOpen(src, open));
  return anyPred;
}

/**
 * The `(` calc_stack() blames when `open - 1` are left open: walking back from the end
 * (skipping quoted text), the first `(` no later `)` closes; 0, the first character, when the
 * walk reaches it (the walk stops before looking at it).
 */
function unmatchedOpen(src: string, open: number): number {
  let level = open;
  let quote = '';
  for (let i = src.length - 1; i > 0; i--) {
    const c = src[i];
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '(') {
      if (level === open) return i;
      level--;
    } else if (c === ')') level++;
    else if (isQuote(c)) quote = c;
  }
  return 0;
}

/** Wraps `node` in `count` nots, innermost first (`!!a` is not(not(a))). */
function wrapNots(node: FilterNode, count: number): FilterNode {
  let out = node;
  for (let i = 0; i < count; i++) out = { kind: 'not', arg: out };
  return out;
}

/** A `(` being parsed: the `!`s before it and its `||` / `&&` chains so far. */
interface OpenGroup {
  readonly nots: number;
  or?: FilterNode;
  and?: FilterNode;
}

/** `or || and`, either of which may be missing (not both). */
function joinOr(or: FilterNode | undefined, and: FilterNode | undefined): FilterNode {
  if (!or) return and as FilterNode;
  return and ? { kind: 'or', left: or, right: and } : or;
}

/**
 * predicate_parse() over the expression text. Nesting is kept on an explicit stack of open
 * groups, not the JS call stack, so `((((…))))`, `!!!!…` and long `&&` / `||` chains cannot
 * overflow it (predicate_parse() likewise walks the string with a stack of its own).
 */
class Parser {
  pos = 0;
  preds = 0;
  constructor(
    readonly src: string,
    readonly schema: FilterSchema | undefined,
  ) {}

  fail(reason: string, at: number): never {
    throw new TraceFilterError(reason, this.src, at);
  }

  skip(): void {
    while (this.pos < this.src.length && isSpace(this.src[this.pos])) this.pos++;
  }

  /**
   * An expression: `&&` binds tighter than `||`, both left-associative; `!` applies to the
   * predicate or parenthesized group after it.
   */
  parse(): FilterNode {
    const { src } = this;
    if (!calcStack(src)) this.fail('Error (no predicate)', 0);
    const groups: OpenGroup[] = [{ nots: 0 }];
    let nots = 0; // `!`s read before the operand being parsed
    let pending: '&&' | '||' = '&&'; // the operator before that operand
    for (;;) {
      // An operand: any `!`s and `(`s, then a predicate.
      this.skip();
      if (this.pos >= src.length) return this.end(groups[0], pending);
      const c = src[this.pos];
      // `!=` and `!~` are not nots (is_not()).
      if (c === '!' && src[this.pos + 1] !== '=' && src[this.pos + 1] !== '~') {
        this.pos++;
        nots++;
        continue;
      }
      if (c === '(') {
        groups.push({ nots });
        nots = 0;
        this.pos++;
        continue;
      }
      let operand = wrapNots(this.parsePred(), nots);
      this.preds++;
      nots = 0;
      // After an operand: `&&` or `||` (then the next operand), `)` or the end.
      for (;;) {
        this.skip();
        const g = groups[groups.length - 1];
        const and: FilterNode = g.and ? { kind: 'and', left: g.and, right: operand } : operand;
        const at = this.pos;
        if ((src[at] === '&' || src[at] === '|') && src[at + 1] === src[at]) {
          this.pos += 2;
          pending = src[at] === '&' ? '&&' : '||';
          if (pending === '&&') g.and = and;
          else {
            g.or = joinOr(g.or, and);
            g.and = undefined;
          }
          break;
        }
        const value = joinOr(g.or, and);
        if (at >= src.length) {
          // calc_stack() has matched every `(` already.
          if (groups.length > 1) this.fail("Too many '('", at + 1);
          return value;
        }
        if (src[at] !== ')') this.fail('Too many terms in predicate expression', at);
        if (groups.length === 1) this.fail("Too few '('", at + 1);
        this.pos++;
        groups.pop();
        operand = wrapNots(value, g.nots);
      }
    }
  }

  /**
   * The end of the expression where an operand was due: "No filter found" when there is no
   * predicate at all. After a trailing `&&` or `||` (and any `!`s) predicate_parse() ends its
   * program at the last predicate, so the operator is ignored; but a trailing `&&` after an
   * `||` leaves the `||`'s branch without a target, which its WARN_ON() refuses (-EINVAL).
   * Every `(` is closed here: calc_stack() checked that, and an operand cannot follow `)`.
   */
  end(top: OpenGroup, pending: '&&' | '||'): FilterNode {
    if (this.preds === 0) this.fail('No filter found', this.src.length);
    if (pending === '&&' && top.or) this.fail('Error (a trailing && after ||)', 0);
    return joinOr(top.or, top.and);
  }

  /**
   * parse_pred(): a field name (letters, digits, `_`), an operator, and a value whose first
   * character says what it is: a quote starts a string, a digit or `-` a number (its letters
   * and digits), anything else is "Invalid value (did you forget quotes)?". With a schema,
   * the field must be in it, and the value must fit its type and the operator. parse_pred()
   * is handed the offset one past the predicate's first character and records each error at
   * that offset plus the index it looks at, so its caret falls one character after that
   * index: after the field name, at the character past the operator's or value's start.
   */
  parsePred(): FilterPred {
    const { src, schema } = this;
    const fail = (reason: string, index: number): never => this.fail(reason, index + 1);
    const start = this.pos;
    let i = start;
    while (isAlnum(src[i]) || src[i] === '_') i++;
    // parse_pred() returns -1 without a parse error: error_log says "Error" at 0.
    if (i === start) this.fail(`Error (no field name at offset ${start})`, 0);
    const field = src.slice(start, i);
    let type: FilterFieldType | undefined;
    if (schema) {
      type = Object.hasOwn(schema, field) ? schema[field] : undefined;
      if (type === undefined) fail('Field not found', i);
    }
    while (isSpace(src[i])) i++;
    const opAt = i;
    const op = OPS.find((o) => src.startsWith(o, opAt));
    if (op === undefined) return fail('Invalid operator', i);
    i += op.length;
    while (isSpace(src[i])) i++;
    const valueAt = i;
    let value: string;
    if (isQuote(src[i])) {
      if (type !== undefined) {
        if (op !== '==' && op !== '!=' && op !== '~') fail('Illegal operation for field type', i);
        if (!isStringType(type)) fail('Expecting numeric field', i);
      }
      const close = src.indexOf(src[i], i + 1);
      if (close < 0) fail('Missing matching quote', src.length); // calc_stack() found it first
      value = src.slice(i + 1, close);
      if (type !== undefined && UTF8.encode(value).length >= MAX_FILTER_STR_VAL)
        fail('Operand too long', close);
      i = close + 1;
    } else if (isDigit(src[i]) || src[i] === '-') {
      if (type !== undefined) {
        if (isStringType(type)) fail('Expecting string field', i);
        if (op === '~') fail('Illegal operation for field type', i);
      }
      if (src[i] === '-') i++;
      while (isAlnum(src[i])) i++;
      value = src.slice(valueAt, i);
      if (type !== undefined) {
        if (value.length >= NUM_BUF) fail('Operand too long', i);
        if (parseFilterLiteral(type, value) === undefined) fail('Illegal integer value', valueAt);
      }
    } else return fail('Invalid value (did you forget quotes)?', i);
    this.pos = i;
    return { kind: 'pred', field, op, value, at: { field: start, op: opAt, value: valueAt } };
  }
}

/**
 * Parses a filter expression that has something to parse (not empty, not `0`) into a tree,
 * checking it as calc_stack(), predicate_parse() and parse_pred() do. Without a schema, only
 * what does not depend on the event's fields is checked: the quotes and parentheses, that
 * each predicate has a field name, an operator and a value of some kind, and what may follow
 * it. Throws {@link TraceFilterError} at the first error.
 */
export function parseFilterExpression(expression: string, schema?: FilterSchema): FilterNode {
  return new Parser(expression, schema).parse();
}
