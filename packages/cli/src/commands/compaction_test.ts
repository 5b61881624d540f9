/**
 * `mops compaction-test`: the kernel selftest's method and criterion on the emulator.
 * @module
 */

import { compactionState, compactionTest } from '@mops/core';
import type { Io } from '../io.js';
import { buildMachine, type MachineOptions } from '../machine.js';

/** kselftest.h's exit code of a skipped test (KSFT_SKIP). */
export const KSFT_SKIP = 4;

/**
 * Runs the selftest; exit 0 when it passes, 1 when it fails, {@link KSFT_SKIP} when its
 * prerequisite is not met (vm.compact_unevictable_allowed is not 1).
 */
export async function compactionTestCommand(
  io: Io,
  opts: MachineOptions & { interleave: boolean },
): Promise<number> {
  const m = await buildMachine(opts);
  // ksft_print_header().
  io.out('TAP version 13\n');
  // prereq(): the test is about compacting unevictable (mlocked) pages, so it needs them
  // compactable; otherwise ksft_exit_skip() before any plan is printed.
  if (compactionState(m).sysctl.compactUnevictableAllowed !== 1) {
    io.out("# Compaction isn't allowed\n");
    io.out('1..0 # SKIP Prerequisites unsatisfied\n');
    return KSFT_SKIP;
  }
  const r = compactionTest(m, { interleave: opts.interleave });
  // ksft_set_plan(1), the test's messages, its result, then ksft_print_cnts().
  io.out('1..1\n');
  // ksft_print_msg(): "# " before the message, whatever lines it has.
  for (const l of r.log) io.out(`# ${l}\n`);
  io.out(`${r.passed ? 'ok' : 'not ok'} 1 check_compaction\n`);
  io.out(
    `# Totals: pass:${r.passed ? 1 : 0} fail:${r.passed ? 0 : 1} xfail:0 xpass:0 skip:0 error:0\n`,
  );
  return r.passed ? 0 : 1;
}
