/**
 * Glob patterns as lib/glob.c's glob_match() reads them, for the `~` operator of tracefs
 * filters: `*`, `?`, `[…]` classes with ranges and a leading `!`, `\` quoting the next
 * character outside a class. A reversed range matches nothing; no pattern is an error.
 * Filters match bytes, as the kernel does: {@link compileFilterRegex} takes the pattern's
 * UTF-8 bytes, one character per byte, and matches them against a value's bytes.
 * @module
 */

/** One element of a glob: a character, `?`, `*` or a `[…]` class. */
export type GlobToken =
  | { readonly kind: 'char'; readonly code: number }
  | { readonly kind: 'any' }
  | { readonly kind: 'star' }
  | {
      readonly kind: 'class';
      readonly inverted: boolean;
      /** Inclusive ranges of char codes; a single character is `[c, c]`. */
      readonly spans: readonly (readonly [number, number])[];
    };

/**
 * Splits a glob as lib/glob.c's glob_match() reads it. `?` is any one character, `*` any
 * run of them, `\` makes the next character literal (a trailing `\` matches the end of the
 * string, which the anchored match already requires, so it adds nothing). A class is `[`,
 * an optional `!` inverting it, then spans up to the first `]` that is not the first span:
 * a character or a range `a-b` (a `-` just before the closing `]` is literal). A range
 * whose end is below its start matches nothing (glob_match() just tests `a <= c && c <= b`),
 * and there are no escapes inside a class. A `[` without its `]` is a literal `[`.
 */
export function parseGlob(glob: string): GlobToken[] {
  const out: GlobToken[] = [];
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '?') out.push({ kind: 'any' });
    else if (c === '*') out.push({ kind: 'star' });
    else if (c === '\\') {
      if (i + 1 < glob.length) out.push({ kind: 'char', code: glob.charCodeAt(++i) });
    } else if (c === '[') {
      const cls = parseGlobClass(glob, i + 1);
      if (cls) {
        out.push(cls.token);
        i = cls.end;
      } else out.push({ kind: 'char', code: 0x5b });
    } else out.push({ kind: 'char', code: glob.charCodeAt(i) });
  }
  return out;
}

/** The class whose body starts at `from` (after its `[`), and the index of its `]`. */
function parseGlobClass(
  glob: string,
  from: number,
): { token: GlobToken & { kind: 'class' }; end: number } | undefined {
  const inverted = glob[from] === '!';
  const spans: [number, number][] = [];
  let j = inverted ? from + 1 : from;
  // The first span may be `]`: the class closes at the first `]` after it.
  for (let first = true; ; first = false) {
    if (j >= glob.length) return undefined;
    if (!first && glob[j] === ']') return { token: { kind: 'class', inverted, spans }, end: j };
    const lo = glob.charCodeAt(j);
    let hi = lo;
    if (glob[j + 1] === '-' && glob[j + 2] !== ']') {
      if (j + 2 >= glob.length) return undefined;
      hi = glob.charCodeAt(j + 2);
      j += 3;
    } else j += 1;
    if (lo <= hi) spans.push([lo, hi]);
  }
}

/** Whether the character `code` matches `t` (a token other than `*`). */
function globTokenMatches(t: GlobToken, code: number): boolean {
  switch (t.kind) {
    case 'char':
      return t.code === code;
    case 'class':
      return t.spans.some(([lo, hi]) => lo <= code && code <= hi) !== t.inverted;
    default:
      return true;
  }
}

/**
 * Whether `tokens` match all of `s`. Like glob_match(), it only ever returns to the last
 * `*` (one character further each time), which is enough because `*` matches anything:
 * at most |s| × |tokens| steps, with no recursion and no backtracking blow-up.
 */
export function globMatch(tokens: readonly GlobToken[], s: string): boolean {
  let t = 0;
  let i = 0;
  let starT = -1; // token after the last `*`
  let starI = 0; // where that `*`'s match currently ends
  for (;;) {
    if (t < tokens.length) {
      const tok = tokens[t];
      if (tok.kind === 'star') {
        starT = ++t;
        starI = i;
        continue;
      }
      if (i < s.length && globTokenMatches(tok, s.charCodeAt(i))) {
        t++;
        i++;
        continue;
      }
    } else if (i === s.length) return true;
    if (starT < 0 || starI >= s.length) return false;
    t = starT;
    i = ++starI;
  }
}

/** A char code as a RegExp escape: valid in any position, in or out of a class. */
function reChar(code: number): string {
  return `\\u${code.toString(16).padStart(4, '0')}`;
}

/**
 * glob_match() as a RegExp (see `parseGlob` for the syntax) on JavaScript characters: every
 * character is escaped, reversed ranges are dropped, so any glob gives a valid RegExp. A
 * filter's `~` matches bytes instead (as the kernel does), so on text that is not ASCII the
 * two may differ: `?` is one character here, one byte there. A class left with
 * no span matches nothing (`[!…]`: any one character). Filters themselves match with
 * glob_match()'s bounded algorithm instead: a RegExp with many `*`s can backtrack for a
 * very long time on a long string.
 */
export function globToRegExp(glob: string): RegExp {
  let re = '^';
  let prev: GlobToken['kind'] | undefined;
  for (const t of parseGlob(glob)) {
    if (t.kind === 'star') {
      if (prev !== 'star') re += '.*'; // `**` is `*`: keep the RegExp from backtracking twice
    } else if (t.kind === 'any') re += '.';
    else if (t.kind === 'char') re += reChar(t.code);
    else {
      const body = t.spans
        .map(([lo, hi]) => (lo === hi ? reChar(lo) : `${reChar(lo)}-${reChar(hi)}`))
        .join('');
      if (body === '') re += t.inverted ? '[^]' : '(?!)';
      else re += `[${t.inverted ? '^' : ''}${body}]`;
    }
    prev = t.kind;
  }
  return new RegExp(`${re}$`, 's');
}

/** A `~` predicate's pattern as filter_parse_regex() reads it. */
export interface FilterRegex {
  /** A leading `!`: the match is inverted. */
  readonly negate: boolean;
  /** Whether a value's bytes match the pattern. */
  readonly match: (bytes: string) => boolean;
}

/**
 * filter_parse_regex() and filter_build_regex() on a `~` pattern's bytes (a byte string, one
 * character per byte, as `filter_ctype.ts` makes them): a leading `!` inverts the match;
 * then a pattern with no glob character is MATCH_FULL (equality), `abc*` MATCH_FRONT_ONLY
 * (a prefix), `*abc` MATCH_END_ONLY (a suffix), `*abc*` MATCH_MIDDLE_ONLY (a substring),
 * and any other `*`, `?`, `[` or `\` makes it MATCH_GLOB, matched by glob_match(). Each of
 * these tests bytes, so the value must be a byte string too (see `cStringBytes`): `?` is one
 * byte, and a class's spans are byte ranges.
 */
export function compileFilterRegex(pattern: string): FilterRegex {
  const negate = pattern.startsWith('!');
  const p = negate ? pattern.slice(1) : pattern;
  let type: 'full' | 'front' | 'middle' | 'end' | 'glob' = 'full';
  let end = p.length;
  for (let i = 0; i < p.length && type !== 'glob'; i++) {
    const c = p[i];
    if (c === '*') {
      if (i === 0) type = 'end';
      else if (i === p.length - 1) {
        type = type === 'end' ? 'middle' : 'front';
        end = i;
      } else type = 'glob';
    } else if (c === '[' || c === '?' || c === '\\') type = 'glob';
  }
  if (type === 'glob') {
    const tokens = parseGlob(p);
    return { negate, match: (s) => globMatch(tokens, s) };
  }
  const search = p.slice(type === 'end' || type === 'middle' ? 1 : 0, end);
  switch (type) {
    case 'front':
      return { negate, match: (s) => s.startsWith(search) };
    case 'middle':
      return { negate, match: (s) => s.includes(search) };
    case 'end':
      return { negate, match: (s) => s.endsWith(search) };
    default:
      return { negate, match: (s) => s === search };
  }
}
