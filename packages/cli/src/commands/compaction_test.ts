/**
 * `mops compaction-test`: the kernel selftest's method and criterion on the emulator.
 * @module
 */

import { compactionTest } from '@mops/core';
import type { Io } from '../io.js';
import { buildMachine, type MachineOptions } from '../machine.js';

/** Runs the selftest; exit 0 when it passes, 1 when it fails. */
export async function compactionTestCommand(
  io: Io,
  opts: MachineOptions & { interleave: boolean },
): Promise<number> {
  const m = await buildMachine(opts);
  const r = compactionTest(m, { interleave: opts.interleave });
  for (const l of r.log) io.out(`# ${l}\n`);
  io.out(`${r.passed ? 'ok' : 'not ok'} 1 check_compaction\n`);
  return r.passed ? 0 : 1;
}
