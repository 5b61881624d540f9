/**
 * `mops demo`: the main job on an embedded default machine, told in the kernel's words.
 * @module
 */

import { createMachine, mixedChurn, procView, VM_EVENT_ITEMS } from '@mops/core';
import pc from 'picocolors';
import type { Io } from '../io.js';

/** Options of the demo. */
export interface DemoOptions {
  /** Seed (default 1). */
  seed: number;
  /** Memory size (default 256M). */
  memory: string;
}

function freeBlocksAtLeast(buddyinfo: string, order: number): number {
  let n = 0;
  for (const line of buddyinfo.trim().split('\n')) {
    const counts = line.trim().split(/\s+/).slice(4).map(Number);
    for (let o = order; o < counts.length; o++) n += counts[o] << (o - order);
  }
  return n;
}

/** Runs the demo and writes its report. */
export function demo(io: Io, opts: DemoOptions): number {
  const h = (t: string) => (io.isTTY ? pc.bold(pc.cyan(t)) : t);
  const m = createMachine({ memory: opts.memory, seed: opts.seed });
  io.out(
    `${h('mops demo')}: a ${opts.memory} x86-64 machine, profile ${m.profile.name}, seed ${opts.seed}\n\n`,
  );
  const before = procView(m, 'buddyinfo');
  const events0 = m.mem.vmstat.snapshotEvents();
  io.out(`${h('/proc/buddyinfo after boot')} (free blocks per order 0..10)\n${before}\n`);
  const churn = mixedChurn(m, { fill: 0.9, free: 0.5, unmovable: 0.25, maxOrder: 3 });
  const after = procView(m, 'buddyinfo');
  io.out(
    `${h('/proc/buddyinfo after a mixed workload')} (90 % filled with order 0-3 blocks, a quarter unmovable, then half freed at random)\n${after}\n`,
  );
  const events1 = m.mem.vmstat.snapshotEvents();
  io.out(`${h('/proc/vmstat deltas')}\n`);
  for (const name of VM_EVENT_ITEMS) {
    const d = events1[name] - events0[name];
    if (d !== 0) io.out(`${name} ${d}\n`);
  }
  const hp0 = freeBlocksAtLeast(before, 9);
  const hp1 = freeBlocksAtLeast(after, 9);
  const movable = churn.live.filter((b) => b[1] >= 0 && b[2]).length;
  io.out(
    `\n${h('What happened')}\n` +
      `Boot left ${hp0} free 2 MiB blocks (order 9 and up). The workload left ${churn.live.length} blocks allocated, ` +
      `${movable} of them movable, scattered through memory, and now only ${hp1} free 2 MiB blocks remain: ` +
      `a huge-page allocation would fail although ${Math.round((m.mem.populatedZones.reduce((s, z) => s + z.nrFreePages, 0) * 4) / 1024)} MiB are free. ` +
      'Unmovable pages pin their pageblocks; movable ones could be migrated away by compaction ' +
      '(mm/compaction.c), which is what mops emulates next.\n',
  );
  return 0;
}
