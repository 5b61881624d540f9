/**
 * tracefs event filters (kernel/trace/trace_events_filter.c,
 * Documentation/trace/events.rst §5): `order > 2 && migratetype == 1`, `comm ~ "kcomp*"`.
 *
 * Grammar: predicates `field op value` combined with `&&`, `||`, `!` and parentheses.
 * Numeric fields take `==`, `!=`, `<`, `<=`, `>`, `>=` and `&` (true when any bit is set);
 * their values are integers read as `kstrtoll(…, 0)` does (`0x` hex, a leading `0` octal).
 * String fields take `==`, `!=` and `~` (a glob with `*`, `?` and `[…]`; a leading `!`
 * inverts the match, as filter_parse_regex() makes it, so `comm ~ "!kcomp*"` keeps the
 * events whose comm does not match `kcomp*`); their values may be quoted with `"` or `'`, or bare words. An empty filter, or `0`, accepts everything, as
 * writing `0` to a `filter` file clears it.
 * @module
 */

import { MopsError } from '../errors.js';

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

/** Recursive-descent parser over the expression text. */
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

  parseOr(): FilterNode {
    let left = this.parseAnd();
    while (this.peek('||')) {
      this.pos += 2;
      left = { kind: 'or', left, right: this.parseAnd() };
    }
    return left;
  }

  parseAnd(): FilterNode {
    let left = this.parseUnary();
    while (this.peek('&&')) {
      this.pos += 2;
      left = { kind: 'and', left, right: this.parseUnary() };
    }
    return left;
  }

  parseUnary(): FilterNode {
    this.skip();
    if (this.pos >= this.src.length) this.fail('Missing field name and/or value');
    const c = this.src[this.pos];
    if (c === '!' && this.src[this.pos + 1] !== '=') {
      this.pos++;
      return { kind: 'not', arg: this.parseUnary() };
    }
    if (c === '(') {
      const open = this.pos;
      this.pos++;
      const inner = this.parseOr();
      if (!this.peek(')'))
        this.fail('Unbalanced parens', this.pos < this.src.length ? this.pos : open);
      this.pos++;
      return inner;
    }
    return this.parsePred();
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
 * Parses a filter expression into a tree. Throws {@link TraceFilterError} (E_USAGE) on a
 * syntax error. Returns undefined for an empty expression or `0` (no filter).
 */
export function parseTraceFilter(expression: string): FilterNode | undefined {
  const trimmed = expression.trim();
  if (trimmed === '' || trimmed === '0') return undefined;
  const p = new Parser(expression);
  const node = p.parseOr();
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
  const walk = (n: FilterNode): void => {
    if (n.kind === 'pred') out.push(n);
    else if (n.kind === 'not') walk(n.arg);
    else {
      walk(n.left);
      walk(n.right);
    }
  };
  if (node) walk(node);
  return out;
}

/** kstrtoll(s, 0): decimal, `0x` hex or leading-`0` octal, with an optional sign. */
function parseInteger(s: string): number | undefined {
  const m = /^([-+]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(s);
  if (!m) return undefined;
  const body = m[2];
  let v: number;
  if (/^0[xX]/.test(body)) v = Number.parseInt(body.slice(2), 16);
  else if (body.length > 1 && body[0] === '0') v = Number.parseInt(body.slice(1), 8);
  else v = Number.parseInt(body, 10);
  return m[1] === '-' ? -v : v;
}

/** glob_match(): `*`, `?` and `[…]` (with ranges and `!` negation) as a RegExp. */
export function globToRegExp(glob: string): RegExp {
  let re = '^';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, end);
      const neg = body.startsWith('!');
      if (neg) body = body.slice(1);
      re += `[${neg ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      i = end;
    } else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp(`${re}$`, 's');
}

function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'bigint') return Number(v);
  return Number.NaN;
}

function compileNode(node: FilterNode, schema: FilterSchema, src: string): FilterFn {
  switch (node.kind) {
    case 'and': {
      const a = compileNode(node.left, schema, src);
      const b = compileNode(node.right, schema, src);
      return (r) => a(r) && b(r);
    }
    case 'or': {
      const a = compileNode(node.left, schema, src);
      const b = compileNode(node.right, schema, src);
      return (r) => a(r) || b(r);
    }
    case 'not': {
      const a = compileNode(node.arg, schema, src);
      return (r) => !a(r);
    }
  }
  const { field, op, value } = node;
  const type = Object.hasOwn(schema, field) ? schema[field] : undefined;
  if (type === undefined) throw new TraceFilterError('Field not found', src, node.at.field);
  if (type === 'str') {
    if (op !== '==' && op !== '!=' && op !== '~')
      throw new TraceFilterError('Illegal operation for field type', src, node.at.op);
    if (op === '~') {
      const negate = value.startsWith('!');
      const re = globToRegExp(negate ? value.slice(1) : value);
      return (r) => re.test(String(r[field] ?? '')) !== negate;
    }
    const eq = op === '==';
    return (r) => (String(r[field] ?? '') === value) === eq;
  }
  if (op === '~') throw new TraceFilterError('Illegal operation for field type', src, node.at.op);
  const v = parseInteger(value);
  if (v === undefined) throw new TraceFilterError('Illegal integer value', src, node.at.value);
  switch (op) {
    case '==':
      return (r) => toNumber(r[field]) === v;
    case '!=':
      return (r) => toNumber(r[field]) !== v;
    case '<':
      return (r) => toNumber(r[field]) < v;
    case '<=':
      return (r) => toNumber(r[field]) <= v;
    case '>':
      return (r) => toNumber(r[field]) > v;
    case '>=':
      return (r) => toNumber(r[field]) >= v;
    default: {
      const big = BigInt.asUintN(64, BigInt(v));
      return (r) => {
        const x = toNumber(r[field]);
        if (!Number.isInteger(x)) return false;
        return (BigInt.asUintN(64, BigInt(x)) & big) !== 0n;
      };
    }
  }
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
  return compileNode(node, schema, expression);
}
