/**
 * printf helpers for the /proc views: the kernel's `%lu`, `%6lu`, `%8s`, `%-12s`.
 * @module
 */

/**
 * `%lu` of a counter: negative per-CPU drift reads as 0, as the kernel clamps it. Past
 * 2^53 - 1 the number's exact digits: String() would round them (2^64 as
 * `18446744073709552000`) and from 1e21 write an exponent (`1e+21`), which %lu never prints.
 */
export function ul(v: number): string {
  if (!(v > 0)) return '0';
  return v <= Number.MAX_SAFE_INTEGER || !Number.isFinite(v)
    ? String(Math.trunc(v))
    : BigInt(v).toString();
}

/** `%<width>lu`: right-aligned. */
export function ulw(v: number, width: number): string {
  return ul(v).padStart(width);
}

/** `%<width>s`: right-aligned string. */
export function rs(s: string, width: number): string {
  return s.padStart(width);
}

/** `%-<width>s`: left-aligned string. */
export function ls(s: string, width: number): string {
  return s.padEnd(width);
}
