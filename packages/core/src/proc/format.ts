/**
 * printf helpers for the /proc views: the kernel's `%lu`, `%6lu`, `%8s`, `%-12s`.
 * @module
 */

/** `%lu` of a counter: negative per-CPU drift reads as 0, as the kernel clamps it. */
export function ul(v: number): string {
  return v > 0 ? String(Math.trunc(v)) : '0';
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
