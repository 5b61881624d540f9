/**
 * Where the CLI writes: stdout/stderr in the real command, buffers in tests; the files its
 * options name.
 * @module
 */

import { accessSync, constants, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { MopsError } from '@mops/core/errors';

/** Output streams of one CLI run. */
export interface Io {
  /** Writes to standard output. */
  out(text: string): void;
  /** Writes to standard error. */
  err(text: string): void;
  /** Whether standard output is a terminal (colours, progress bars). */
  readonly isTTY: boolean;
}

/** The process's own streams. */
export const processIo: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  isTTY: Boolean(process.stdout.isTTY),
};

/** An Io that collects everything, for tests. */
export function bufferIo(): Io & { stdout: string; stderr: string } {
  const io = {
    stdout: '',
    stderr: '',
    isTTY: false,
    out(t: string) {
      io.stdout += t;
    },
    err(t: string) {
      io.stderr += t;
    },
  };
  return io;
}

/** `EACCES: permission denied` from a Node file error, without the call and path. */
function osReason(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const code = (e as NodeJS.ErrnoException).code;
  const text = e.message.split('\n')[0].replace(/, \w+ '.*'$/, '');
  return code && !text.startsWith(code) ? `${code}: ${text}` : text;
}

function cannotWrite(option: string, path: string, reason: string): MopsError {
  return new MopsError('E_USAGE', `${option} ${path}: cannot write it (${reason})`, option);
}

/**
 * Checks, before a long run, that the file `option` names can be written: its directory
 * exists and is writable, and the file, if it exists, is a writable file. Nothing is created.
 * `MopsError('E_USAGE')` naming the option, the path and the OS reason otherwise.
 */
export function checkWritable(option: string, path: string): void {
  try {
    // A bigint stat: in Node 20 a plain stat of a pipe (`--json /dev/stdout | …`) spoils the
    // module resolver's next lookups through symbolic links.
    const st = statSync(path, { throwIfNoEntry: false, bigint: true });
    if (st?.isDirectory()) throw cannotWrite(option, path, 'EISDIR: it is a directory');
    if (st) accessSync(path, constants.W_OK);
    else {
      const dir = dirname(resolve(path));
      if (!statSync(dir, { bigint: true }).isDirectory())
        throw cannotWrite(option, path, `ENOTDIR: ${dir} is not a directory`);
      accessSync(dir, constants.W_OK);
    }
  } catch (e) {
    if (e instanceof MopsError) throw e;
    throw cannotWrite(option, path, osReason(e));
  }
}

/**
 * Writes `text` to the file `option` names. `MopsError('E_USAGE')` naming the option, the
 * path and the OS reason (ENOENT, EACCES, EISDIR…) when it cannot.
 */
export function writeOutputFile(option: string, path: string, text: string): void {
  try {
    writeFileSync(path, text);
  } catch (e) {
    throw cannotWrite(option, path, osReason(e));
  }
}
