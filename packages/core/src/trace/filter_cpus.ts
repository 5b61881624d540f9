/**
 * `CPUS{cpulist}` filter values (6.6 on): `cpu & CPUS{0-1}`, `nid == CPUS{1}`. parse_pred()
 * reads the cpulist between the braces with cpulist_parse() (lib/bitmap-str.c
 * bitmap_parselist()) and compares it as do_filter_scalar_cpumask() and the equality
 * predicates do.
 * @module
 */

import type { FilterFieldType, FilterOp } from './filter.js';
import { isDigit, isSpace } from './filter_ctype.js';
import { fieldBits, type PredFn } from './filter_pred.js';

/**
 * nr_cpu_ids of a filter parsed with no machine (`parseTraceFilter`, `compileTraceFilter`
 * without a count), and the fewest CPUs a machine reports (the pagesets of /proc/zoneinfo
 * are those of CPUs 0 and 1): cpulist_parse() then takes CPUs 0 and 1, and `N` is CPU 1.
 */
export const TRACE_NR_CPUS = 2;

/**
 * The CPU count of a machine, as num_online_cpus() (the `trace` header's `#P:`) and
 * nr_cpu_ids (the cpulists of `CPUS{…}` filters, the bound of do_filter_scalar_cpumask())
 * give it: at least {@link TRACE_NR_CPUS}, and past the highest CPU any task of the machine
 * has had (`Scheduler.nrCpus`; a default CPU is the lowest one no live task runs on, so it
 * is below the most tasks ever live at once, and an explicit `SpawnOptions.cpu` brings its
 * CPU online). It only grows, as a CPU that comes online stays: a filter parsed before a
 * task first runs on a CPU cannot name it yet.
 * @param sched the machine's scheduler (`m.sched`)
 * @returns the number of CPUs, ≥ {@link TRACE_NR_CPUS}
 */
export function traceNrCpus(sched: { readonly nrCpus: number }): number {
  return Math.max(TRACE_NR_CPUS, sched.nrCpus);
}

/** end_of_str(): the end of the text, a NUL or a newline stops bitmap_parselist(). */
const endOfStr = (c: string | undefined): boolean => c === undefined || c === '\0' || c === '\n';
/** __end_of_region(): what may separate regions (isspace() or `,`). */
const separator = (c: string | undefined): boolean => isSpace(c) || c === ',';
/** end_of_region(). */
const endOfRegion = (c: string | undefined): boolean => separator(c) || endOfStr(c);

/**
 * cpulist_parse(): `list` (a byte string) as bitmap_parselist() reads it into a mask of
 * `nbits` CPUs: regions `N`, `A-B` or `all`, each optionally `:used/group` (in every group of
 * `group` CPUs from A, the first `used`), separated by commas or spaces; `N` is the last CPU.
 * Returns the CPUs set, ascending, or undefined where it fails (-EINVAL, -ERANGE for a CPU
 * past the mask, -EOVERFLOW for a number past 32 bits).
 */
export function parseCpulist(list: string, nbits: number): number[] | undefined {
  const lastbit = nbits - 1;
  const mask = new Set<number>();
  let i = 0;
  /** bitmap_getnum(): `N`, or a decimal number that fits an unsigned int. */
  const getnum = (): number | undefined => {
    if (list[i] === 'N') {
      i++;
      return lastbit;
    }
    const from = i;
    while (isDigit(list[i])) i++;
    if (i === from) return undefined;
    const n = Number(list.slice(from, i));
    return n <= 0xffffffff ? n : undefined;
  };
  for (;;) {
    while (separator(list[i])) i++;
    if (endOfStr(list[i])) break;
    let start: number | undefined;
    let end: number | undefined;
    let off: number | undefined;
    let group: number | undefined;
    let last = false; // bitmap_parse_region() returned NULL: no region after this one
    if (list.slice(i, i + 3).toLowerCase() === 'all') {
      start = 0;
      end = lastbit;
      i += 3;
    } else {
      start = getnum();
      if (start === undefined) return undefined;
      if (!endOfRegion(list[i])) {
        if (list[i] !== '-') return undefined;
        i++;
        end = getnum();
        if (end === undefined) return undefined;
      } else end = start;
    }
    // check_pattern: `:used/group`, or the region ends here.
    if (endOfRegion(list[i])) {
      off = end + 1;
      group = end + 1;
      last = endOfStr(list[i]);
    } else {
      if (list[i] !== ':') return undefined;
      i++;
      off = getnum();
      if (off === undefined || list[i] !== '/') return undefined;
      i++;
      group = getnum();
      if (group === undefined) return undefined;
    }
    // bitmap_check_region()
    if (start > end || group === 0 || off > group || end >= nbits) return undefined;
    // bitmap_set_region()
    for (let s = start; s <= end; s += group)
      for (let k = 0; k < Math.min(end - s + 1, off); k++) mask.add(s + k);
    if (last) break;
  }
  return [...mask].sort((a, b) => a - b);
}

/** A `cpu`/`CPU` record value: the CPU number as an int, or NaN. */
function cpuOf(v: unknown): number {
  return typeof v === 'number' && Number.isInteger(v) ? v : Number.NaN;
}

/**
 * The test of `field op CPUS{…}` with `cpus` the CPUs of the list (ascending), as
 * parse_pred() sets it up. A list of one CPU is that CPU as a number, and `&` becomes `==`:
 * filter_pred_cpu() for `cpu`/`CPU`, an equality test of the field's unsigned bits for a
 * numeric field. Any other list (none, or two CPUs or more) compares as
 * do_filter_scalar_cpumask() does: `==` never holds (a scalar is no such mask), `!=` always
 * does, and `&` tests whether the CPU is in the list; for a numeric field the CPU is the
 * field's value as an unsigned int, and a value of nr_cpu_ids or more fails every operator.
 * A value that is no integer passes only `!=`.
 */
export function cpusPred(
  field: string,
  type: FilterFieldType,
  op: FilterOp,
  cpus: readonly number[],
  nrCpus: number,
): PredFn {
  const eq = op !== '!=';
  if (cpus.length === 1) {
    const only = cpus[0];
    if (type === 'cpu') return (r) => (cpuOf(r[field]) === only) === eq;
    const v = BigInt(only);
    return (r) => {
      const x = fieldBits(type, r[field]);
      return x === undefined ? !eq : (x === v) === eq;
    };
  }
  const set = new Set(cpus);
  if (type === 'cpu') {
    if (op === '==') return () => false;
    if (op === '!=') return () => true;
    return (r) => set.has(cpuOf(r[field]));
  }
  return (r) => {
    const x = fieldBits(type, r[field]);
    if (x === undefined) return op === '!=';
    const cpu = Number(BigInt.asUintN(32, x));
    if (cpu >= nrCpus) return false;
    return op === '&' ? set.has(cpu) : op === '!=';
  };
}
