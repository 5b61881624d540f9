/** Running the `mops` command in process, for the CLI tests. */
import { bufferIo, main } from '../packages/cli/src/index.js';

/** Runs `mops ARGS` with its output captured: the exit code, standard output and error. */
export async function mops(...args: string[]) {
  const io = bufferIo();
  const code = await main(args, io);
  return { code, out: io.stdout, err: io.stderr };
}
