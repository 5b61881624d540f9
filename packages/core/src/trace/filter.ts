/**
 * tracefs event filters (kernel/trace/trace_events_filter.c,
 * Documentation/trace/events.rst §5): `order > 2 && migratetype == 1`, `comm ~ "kcomp*"`.
 *
 * Filters follow the grammar and the error messages of the parser the kernel has had since
 * 4.17 (calc_stack(), predicate_parse(), parse_pred(); the messages and caret offsets as 6.x
 * reports them), in every profile, v4.8 included: v4.8's own parser (filter_parse() and
 * init_pred()) also took unquoted string values (`comm == kcompactd0`), read a quoted number
 * for a numeric field (`order == "3"`), and reported other messages, none of which is
 * modelled. What differs between the releases modelled is the profile's `traceFilter`
 * ({@link TraceFilterProfile}): what an empty filter gets, the `.ustring` (5.17) and
 * `.function` (6.3) field suffixes, `CPUS{…}` values (6.6), and how a subsystem's filter
 * applies to its events. The reading itself is in `filter_parse.ts`.
 *
 * Grammar: predicates `field op value` combined with `&&`, `||`, `!` and parentheses. As
 * parse_pred() does, the value's first character says what it is: a quote (`"` or `'`)
 * starts a string, a digit or `-` a number (its letters and digits, so `order == 1.5` is
 * "Too many terms in predicate expression" at the `.`), `CPUS{` a cpulist (6.6 on), and
 * anything else (a bare word, `+5`) is "Invalid value (did you forget quotes)?". A string for
 * a numeric field is "Expecting numeric field", a number for a string field "Expecting
 * string field". A trailing `&&` or `||` is ignored, as predicate_parse() ignores it
 * (`order > 2 &&` is `order > 2`), except a trailing `&&` after an `||`, which it refuses.
 *
 * Numeric fields take `==`, `!=`, `<`, `<=`, `>`, `>=` and `&` (true when any bit is set).
 * Each has the C type its event's `format` file declares (`size:` and `signed:`, see
 * {@link FilterFieldType}): a signed field reads its value with `kstrtoll(…, 0)`, an unsigned
 * one with `kstrtoull(…, 0)` (lib/kstrtox.c: `0x` hex, a leading `0` octal, else decimal), so
 * `pfn > -1` is an "Illegal integer value" for the `unsigned long` pfn. The record's value and
 * the literal are both cast to the field's type, as filter_pred_##type() casts them, and
 * compared in it: unsigned fields compare as unsigned, and a field stores what its C type
 * holds (a failed allocation's pfn, -1UL, is 2^64 - 1). `cpu`/`CPU` (type `cpu`, FILTER_CPU)
 * compare as filter_pred_cpu() does, which has no `&`: `cpu & 1` never matches. `CPUS{…}`
 * compares as `filter_cpus.ts` describes.
 *
 * String fields take `==`, `!=` and `~`, which compare bytes as the kernel does: the
 * literal's UTF-8 bytes with the value's, up to its first NUL (`~` is a glob as lib/glob.c's
 * glob_match() reads it: `*`, `?` (one byte), `[…]` classes of byte ranges with `!`, `\`
 * quoting the next byte; a leading `!`
 * inverts the match, as filter_parse_regex() makes it, so `comm ~ "!kcomp*"` keeps the
 * events whose comm does not match `kcomp*`). `COMM`/`comm` (type `comm`, FILTER_COMM) test
 * the task's name as current->comm holds it: at most TASK_COMM_LEN - 1 = 15 bytes, so
 * `comm == "kcompactd-very-long"` never matches and `comm == "kcompactd-very-"` does.
 * Writing `0` to a `filter` file clears it, and a `0` filter accepts everything here. An
 * empty one is refused, as each release refuses it (`emptyFilter`).
 *
 * Like the `filter` file, which refuses a write of PAGE_SIZE bytes or more, an expression
 * may be at most 4095 bytes long, and like the C string the kernel reads, it ends at its
 * first NUL (U+0000): `comm == "a"\0 junk` is `comm == "a"`. Within that, nesting and chains of any depth parse and run
 * without recursion. The parser reads the expression's UTF-8 bytes with the kernel's ctype,
 * so offsets (and so carets) count bytes, as the kernel's do.
 * @module
 */

import { DEFAULT_PROFILE, getProfile, type Profile } from '../profile.js';
import { cpusPred, TRACE_NR_CPUS } from './filter_cpus.js';
import { cStringBytes, fromKernelBytes, isSpace } from './filter_ctype.js';
import { parseFilterExpression, TraceFilterError } from './filter_parse.js';
import { numericPred, type PredFn, parseFilterLiteral, stringPred } from './filter_pred.js';
import type { TraceFilterProfile } from './filter_profile.js';

/**
 * The type of a filterable field, as the event's `format` file declares it:
 * - a C integer type, by its `size:` and `signed:` columns (x86_64): `'u64'` for
 *   `unsigned long`, `'s32'` for `int`, `'u32'` for `unsigned int`, `gfp_t` and an enum with
 *   no negative value, `'bool'` for `bool` (one byte, unsigned, storing 0 or 1), and
 *   `'s64'`, `'u16'`, `'s16'`, `'u8'`, `'s8'`;
 * - `'str'`, a string;
 * - `'comm'`, the task name (the `COMM`/`comm` pseudo-fields, FILTER_COMM): a string cut to
 *   TASK_COMM_LEN - 1 bytes, as current->comm holds it;
 * - `'cpu'`, the CPU the event fired on (the `CPU`/`cpu` pseudo-fields, FILTER_CPU): an `int`
 *   that filter_pred_cpu() compares, with no `&`;
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
  | 'cpu'
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
      /** The value as written: a string's text without its quotes, a cpulist's text. */
      readonly value: string;
      /**
       * What the value is: a quoted `'string'`, a `'number'`, or `'cpus'`, a `CPUS{cpulist}`
       * (6.6 on).
       */
      readonly valueKind: 'string' | 'number' | 'cpus';
      /** The CPUs of a `CPUS{cpulist}` value, ascending. */
      readonly cpus?: readonly number[];
      /**
       * Byte offsets of the field, the operator and the value (its opening quote, if
       * quoted).
       */
      readonly at: { readonly field: number; readonly op: number; readonly value: number };
    };

/** A compiled filter: true when the record passes. */
export type FilterFn = (record: Readonly<Record<string, unknown>>) => boolean;

export { TraceFilterError };

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

/**
 * Refuses an expression the `filter` file would not take: PAGE_SIZE bytes (UTF-8, as
 * written) or more. The caret is under the first byte of the first character that does not
 * fit in PAGE_SIZE - 1 bytes.
 */
function checkLength(expression: string): void {
  const { read, written } = UTF8.encodeInto(expression, new Uint8Array(FILTER_PAGE_SIZE - 1));
  if (read < expression.length)
    throw new TraceFilterError(
      `Filter too long: ${UTF8.encode(expression).length} bytes, but a filter file takes at ` +
        `most ${FILTER_PAGE_SIZE - 1} (PAGE_SIZE - 1)`,
      expression,
      written,
    );
}

/** The rules filters follow in `profile`'s release; without one, the default profile's. */
function rulesOf(profile: Pick<Profile, 'traceFilter'> | undefined): TraceFilterProfile {
  return (profile ?? getProfile(DEFAULT_PROFILE)).traceFilter;
}

/**
 * What a write to a `filter` file holds, before it is parsed: `clear` for `0` between spaces
 * (apply_event_filter() compares the strstrip()ed text with `"0"`), else the bytes it parses
 * (without their trailing spaces, which strstrip() cut; leading spaces stay, so offsets are
 * unchanged), the text errors show, and whether nothing is left (`blank`).
 */
export type FilterText =
  | { readonly clear: true }
  | {
      readonly clear: false;
      readonly bytes: string;
      readonly shown: string;
      readonly blank: boolean;
    };

/**
 * Reads `expression` as the `filter` file takes it: event_filter_write() refuses a write of
 * PAGE_SIZE bytes or more, then hands apply_event_filter() the bytes as a C string
 * (memdup_user_nul()), so the expression ends at its first NUL (U+0000) and what follows is
 * never read; that is then cut as strstrip() cuts it, with the kernel's isspace(). Offsets in
 * the part before the NUL are unchanged.
 */
export function readFilterText(expression: string): FilterText {
  checkLength(expression);
  const all = cStringBytes(expression);
  let end = all.length;
  while (end > 0 && isSpace(all[end - 1])) end--;
  let start = 0;
  while (start < end && isSpace(all[start])) start++;
  if (end - start === 1 && all[start] === '0') return { clear: true };
  const bytes = all.slice(0, end);
  return { clear: false, bytes, shown: fromKernelBytes(bytes), blank: start === end };
}

/**
 * The error for an empty (or all-space) filter in `rules`' release: check_preds()'s
 * "Meaningless filter expression" (v4.8), or process_preds()' bare -EINVAL, which
 * `error_log` shows as "Error" (4.17 on); either at offset 0.
 */
function emptyFilterError(rules: TraceFilterProfile, shown: string): TraceFilterError {
  return new TraceFilterError(
    rules.emptyFilter === 'meaningless'
      ? 'Meaningless filter expression'
      : 'Error (an empty filter: no predicate; 0 clears a filter)',
    shown,
    0,
  );
}

/**
 * A write to a `filter` file, parsed under `rules` (against `schema`, if given): undefined
 * for `0`, which clears the filter; an empty one refused as the release refuses it.
 */
function parseWrite(
  expression: string,
  rules: TraceFilterProfile,
  schema?: FilterSchema,
  nrCpus?: number,
): FilterNode | undefined {
  const text = readFilterText(expression);
  if (text.clear) return undefined;
  if (text.blank) throw emptyFilterError(rules, text.shown);
  return parseFilterExpression(text.bytes, text.shown, rules, schema, nrCpus);
}

/**
 * Parses `expression` into a tree, checking it against `schema` as parse_pred() does in
 * `profile`'s release, without building its test. Throws as {@link compileTraceFilter} does;
 * undefined for `0`.
 * @param nrCpus nr_cpu_ids, the CPUs a `CPUS{…}` cpulist may name (default 2, the fewest a
 *   machine reports; a trace recorder passes its machine's count)
 */
export function parseTraceFilterFor(
  expression: string,
  schema: FilterSchema,
  profile: Pick<Profile, 'traceFilter'>,
  nrCpus?: number,
): FilterNode | undefined {
  return parseWrite(expression, profile.traceFilter, schema, nrCpus);
}

/**
 * Parses a filter expression into a tree, checking what does not depend on the event's
 * fields: the quotes and parentheses, then each predicate's field name, operator and kind of
 * value, and what follows it, as `profile`'s release reads them (default: the default
 * profile's). Throws {@link TraceFilterError} (E_USAGE) at the first error, and for an empty
 * expression, which the kernel refuses. Returns undefined for `0`, which clears a filter.
 */
export function parseTraceFilter(
  expression: string,
  profile?: Pick<Profile, 'traceFilter'>,
): FilterNode | undefined {
  return parseWrite(expression, rulesOf(profile));
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
 * The test of a predicate that parseFilterExpression() has checked against `schema`: a
 * string, a cpulist, or a number of the field's type.
 */
function compilePred(node: FilterPred, schema: FilterSchema, nrCpus: number): PredFn {
  const { field, op, value } = node;
  const type = schema[field];
  if (node.valueKind === 'string') return stringPred(field, op, value, type === 'comm');
  if (node.valueKind === 'cpus') return cpusPred(field, type, op, node.cpus ?? [], nrCpus);
  const lit = parseFilterLiteral(type, value);
  if (lit === undefined) throw new Error(`filter: '${value}' was checked but does not parse`);
  return numericPred(field, op, lit, type === 'cpu');
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
 * depth of nesting can overflow the JS stack.
 */
function compileProgram(root: FilterNode, schema: FilterSchema, nrCpus: number): FilterStep[] {
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
      if (n.kind === 'pred') prog.push({ op: 'pred', fn: compilePred(n, schema, nrCpus) });
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
 * Parses `expression` and checks it against `schema` as it goes, as parse_pred() does in
 * `profile`'s release (default: the default profile's): every field known; quoted strings
 * only for string fields, with string operators; numbers only for numeric fields, read as
 * their type's kstrtoll() or kstrtoull() reads them; the release's suffixes and `CPUS{…}`.
 * Returns a predicate over event records (for `0`, one that keeps them all). Throws
 * {@link TraceFilterError} (E_USAGE) at the first error, with the kernel's text and caret,
 * and for an empty expression, which the kernel refuses.
 * @param nrCpus nr_cpu_ids, the CPUs a `CPUS{…}` cpulist may name and the bound of a
 *   cpumask test of a numeric field (default 2, the fewest a machine reports; a trace
 *   recorder passes its machine's count)
 */
export function compileTraceFilter(
  expression: string,
  schema: FilterSchema,
  profile?: Pick<Profile, 'traceFilter'>,
  nrCpus: number = TRACE_NR_CPUS,
): FilterFn {
  const tree = parseWrite(expression, rulesOf(profile), schema, nrCpus);
  if (!tree) return () => true;
  const prog = compileProgram(tree, schema, nrCpus);
  return (record) => runProgram(prog, record);
}
