/** Running the `mops` command in process, for the CLI tests. */
import { expect } from 'vitest';
import { bufferIo, main } from '../packages/cli/src/index.js';

/** The arguments of the `replay:` line of a report (the paths it prints have no spaces). */
export function replayArgs(report: string): string[] {
  const line = /^replay: mops (.*)$/m.exec(report)?.[1];
  expect(line).toBeDefined();
  return (line ?? '').split(' ');
}

/** Runs `mops ARGS` with its output captured: the exit code, standard output and error. */
export async function mops(...args: string[]) {
  const io = bufferIo();
  const code = await main(args, io);
  return { code, out: io.stdout, err: io.stderr };
}
