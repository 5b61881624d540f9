/**
 * In-place snapshots of a machine's object graph, so a scenario's machine can be reused for
 * the next schedule instead of rebuilt: typed arrays, arrays, maps, sets and the own fields of
 * plain and class objects reachable from the roots are recorded once and written back on
 * {@link GraphSnapshot.restore}. Functions (and what only closures reach), frozen objects,
 * generators and dependency containers are left alone, and class instances are assumed to
 * keep the fields their constructor defined (but those named as `owned`, which lose added
 * ones too): a scenario that keeps mutable state elsewhere must not be pooled (leave out
 * `start`).
 * @module
 */

/** Arrays up to this length are restored by unrolled stores. */
const UNROLL = 16;

function isContainer(o: object): boolean {
  const r = o as { resolve?: unknown; register?: unknown; createChildContainer?: unknown };
  return (
    typeof r.resolve === 'function' &&
    typeof r.register === 'function' &&
    typeof r.createChildContainer === 'function'
  );
}

function isGenerator(o: object): boolean {
  return Object.prototype.toString.call(o) === '[object Generator]';
}

/**
 * A snapshot of everything reachable from some roots. Objects created after the snapshot
 * simply become unreachable again when the fields that point at them are restored.
 *
 * Restoring runs one function compiled for this snapshot: each store has its own site, so
 * every site sees a single object shape, and no closure is called per object. The objects
 * and saved values are constants of that function, primitives literals in its code, and a
 * reference is written only when it changed.
 *
 * Each recorded object is a slot. A caller that knows which slots and which words of the
 * larger buffers a run changes ({@link changedSlots}, {@link changedRuns}) can restore only
 * those ({@link restoreChanged}).
 */
export class GraphSnapshot {
  /** Objects recorded. */
  readonly objects: number;
  private readonly run: (runs: Int32Array | undefined) => void;
  private readonly runSlots: (slots: Int32Array, runs: Int32Array) => void;
  private readonly diff: () => number[];
  private readonly targets: unknown[] = [];
  private readonly saved: unknown[] = [];
  /** The buffers {@link restoreRuns} may restore in part, as 32-bit words. */
  private readonly rangedTargets: Int32Array[] = [];
  /** Their recorded words. */
  private readonly rangedSaved: Int32Array[] = [];

  /**
   * Records every object reachable from `roots`, except objects for which `skip` returns
   * true (and what only they reach). A class instance of `owned` (a scenario's `state`)
   * loses on restore the fields a run added to it, as a plain object does.
   */
  constructor(
    roots: readonly object[],
    skip?: (o: object) => boolean,
    owned: ReadonlySet<object> = new Set(),
  ) {
    const seen = new Set<object>();
    const keysBySlot = new Map<number, string[]>();
    const stack: object[] = [...roots];
    // Per slot: the statements that restore it, and an expression true when it may differ
    // from the snapshot (never false when it does).
    const blocks: string[] = [];
    const diffs: string[] = [];
    const code = (i: number, restore: string, differs: string): void => {
      blocks[i] = restore;
      diffs[i] = differs;
    };
    // Run once when compiling: every target, saved copy and saved reference becomes a
    // constant of the restoring closure (no array load, no bounds check when restoring).
    const prelude: string[] = [];
    const ref = (i: number, j: number): string => {
      prelude.push(`const r${i}_${j} = V[${i}][${j}];`);
      return `r${i}_${j}`;
    };
    const views: View[] = [];
    const push = (v: unknown): void => {
      if (v !== null && typeof v === 'object' && !seen.has(v)) stack.push(v);
    };
    const slot = (o: unknown, v: unknown): number => {
      const i = this.targets.length;
      this.targets.push(o);
      this.saved.push(v);
      prelude.push(`const t${i} = O[${i}], s${i} = V[${i}];`);
      return i;
    };
    while (stack.length > 0) {
      const o = stack.pop() as object;
      if (seen.has(o)) continue;
      seen.add(o);
      if (ArrayBuffer.isView(o)) {
        if (!(o instanceof DataView)) views.push(o as unknown as View);
        continue;
      }
      if (Object.isFrozen(o) || isGenerator(o) || isContainer(o)) continue;
      if (skip?.(o)) continue;
      if (o instanceof WeakMap || o instanceof WeakSet || o instanceof Promise) continue;
      if (Array.isArray(o)) {
        const copy = o.slice();
        const i = slot(o, copy);
        // pop() rather than a store to `length`: no call into the runtime, and the array
        // keeps its backing store for the next run's pushes. Only changed elements are stored.
        // Short arrays are unrolled. An array whose length changed is rewritten in order, so
        // that a store past the end appends.
        const n = copy.length;
        if (n === 0) code(i, `o = t${i}; while (o.length !== 0) o.pop();`, `t${i}.length !== 0`);
        else
          code(
            i,
            [
              `o = t${i}; v = s${i}; if (o.length === ${n}) {`,
              n <= UNROLL
                ? copy
                    .map((x, k) => {
                      const lit = literal(x);
                      return lit !== undefined
                        ? `o[${k}] = ${lit};`
                        : `if (o[${k}] !== ${ref(i, k)}) o[${k}] = r${i}_${k};`;
                    })
                    .join(' ')
                : `for (let i = 0; i < ${n}; i++) if (o[i] !== v[i]) o[i] = v[i];`,
              `} else { while (o.length > ${n}) o.pop(); for (let i = 0; i < ${n}; i++) o[i] = v[i]; }`,
            ].join('\n'),
            `t${i}.length !== ${n} || !H.sameItems(t${i}, s${i})`,
          );
        for (const v of copy) push(v);
        continue;
      }
      if (o instanceof Map) {
        const entries = [...o.entries()];
        const i = slot(o, entries);
        if (entries.length === 0)
          code(i, `o = t${i}; if (o.size !== 0) o.clear();`, `t${i}.size !== 0`);
        // Map.prototype.clear allocates a new table: leave an unchanged map alone.
        else
          code(
            i,
            `o = t${i}; v = s${i}; if (!sameMap(o, v)) { o.clear(); for (const e of v) o.set(e[0], e[1]); }`,
            `!sameMap(t${i}, s${i})`,
          );
        for (const [k, v] of entries) {
          push(k);
          push(v);
        }
        continue;
      }
      if (o instanceof Set) {
        const values = [...o.values()];
        const i = slot(o, values);
        if (values.length === 0)
          code(i, `o = t${i}; if (o.size !== 0) o.clear();`, `t${i}.size !== 0`);
        else
          code(
            i,
            `o = t${i}; v = s${i}; if (!sameSet(o, v)) { o.clear(); for (const e of v) o.add(e); }`,
            `!sameSet(t${i}, s${i})`,
          );
        for (const v of values) push(v);
        continue;
      }
      const rec = o as Record<string, unknown>;
      const keys = Object.keys(rec);
      const values = keys.map((k) => rec[k]);
      // Primitive values are written as literals (no load, no write barrier); a reference is
      // stored only when it changed, as most do not during a run (no write barrier either).
      const lits = values.map(literal);
      const i = slot(
        rec,
        values.map((v, j) => (lits[j] === undefined ? v : undefined)),
      );
      const proto = Object.getPrototypeOf(rec);
      const restore = [`o = t${i};`];
      const differs: string[] = [];
      // Class instances (TypeScript class fields are all defined by the constructor) keep
      // their set of fields; plain objects, used as records, and the objects a scenario
      // named as its own (a driver that adds a field when it first needs it) may gain
      // fields to delete.
      if (proto === Object.prototype || proto === null || owned.has(rec)) {
        restore.push(`n = 0; for (const _ in o) n++; if (n !== ${keys.length}) prune(o, K[${i}]);`);
        differs.push(`H.keyCount(t${i}) !== ${keys.length}`);
      }
      keys.forEach((k, j) => {
        const key = JSON.stringify(k);
        const lit = lits[j];
        restore.push(
          lit !== undefined
            ? `o[${key}] = ${lit};`
            : `if (o[${key}] !== ${ref(i, j)}) o[${key}] = r${i}_${j};`,
        );
        // Numbers by Object.is: 0 and -0 differ, NaN is NaN.
        differs.push(
          lit === undefined
            ? `t${i}[${key}] !== r${i}_${j}`
            : typeof values[j] === 'number'
              ? `!Object.is(t${i}[${key}], ${lit})`
              : `t${i}[${key}] !== ${lit}`,
        );
      });
      code(i, restore.join('\n'), differs.length > 0 ? differs.join(' || ') : 'false');
      keysBySlot.set(i, keys);
      for (const v of values) push(v);
    }
    const groups = viewGroups(views);
    // Whole buffers of some size (a machine's page metadata, its zones' counters and list
    // heads) may be restored in part: see restoreRuns.
    const wholeSets: string[] = [];
    for (const group of groups) {
      if (isRanged(group)) {
        const words = new Int32Array(group[0].buffer);
        const saved = words.slice();
        const i = slot(words, saved);
        this.rangedTargets.push(words);
        this.rangedSaved.push(saved);
        wholeSets.push(`t${i}.set(s${i});`);
        continue;
      }
      // Views that together cover their whole buffer are one copy of the buffer.
      const o = group.length === 1 ? group[0] : new Uint8Array(group[0].buffer);
      const copy = o.slice();
      const i = slot(o, copy);
      // Compared byte for byte: a float keeps its bits.
      prelude.push(`const b${i} = H.bytesOf(t${i}), c${i} = H.bytesOf(s${i});`);
      const differs = `!H.sameBytes(b${i}, c${i})`;
      // Small arrays: unrolled stores beat the call into TypedArray.prototype.set; integers
      // are written as literals (a float goes through the saved copy, which keeps its bits).
      if (group.length === 1 && copy.length <= UNROLL) {
        const ints = !(o instanceof Float32Array || o instanceof Float64Array);
        code(
          i,
          [
            `o = t${i}; v = s${i};`,
            ...Array.from(copy, (x, k) =>
              ints && typeof x === 'number' ? `o[${k}] = ${x};` : `o[${k}] = v[${k}];`,
            ),
          ].join(' '),
          differs,
        );
      } else code(i, `t${i}.set(s${i});`, differs);
    }
    const slots = blocks.flatMap((b, i) => (b === undefined ? [] : [i]));
    const ranged =
      wholeSets.length > 0
        ? `if (R === undefined) {\n${wholeSets.join('\n')}\n} else H.copyRuns(RT, RS, R);`
        : '';
    const perSlot = slots.map(
      (i) => `F[${i}] = function restoreSlot${i}() {\nlet o, v, n;\n${blocks[i]}\n};`,
    );
    const body = [
      prelude.join('\n'),
      'const { prune, sameMap, sameSet } = H;',
      'const F = [];',
      ...perSlot,
      'return {',
      `restore(R) {\nlet o, v, n;\n${slots.map((i) => blocks[i]).join('\n')}\n${ranged}\n},`,
      // A function of its own per slot, each compiled for its one object.
      `restoreSlots(S, R) {\nfor (let j = 0; j < S.length; j++) F[S[j]]();\nH.copyRuns(RT, RS, R);\n},`,
      `diff() {\nconst out = [];\n${slots.map((i) => `if (${diffs[i]}) out.push(${i});`).join('\n')}\nreturn out;\n},`,
      '};',
    ].join('\n');
    this.objects = this.targets.length;
    const K: (string[] | undefined)[] = this.targets.map((_, i) => keysBySlot.get(i));
    const compile = new Function('O', 'V', 'K', 'H', 'RT', 'RS', body) as (
      o: unknown[],
      v: unknown[],
      k: (string[] | undefined)[],
      h: typeof HELPERS,
      rt: Int32Array[],
      rs: Int32Array[],
    ) => {
      restore(runs: Int32Array | undefined): void;
      restoreSlots(slots: Int32Array, runs: Int32Array): void;
      diff(): number[];
    };
    const fns = compile(this.targets, this.saved, K, HELPERS, this.rangedTargets, this.rangedSaved);
    this.run = fns.restore;
    this.runSlots = fns.restoreSlots;
    this.diff = fns.diff;
  }

  /** Writes every recorded value back. */
  restore(): void {
    this.run(undefined);
  }

  /**
   * {@link restore}, except that of the whole buffers of 256 bytes or more only the words
   * in `runs` (from {@link changedRuns}) are written back: the caller knows that no other
   * word of them changed since the snapshot.
   */
  restoreRuns(runs: Int32Array): void {
    this.run(runs);
  }

  /**
   * The slots (recorded objects other than the buffers {@link changedRuns} covers) that now
   * differ from the snapshot, in ascending order. A slot may be listed although it holds
   * its recorded contents again (an array with a NaN), never left out when it does not.
   */
  changedSlots(): Int32Array {
    return Int32Array.from(this.diff());
  }

  /**
   * Writes back only the slots in `slots` (from {@link changedSlots}) and the words of the
   * larger buffers in `runs` (from {@link changedRuns}): the caller knows that nothing else
   * changed since the snapshot.
   */
  restoreChanged(slots: Int32Array, runs: Int32Array): void {
    this.runSlots(slots, runs);
  }

  /**
   * Where the whole buffers of 256 bytes or more now differ from the snapshot, in
   * {@link RUN_WORDS}-word chunks: triples of buffer index, start and end word index,
   * sorted and disjoint. Empty when nothing differs.
   */
  changedRuns(): Int32Array {
    const out: number[] = [];
    for (let g = 0; g < this.rangedTargets.length; g++) {
      const target = this.rangedTargets[g];
      const saved = this.rangedSaved[g];
      const n = target.length;
      for (let c = 0; c < n; c += RUN_WORDS) {
        const e = Math.min(n, c + RUN_WORDS);
        let w = c;
        while (w < e && target[w] === saved[w]) w++;
        if (w === e) continue;
        const last = out.length - 1;
        if (last > 0 && out[last - 2] === g && out[last] === c) out[last] = e;
        else out.push(g, c, e);
      }
    }
    return Int32Array.from(out);
  }

  /**
   * The words the larger buffers now hold in `runs` (from {@link changedRuns}), run after
   * run: with the runs themselves, what a run left in them.
   */
  wordsAt(runs: Int32Array): Int32Array {
    let n = 0;
    for (let j = 0; j < runs.length; j += 3) n += runs[j + 2] - runs[j + 1];
    const out = new Int32Array(n);
    let k = 0;
    for (let j = 0; j < runs.length; j += 3) {
      const words = this.rangedTargets[runs[j]];
      out.set(words.subarray(runs[j + 1], runs[j + 2]), k);
      k += runs[j + 2] - runs[j + 1];
    }
    return out;
  }
}

/** Copies the words of `runs` (triples of buffer, start and end) from `from` to `to`. */
function copyRuns(to: Int32Array[], from: Int32Array[], runs: Int32Array): void {
  for (let j = 0; j < runs.length; j += 3) {
    const t = to[runs[j]];
    const f = from[runs[j]];
    const e = runs[j + 2];
    let w = runs[j + 1];
    // Runs are whole chunks of RUN_WORDS (but for a buffer's last): unrolled, a word costs
    // a third of what it does in a plain loop.
    for (; w + 4 <= e; w += 4) {
      t[w] = f[w];
      t[w + 1] = f[w + 1];
      t[w + 2] = f[w + 2];
      t[w + 3] = f[w + 3];
    }
    for (; w < e; w++) t[w] = f[w];
  }
}

/** Granularity of {@link GraphSnapshot.changedRuns}, in 32-bit words (16 bytes). */
export const RUN_WORDS = 4;

/** Buffers smaller than this are always restored whole. */
const RANGED_MIN_BYTES = 256;

/** Whether `group` covers a whole buffer of at least {@link RANGED_MIN_BYTES}, in words. */
function isRanged(group: readonly View[]): boolean {
  const len = group[0].buffer.byteLength;
  const whole = group.length > 1 || (group[0].byteOffset === 0 && group[0].byteLength === len);
  return whole && len >= RANGED_MIN_BYTES && len % 4 === 0;
}

/** A typed array, as the snapshot uses it. */
interface View {
  readonly buffer: ArrayBufferLike;
  readonly byteOffset: number;
  readonly byteLength: number;
  readonly length: number;
  slice(): View & ArrayLike<number>;
}

/**
 * The views to record, grouped: several views of one buffer that together cover all of it
 * form one group (restored as one copy of the buffer); any other view is a group of its
 * own. A view of part of a buffer shared with state outside the snapshot (a pooled Buffer)
 * is never widened to the whole buffer.
 */
function viewGroups(views: readonly View[]): View[][] {
  const byBuffer = new Map<ArrayBufferLike, View[]>();
  for (const v of views) {
    const g = byBuffer.get(v.buffer);
    if (g) g.push(v);
    else byBuffer.set(v.buffer, [v]);
  }
  const out: View[][] = [];
  for (const [buffer, group] of byBuffer) {
    if (group.length > 1 && covers(group, buffer.byteLength)) out.push(group);
    else for (const v of group) out.push([v]);
  }
  return out;
}

/** Whether the byte ranges of `views` cover [0, byteLength). */
function covers(views: readonly View[], byteLength: number): boolean {
  const ranges = views
    .map((v) => [v.byteOffset, v.byteOffset + v.byteLength] as const)
    .sort((a, b) => a[0] - b[0]);
  let end = 0;
  for (const [from, to] of ranges) {
    if (from > end) return false;
    end = Math.max(end, to);
  }
  return end === byteLength;
}

/**
 * `v` as a JavaScript literal that evaluates to exactly `v`, for primitives (short strings
 * only); undefined for objects, functions, symbols and long strings.
 */
function literal(v: unknown): string | undefined {
  switch (typeof v) {
    case 'undefined':
      return 'void 0';
    case 'boolean':
      return v ? 'true' : 'false';
    case 'number':
      if (Object.is(v, -0)) return '-0';
      return Number.isNaN(v) ? 'NaN' : `(${v})`;
    case 'bigint':
      return `(${v}n)`;
    case 'string':
      return v.length <= 256 ? JSON.stringify(v) : undefined;
    case 'object':
      return v === null ? 'null' : undefined;
    default:
      return undefined;
  }
}

function prune(o: Record<string, unknown>, keys: string[]): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) delete o[k];
}

/** Whether `o` holds exactly `entries`, in the same (iteration) order, identical values. */
function sameMap(o: Map<unknown, unknown>, entries: [unknown, unknown][]): boolean {
  if (o.size !== entries.length) return false;
  // Keys, then values, both in iteration order: no hash lookups.
  let i = 0;
  for (const k of o.keys()) if (entries[i++][0] !== k) return false;
  i = 0;
  for (const v of o.values()) if (entries[i++][1] !== v) return false;
  return true;
}

/** Whether `o` holds exactly `values`, in the same order. */
function sameSet(o: Set<unknown>, values: unknown[]): boolean {
  if (o.size !== values.length) return false;
  let i = 0;
  for (const v of o) if (values[i++] !== v) return false;
  return true;
}

/** Whether the arrays of one length hold identical items (numbers by Object.is). */
function sameItems(a: readonly unknown[], b: readonly unknown[]): boolean {
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

/** Own enumerable string keys, as the restore counts them. */
function keyCount(o: object): number {
  let n = 0;
  for (const _ in o) n++;
  return n;
}

/** The bytes of a view. */
function bytesOf(v: View): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** What the compiled functions call. */
const HELPERS = { prune, sameMap, sameSet, sameItems, keyCount, bytesOf, sameBytes, copyRuns };
