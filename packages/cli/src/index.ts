/**
 * `@mops/cli`: the `mops` command. {@link main} runs it with given arguments and streams.
 * Exit codes: 0 success, 1 a check failed or a bug was found, 2 usage error.
 * @module
 */

import { MmBug, MopsError } from '@mops/core';
import { Command, CommanderError, Option } from 'commander';
import { demo } from './commands/demo.js';
import { proc } from './commands/proc.js';
import { bufferIo, type Io, processIo } from './io.js';

export { bufferIo, type Io, processIo };

function intArg(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n))
    throw new MopsError('E_USAGE', `${name} must be an integer, got '${v}'`, name);
  return n;
}

/** Runs `mops` with `argv` (without the node and script names); resolves to the exit code. */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  let code = 0;
  const program = new Command('mops')
    .description(
      'a lab for Linux movable-page migration (movable_operations) and memory compaction',
    )
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .showHelpAfterError();
  const seed = () =>
    new Option('--seed <n>', 'seed of the run').default(1).argParser((v) => intArg(v, '--seed'));
  program
    .command('demo')
    .description('fragment a 256 MiB machine and show it in the kernel formats')
    .addOption(seed())
    .option('--memory <size>', 'memory size', '256M')
    .action((o) => {
      code = demo(io, { seed: o.seed, memory: o.memory });
    });
  program
    .command('proc')
    .description('print a /proc view: buddyinfo, pagetypeinfo, vmstat, zoneinfo, …')
    .argument('<view>', 'view name')
    .addOption(seed())
    .option('--memory <size>', 'memory size', '1G')
    .option('--profile <p>', 'protocol profile: v4.8, v6.0, v6.3, v6.17', 'v6.3')
    .option('--workload <w>', 'run a workload first: none or churn', 'none')
    .option(
      '--from-proc <dir>',
      "build the machine from a real machine's buddyinfo + pagetypeinfo (+ zoneinfo)",
    )
    .action((view, o) => {
      if (o.workload !== 'none' && o.workload !== 'churn')
        throw new MopsError(
          'E_USAGE',
          `--workload must be none or churn, got '${o.workload}'`,
          '--workload',
        );
      code = proc(io, view, {
        memory: o.memory,
        seed: o.seed,
        profile: o.profile,
        workload: o.workload,
        fromProc: o.fromProc,
      });
    });
  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof MopsError) {
      io.err(`mops: ${e.message} [${e.code}]\n`);
      return 2;
    }
    if (e instanceof MmBug) {
      io.err(`mops: kernel BUG: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
