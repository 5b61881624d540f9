/**
 * The reading of a tracefs event filter, as kernel/trace/trace_events_filter.c reads one
 * since the 4.17 rewrite: calc_stack() first checks the quotes and parentheses of the whole
 * expression, then predicate_parse() walks it and hands each predicate to parse_pred(), which
 * checks it against the event's fields as it reads it (the field, then the operator, then the
 * value). The first error found in that order is the one reported, in the kernel's words and
 * at the offset parse_error() records for it, which is where tracefs's `error_log` prints the
 * caret. The parser reads the expression's UTF-8 bytes with the kernel's ctype (see
 * `filter_ctype.ts`), so every offset is a byte offset.
 * @module
 */

import { MopsError } from '../errors.js';
import type { FilterFieldType, FilterNode, FilterOp, FilterPred, FilterSchema } from './filter.js';
import { parseCpulist, TRACE_NR_CPUS } from './filter_cpus.js';
import { fromKernelBytes, isAlnum, isDigit, isSpace } from './filter_ctype.js';
import { parseFilterLiteral } from './filter_pred.js';
import type { TraceFilterProfile } from './filter_profile.js';

/**
 * A filter expression that does not parse or does not fit the event's fields. It is a
 * `MopsError('E_USAGE')`; the message names the problem in the kernel's words, as tracefs's
 * `error_log` prints them, and shows the expression with a caret under byte offset
 * {@link position}, where `error_log` puts it (past ASCII, a character is more than one
 * byte, so the caret stands further right than the character). Where the kernel reports no
 * parse error of its own, only an errno (its `error_log` then says `Error` with the caret at
 * 0), the message is `Error` with what is wrong in parentheses.
 */
export class TraceFilterError extends MopsError {
  /**
   * The byte offset the kernel records for the error (parse_error()'s `pos`), which
   * `error_log` prints the caret under; it may lie past the end of the expression.
   */
  readonly position: number;
  /** The filter expression. */
  readonly expression: string;
  /** The kernel's error text (the message's first line, without `filter: `). */
  readonly reason: string;

  /**
   * @param reason the kernel's error text, e.g. `Field not found`
   * @param expression the whole expression
   * @param position the byte offset the caret is under
   * @param detail a line of explanation after the caret, if any
   */
  constructor(reason: string, expression: string, position: number, detail?: string) {
    super(
      'E_USAGE',
      `filter: ${reason}\n  ${expression}\n  ${' '.repeat(Math.max(0, position))}^` +
        (detail === undefined ? '' : `\n  ${detail}`),
      'filter',
    );
    this.position = position;
    this.expression = expression;
    this.reason = reason;
  }
}

/** The operators parse_pred() tries, in its order (`<=` before `<`, `>=` before `>`). */
const OPS: readonly FilterOp[] = ['~', '!=', '==', '<=', '<', '>=', '>', '&'];

const isQuote = (c: string | undefined): boolean => c === '"' || c === "'";

/**
 * parse_pred()'s bounds on a value: a string of MAX_FILTER_STR_VAL (256) bytes or more, or a
 * number of 24 characters or more (its `num_buf[24]`), is "Operand too long".
 */
const MAX_FILTER_STR_VAL = 256;
const NUM_BUF = 24;

/** Whether parse_pred() reads a field of this type as a string (is_string_field()). */
const isStringType = (t: FilterFieldType): boolean => t === 'str' || t === 'comm';

/** The C types `sizeof(long)` bytes wide (an undeclared `num` counts as one). */
const LONG_SIZED: ReadonlySet<FilterFieldType> = new Set(['u64', 's64', 'num']);

/**
 * calc_stack()'s walk of the whole expression: a quote (`"` or `'`) left open is "Missing
 * matching quote" at that quote, a `)` closing nothing "Too few '('" at it, and a `(` left
 * open "Too many '('" at it (the one {@link unmatchedOpen} finds). Returns whether the
 * expression has anything but spaces and parentheses, that is, a predicate to parse.
 */
function calcStack(src: string, fail: (reason: string, at: number) => never): boolean {
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
      if (open === 1) fail("Too few '('", i);
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
  if (quote) fail('Missing matching quote', lastQuote);
  if (open !== 1) fail("Too many '('", unmatchedOpen(src, open));
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

/** The value of a predicate, as parse_pred() reads it from its first byte. */
type PredValue = Pick<FilterPred, 'value' | 'valueKind' | 'cpus'>;

/**
 * predicate_parse() over the expression's bytes. Nesting is kept on an explicit stack of
 * open groups, not the JS call stack, so `((((…))))`, `!!!!…` and long `&&` / `||` chains
 * cannot overflow it (predicate_parse() likewise walks the string with a stack of its own).
 */
class Parser {
  pos = 0;
  preds = 0;
  constructor(
    /** The expression as bytes (see `filter_ctype.ts`). */
    readonly src: string,
    /** The expression as errors show it. */
    readonly shown: string,
    readonly schema: FilterSchema | undefined,
    readonly rules: TraceFilterProfile,
    /** nr_cpu_ids, the CPUs a `CPUS{…}` cpulist may name. */
    readonly nrCpus: number,
  ) {}

  fail(reason: string, at: number): never {
    throw new TraceFilterError(reason, this.shown, at);
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
    if (!calcStack(src, (reason, at) => this.fail(reason, at)))
      this.fail('Error (no predicate)', 0);
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
   * parse_pred() is handed the offset one past the predicate's first byte and records each
   * error at that offset plus the index it looks at, so its caret falls one byte after
   * `index`.
   */
  predFail(reason: string, index: number): never {
    return this.fail(reason, index + 1);
  }

  /**
   * parse_pred(): a field name (letters, digits, `_`), the suffixes of the release
   * (`.ustring`, `.function`), an operator, and a value whose first byte says what it is. With
   * a schema, the field must be in it, and the value must fit its type and the operator:
   * after the field name, the caret falls after the name; after that, one byte past the start
   * of the operator or value, or past the end of a value read whole.
   */
  parsePred(): FilterPred {
    const { src, schema, rules } = this;
    const start = this.pos;
    let i = start;
    while (isAlnum(src[i]) || src[i] === '_') i++;
    // parse_pred() returns -1 without a parse error: error_log says "Error" at 0.
    if (i === start) this.fail(`Error (no field name at offset ${start})`, 0);
    const field = fromKernelBytes(src.slice(start, i));
    let type: FilterFieldType | undefined;
    if (schema) {
      type = Object.hasOwn(schema, field) ? schema[field] : undefined;
      if (type === undefined) this.predFail('Field not found', i);
    }
    // A `.ustring` field reads a `char *` from user memory: mops has none, so it changes
    // nothing here.
    if (rules.ustring && src.startsWith('.ustring', i)) i += '.ustring'.length;
    const fn = rules.functionSuffix && src.startsWith('.function', i);
    if (fn) i += '.function'.length;
    while (isSpace(src[i])) i++;
    const opAt = i;
    const op = OPS.find((o) => src.startsWith(o, opAt));
    if (op === undefined) return this.predFail('Invalid operator', i);
    i += op.length;
    while (isSpace(src[i])) i++;
    const valueAt = i;
    let value: PredValue;
    if (fn) return this.functionValue(i, op, type);
    if (rules.cpus && src.startsWith('CPUS', i)) [value, i] = this.cpusValue(i, op, type);
    else if (isQuote(src[i])) [value, i] = this.stringValue(i, op, type);
    else if (isDigit(src[i]) || src[i] === '-') [value, i] = this.numberValue(i, op, type);
    else return this.predFail('Invalid value (did you forget quotes)?', i);
    this.pos = i;
    return { kind: 'pred', field, op, ...value, at: { field: start, op: opAt, value: valueAt } };
  }

  /** A quoted string, for a string field and `==`, `!=` or `~`. Returns it and its end. */
  stringValue(i: number, op: FilterOp, type: FilterFieldType | undefined): [PredValue, number] {
    const { src } = this;
    if (type !== undefined) {
      if (op !== '==' && op !== '!=' && op !== '~')
        this.predFail('Illegal operation for field type', i);
      if (!isStringType(type)) this.predFail('Expecting numeric field', i);
    }
    const close = src.indexOf(src[i], i + 1);
    if (close < 0) this.predFail('Missing matching quote', src.length); // calc_stack() found it first
    const text = src.slice(i + 1, close);
    if (type !== undefined && text.length >= MAX_FILTER_STR_VAL)
      this.predFail('Operand too long', close);
    return [{ value: fromKernelBytes(text), valueKind: 'string' }, close + 1];
  }

  /**
   * A number (an optional `-`, then letters and digits), for a numeric field and any
   * operator but `~`, read as kstrtoll() or kstrtoull() reads it for the field's type.
   */
  numberValue(i: number, op: FilterOp, type: FilterFieldType | undefined): [PredValue, number] {
    const { src } = this;
    const from = i;
    if (type !== undefined) {
      if (isStringType(type)) this.predFail('Expecting string field', i);
      if (op === '~') this.predFail('Illegal operation for field type', i);
    }
    if (src[i] === '-') i++;
    while (isAlnum(src[i])) i++;
    const text = src.slice(from, i);
    if (type !== undefined) {
      if (text.length >= NUM_BUF) this.predFail('Operand too long', i);
      if (parseFilterLiteral(type, text) === undefined)
        this.predFail('Illegal integer value', from);
    }
    return [{ value: fromKernelBytes(text), valueKind: 'number' }, i];
  }

  /**
   * `CPUS{cpulist}` (6.6 on): for `cpu`/`CPU` or a numeric field, with `==`, `!=` or `&`; a
   * `{` right after `CPUS`, a `}` somewhere after it, and a cpulist between them that
   * cpulist_parse() takes for nr_cpu_ids CPUs.
   */
  cpusValue(i: number, op: FilterOp, type: FilterFieldType | undefined): [PredValue, number] {
    const { src } = this;
    if (type !== undefined) {
      if (isStringType(type)) this.predFail('Illegal operation for field type', i);
      if (op !== '==' && op !== '!=' && op !== '&')
        this.predFail('Illegal operation for field type', i);
    }
    i += 'CPUS'.length;
    // `if (str[i++] != '{')`: the caret lands two bytes past where the `{` should be.
    if (src[i++] !== '{') this.predFail("Missing '{'", i);
    const from = i;
    const close = src.indexOf('}', from);
    if (close < 0) this.predFail("Missing '}'", src.length);
    const list = src.slice(from, close);
    const cpus = list === '' ? undefined : parseCpulist(list, this.nrCpus);
    if (cpus === undefined) this.predFail('Invalid cpulist', close);
    return [{ value: fromKernelBytes(list), valueKind: 'cpus', cpus }, close + 1];
  }

  /**
   * A `.function` value (6.3 on): for a `long`-sized field and `==` or `!=`, a number (an
   * address, read with kstrtoul()) or a symbol name up to the next space, which
   * kallsyms_lookup_name() and kallsyms_lookup_size_offset() look up. mops has no kernel
   * symbols: whatever passes the checks before it is "Function not found".
   */
  functionValue(i: number, op: FilterOp, type: FilterFieldType | undefined): never {
    const { src } = this;
    if (type !== undefined) {
      if (!LONG_SIZED.has(type)) this.predFail('Illegal operation for field type', i);
      if (op !== '==' && op !== '!=') this.predFail('Invalid operator', i);
    }
    const from = i;
    if (isDigit(src[i])) {
      while (isAlnum(src[i])) i++;
      if (i - from >= NUM_BUF) this.predFail('Operand too long', i);
      if (parseFilterLiteral('u64', src.slice(from, i)) === undefined)
        this.predFail('Invalid value (did you forget quotes)?', i);
    } else while (i < src.length && !isSpace(src[i])) i++;
    return this.predFail('Function not found', i);
  }
}

/**
 * Parses the bytes of a filter expression that has something to parse (not empty, not `0`)
 * into a tree, checking it as calc_stack(), predicate_parse() and parse_pred() do under
 * `rules`. Without a schema, only what does not depend on the event's fields is checked: the
 * quotes and parentheses, that each predicate has a field name, an operator and a value of
 * some kind, and what may follow it. A `CPUS{…}` cpulist may name CPUs below `nrCpus`
 * (nr_cpu_ids). Throws {@link TraceFilterError} at the first error, the expression shown as
 * `shown`.
 */
export function parseFilterExpression(
  bytes: string,
  shown: string,
  rules: TraceFilterProfile,
  schema?: FilterSchema,
  nrCpus: number = TRACE_NR_CPUS,
): FilterNode {
  return new Parser(bytes, shown, schema, rules, nrCpus).parse();
}
