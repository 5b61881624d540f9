/**
 * `mops compaction-test`: the kernel selftest's method and criterion on the emulator.
 * @module
 */

import { compactionTest, pageblock_order } from '@mops/core';
import type { Io } from '../io.js';
import { buildMachine, type MachineOptions } from '../machine.js';
import { inertSysctlWarnings } from '../sysctl_reach.js';

/** kselftest.h's exit code of a skipped test (KSFT_SKIP). */
export const KSFT_SKIP = 4;

/**
 * Runs the selftest of the profile's release and prints what it prints (stdout, stderr),
 * then mops's notes on standard error; exit 0 when it passes, 1 when it fails,
 * {@link KSFT_SKIP} when its prerequisite is not met (vm.compact_unevictable_allowed is not
 * 1), whatever status the release's selftest itself would exit with (a note says it when
 * it differs).
 */
export async function compactionTestCommand(
  io: Io,
  opts: MachineOptions & { interleave: boolean },
): Promise<number> {
  const m = await buildMachine(opts);
  // Its huge-page allocations (order pageblock_order) may enter direct compaction.
  for (const w of inertSysctlWarnings(m, opts.sysctls ?? [], {
    command: 'compaction-test',
    allocOrder: pageblock_order,
  }))
    io.err(`mops: warning: ${w}\n`);
  const r = compactionTest(m, { interleave: opts.interleave });
  // The release's selftest, byte for byte: printf() in v4.8–v6.3, TAP in v6.17.
  io.out(r.stdout);
  if (r.stderr) io.err(r.stderr);
  // mops's own remarks, apart from the selftest's output.
  for (const n of r.notes) io.err(`mops: ${n}\n`);
  const code = r.skipped ? KSFT_SKIP : r.passed ? 0 : 1;
  if (r.exitStatus !== code)
    io.err(
      `mops: the release's selftest exits with status ${r.exitStatus}; mops exits ${code} (${r.skipped ? 'skipped' : r.passed ? 'passed' : 'failed'})\n`,
    );
  return code;
}
