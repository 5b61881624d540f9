/**
 * What the /proc parsers share: the error they raise, how a message quotes the input, line
 * splitting, and the checks of a zone, a node and a count.
 * @module
 */

import { MopsError, valueKind } from '../errors.js';
import { ZONE_NAMES } from '../memory/constants.js';

/** A parse error: `E_PROC_PARSE` naming the file and the line. */
export function procParseError(file: string, line: number, message: string): MopsError {
  return new MopsError(
    'E_PROC_PARSE',
    line > 0 ? `${file} line ${line}: ${message}` : `${file}: ${message}`,
    file,
  );
}

/** The most characters of the input a message quotes: a file can hold a line of any length. */
const QUOTE_MAX = 80;

/**
 * A piece of the input as a message shows it: cut to {@link QUOTE_MAX} characters with an
 * ellipsis, control characters other than tab escaped (a lone CR would send the terminal
 * back to the start of the message).
 */
export function shown(s: string): string {
  const cut = s.length > QUOTE_MAX ? `${s.slice(0, QUOTE_MAX - 1)}…` : s;
  let out = '';
  for (const c of cut) {
    const code = c.charCodeAt(0);
    if (code === 9 || (code > 0x1f && code !== 0x7f)) out += c;
    else if (c === '\r') out += '\\r';
    else if (c === '\n') out += '\\n';
    else out += `\\x${code.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** {@link shown}, in single quotes: a line or a word of the input. */
export function quote(s: string): string {
  return `'${shown(s)}'`;
}

/** The lines of a /proc file; CRLF line ends are accepted as LF. */
export function splitLines(text: string): string[] {
  return text.split(/\r?\n/);
}

/**
 * The whitespace-separated words of `text`. Splitting instead of matching a repeated
 * `(\s+\d+)*`-like pattern keeps parsing linear in the line, however long its runs of
 * whitespace.
 */
export function words(text: string): string[] {
  const t = text.trim();
  return t === '' ? [] : t.split(/\s+/);
}

/**
 * What follows `prefix` at the start of `line`, when a word break follows it (whitespace or
 * the end of the line); otherwise undefined.
 */
export function after(line: string, prefix: string): string | undefined {
  if (!line.startsWith(prefix)) return undefined;
  const rest = line.slice(prefix.length);
  return rest === '' || /^\s/.test(rest) ? rest : undefined;
}

/** E_USAGE unless a parser was given a string to parse and a string to name the file by. */
export function checkText(fn: string, text: unknown, file: unknown): void {
  if (typeof text !== 'string')
    throw new MopsError(
      'E_USAGE',
      `${fn}: text must be a string (the file's contents), got ${valueKind(text)}`,
      'text',
    );
  if (typeof file !== 'string')
    throw new MopsError(
      'E_USAGE',
      `${fn}: file must be a string (the name messages give the file), got ${valueKind(file)}`,
      'file',
    );
}

/** The error for CMA pages: mops does not model CMA. */
export function noCma(file: string, line: number, what: string): MopsError {
  return procParseError(
    file,
    line,
    `${what}; mops has no CMA (no MIGRATE_CMA pageblocks, no CMA allocations), so it cannot rebuild this machine`,
  );
}

/** The index of zone `name`, or an error naming the line. */
export function zoneIndex(file: string, line: number, name: string): number {
  const idx = ZONE_NAMES.indexOf(name);
  if (idx < 0)
    throw procParseError(
      file,
      line,
      `unknown zone ${quote(name)}; mops models the zones ${ZONE_NAMES.join(', ')}`,
    );
  return idx;
}

/** An error unless the node is node 0. */
export function checkNode(file: string, line: number, node: string): void {
  if (node !== '0')
    throw procParseError(file, line, `node ${shown(node)}: mops emulates a single node (node 0)`);
}

/**
 * The value of a decimal integer token (digits, with a `-` only when `signed`) that the
 * kernel printed: an error naming the line when it is negative where the kernel prints an
 * unsigned value (`unsigned` says where), or when it is beyond 2^53 - 1, which a JavaScript
 * number cannot hold exactly (mops would print back another number than it read).
 */
export function exactInteger(
  file: string,
  line: number,
  name: string,
  token: string,
  unsigned?: string,
): number {
  if (unsigned !== undefined && token.startsWith('-'))
    throw procParseError(file, line, `${shown(name)} ${shown(token)} is negative; ${unsigned}`);
  const v = Number(token);
  if (!Number.isSafeInteger(v))
    throw procParseError(
      file,
      line,
      `${shown(name)} ${shown(token)} is beyond what mops can represent exactly (at most ${Number.MAX_SAFE_INTEGER})`,
    );
  return v;
}

/** `n` as a message shows a count: exact, or `more than 2^53 - 1` past what a number holds. */
export function exactCount(n: number): string {
  return Number.isSafeInteger(n) ? String(n) : `more than ${Number.MAX_SAFE_INTEGER}`;
}
