/**
 * Errors of mops.
 *
 * Three kinds, as in the kernel: an errno result on hot paths (see {@link Errno}), a broken
 * kernel invariant ({@link MmBug}, the kernel's VM_BUG_ON / BUG), and a user mistake
 * ({@link MopsError}: a bad option, config or plugin) with a stable code.
 * @module
 */

import type { Machine } from './machine.js';

/** Kernel errnos used as typed results (negative values, as the kernel returns them). */
export const Errno = {
  EPERM: -1,
  ENOENT: -2,
  EAGAIN: -11,
  ENOMEM: -12,
  EBUSY: -16,
  EINVAL: -22,
  ENOSYS: -38,
  EHWPOISON: -133,
} as const;

/** Name of a kernel errno value, e.g. `-11` → `"EAGAIN"`. */
export function errnoName(value: number): string {
  for (const [name, v] of Object.entries(Errno)) if (v === value) return name;
  return String(value);
}

/** Stable codes of {@link MopsError}: tests, scripts and the CLI match on these. */
export type MopsErrorCode =
  | 'E_CONFIG'
  | 'E_USAGE'
  | 'E_RANGE'
  | 'E_STATE'
  | 'E_HALTED'
  | 'E_DEADLOCK'
  | 'E_PROC_PARSE'
  | 'E_PLUGIN';

/**
 * A user mistake: a bad option, configuration, input file or plugin. The message says what
 * to change; `code` is stable.
 */
export class MopsError extends Error {
  override readonly name = 'MopsError';
  constructor(
    /** The stable code (see {@link MopsErrorCode}). */
    readonly code: MopsErrorCode,
    message: string,
    /** The offending field or option, when there is one. */
    readonly field?: string,
  ) {
    super(message);
  }
}

/**
 * A broken kernel invariant: where the kernel would hit VM_BUG_ON / BUG. Carries a
 * dump_page-style text of the page involved, when there is one. The machine that raised it
 * is halted: running kernel code on it again (`Machine.run`, `compactMemory`, the
 * workloads) or allocating and freeing through the machine (`Machine.allocPages`,
 * `putPage`, `freePages`) raises `MopsError('E_HALTED')`. Reading its state (/proc views,
 * `checkInvariants`, the page arrays) still works, to see what the BUG left behind.
 */
export class MmBug extends Error {
  override readonly name = 'MmBug';
  constructor(
    /** What broke, e.g. `VM_BUG_ON_PAGE(PageTail(page))`. */
    readonly reason: string,
    /** dump_page() text, or '' when no page is involved. */
    readonly dump: string = '',
  ) {
    super(dump ? `${reason}\n${dump}` : reason);
  }
}

/**
 * A value as an error message shows it: strings quoted, bigints with their `n`, and an
 * object that cannot be turned into a string by its tag (`[object Object]`).
 */
export function printable(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  try {
    return String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

/**
 * A value as an error message names what it was given: a primitive as {@link printable}
 * writes it (strings quoted), an array as `an array`, a function as `a function`, a plain
 * object as `an object`, an instance by its class (`a Uint32Array`, `an Int8Array`).
 */
export function valueKind(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'function') return 'a function';
  if (typeof v !== 'object' || v === null) return printable(v);
  const name = (v as { constructor?: { name?: unknown } }).constructor?.name;
  if (typeof name !== 'string' || name === '' || name === 'Object') return 'an object';
  return `${/^[AEIO]/.test(name) ? 'an' : 'a'} ${name}`;
}

/**
 * MopsError('E_USAGE') unless `m` is a machine (from `createMachine`); `what` names the
 * call. Checked by the entry points that take a machine first, so that passing something
 * else (`m.mem`, a machine's options) says so rather than failing deep inside.
 * @param m the value given as the machine
 * @param what the call, named in the message
 * @throws {@link MopsError} `E_USAGE` unless `m` is a machine
 */
export function checkMachine(m: unknown, what: string): asserts m is Machine {
  if (
    typeof m === 'object' &&
    m !== null &&
    typeof (m as Machine).run === 'function' &&
    typeof (m as Machine).mem === 'object'
  )
    return;
  throw new MopsError(
    'E_USAGE',
    `${what}: the first argument must be a machine (createMachine), got ${valueKind(m)}`,
    'machine',
  );
}

/**
 * MopsError('E_USAGE') unless `opts` is an options object, and, given `keys`, unless each
 * of its keys is one of them: a misspelt option would silently leave its default.
 * @param opts the value given as options
 * @param what the call, named in the message
 * @param keys the options the call takes
 * @throws {@link MopsError} `E_USAGE` for a non-object, null or an array (field `options`),
 *   or for an unknown key (field: the key)
 */
export function checkOptionsObject(opts: unknown, what: string, keys?: readonly string[]): void {
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts))
    throw new MopsError(
      'E_USAGE',
      `${what}: options must be an object, got ${valueKind(opts)}`,
      'options',
    );
  if (keys)
    for (const [key, v] of Object.entries(opts))
      if (!keys.includes(key))
        throw new MopsError(
          'E_USAGE',
          `${what}: unknown option '${key}' (given ${valueKind(v)}); the options are ${keys.join(', ')}`,
          key,
        );
}
