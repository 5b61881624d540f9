/**
 * How the explorer's API names its options in errors: the API's name, then the command
 * line's flag, so one message serves both.
 * @module
 */

import { MopsError } from '@mops/core';

/** The command line's flag of an option, where it is not `--NAME`. */
const FLAGS: Readonly<Record<string, string>> = { shrink: '--no-shrink' };

/** An option as messages name it: the API's name, then the command line's flag. */
export function option(name: string): string {
  return `${name} (${FLAGS[name] ?? `--${name}`})`;
}

/** A usage error (`E_USAGE`). */
export function usage(msg: string, field?: string): MopsError {
  return new MopsError('E_USAGE', msg, field);
}
