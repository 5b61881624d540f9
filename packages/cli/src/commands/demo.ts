/**
 * `mops demo`: the main job on an embedded default — a 256 MiB machine with the zsmalloc
 * and balloon drivers loaded, a fragmenting workload, compaction, and the result in the
 * kernel's words.
 * @module
 */

import {
  checkInvariants,
  compactMemory,
  compactResultName,
  fillContigPageInfo,
  type Machine,
  procView,
  vmstatEvents,
} from '@mops/core';
import pc from 'picocolors';
import { deltaLines, vmstatDeltas } from '../deltas.js';
import type { Io } from '../io.js';
import { type BalloonLike, buildMachine, inflateBalloon, runWorkload } from '../machine.js';

/** Options of the demo. */
export interface DemoOptions {
  /** Seed (default 1). */
  readonly seed: number;
  /** Memory size (default 256M). */
  readonly memory: string;
  /** Profile (default v6.3). */
  readonly profile: string;
}

/** Free blocks of order 9 (2 MiB) the machine could hand out now, over all zones. */
function freeHugeBlocks(m: Machine): number {
  let n = 0;
  for (const z of m.mem.populatedZones) n += fillContigPageInfo(z, 9).freeBlocksSuitable;
  return n;
}

/** How much a /proc/vmstat event counter moved between two readings. */
function delta(ev0: Map<string, number>, ev1: Map<string, number>, name: string): number {
  return (ev1.get(name) ?? 0) - (ev0.get(name) ?? 0);
}

/**
 * Where the drivers' isolate/migrate/putback callbacks live in the profile's release: their
 * address_space_operations in v4.8, struct movable_operations from 6.0.
 */
function callbacksOf(m: Machine): string {
  return m.profile.movableMarker === 'address_space'
    ? "the isolate_page callbacks of their drivers' address_space_operations"
    : "their drivers' movable_operations";
}

function freeMiB(m: Machine): number {
  return Math.round((m.mem.nrFreePages() * 4) / 1024);
}

/** Runs the demo and writes its report. */
export async function demo(io: Io, opts: DemoOptions): Promise<number> {
  const h = (t: string) => (io.isTTY ? pc.bold(pc.cyan(t)) : t);
  const m = await buildMachine({
    memory: opts.memory,
    profile: opts.profile,
    seed: opts.seed,
    plugins: ['zsmalloc', 'balloon'],
    contents: true,
  });
  io.out(
    `${h('mops demo')}: a ${opts.memory} x86-64 machine, profile ${m.profile.name}, seed ${opts.seed}, zsmalloc and balloon loaded\n\n`,
  );
  const work = await runWorkload(m, 'zsmalloc');
  for (const l of work.lines) io.out(`${l}\n`);
  // The guest then gives some of its free memory to the host: balloon pages land in holes.
  const { VIRTIO_BALLOON } = (await import('@mops/balloon')) as { VIRTIO_BALLOON: symbol };
  const vb = m.container.resolve<BalloonLike>(VIRTIO_BALLOON);
  const inflated = inflateBalloon(m, vb, Math.floor(m.mem.nrFreePages() / 8));
  io.out(
    `balloon: inflated ${inflated} pages (the host now holds ${(inflated * 4) >> 10} MiB of the guest)\n`,
  );
  // zram's compaction first: zsmalloc packs objects into fewer zspages and frees the rest.
  const { ZS_POOL } = (await import('@mops/zsmalloc')) as { ZS_POOL: symbol };
  const pool = m.container.resolve<{ zsCompact(): number; readonly pagesCompacted: number }>(
    ZS_POOL,
  );
  // This call's pages (v4.8's zs_compact returns the pool's running total instead).
  const compacted0 = pool.pagesCompacted;
  pool.zsCompact();
  const zsFreed = pool.pagesCompacted - compacted0;
  io.out(`zsmalloc: zs_compact freed ${zsFreed} pages by packing objects into fewer zspages\n`);
  const before = procView(m, 'buddyinfo');
  const hp0 = freeHugeBlocks(m);
  const ev0 = vmstatEvents(m);
  io.out(`\n${h('/proc/buddyinfo before compaction')} (free blocks per order 0..10)\n${before}`);
  const results = m.run(() => compactMemory(m));
  const after = procView(m, 'buddyinfo');
  io.out(`\n${h('echo 1 > /proc/sys/vm/compact_memory')}\n`);
  io.out(
    m.mem.populatedZones
      .map((z, i) => `  zone ${z.name}: ${compactResultName(results[i], m.profile)}`)
      .join('\n'),
  );
  io.out(`\n\n${h('/proc/buddyinfo after compaction')}\n${after}`);
  const ev1 = vmstatEvents(m);
  const deltas = vmstatDeltas(ev0, ev1, (name) => /^(compact_|pgmigrate_|balloon_)/.test(name));
  io.out(
    `\n${deltaLines(h('/proc/vmstat deltas'), deltas, 'compaction, migration or balloon').join('\n')}\n`,
  );
  io.out(
    `\n${h('zsmalloc after compaction')} (/sys/kernel/debug/zsmalloc/zram0/classes, first lines)\n`,
  );
  io.out(`${procView(m, 'zsmalloc/classes').split('\n').slice(0, 6).join('\n')}\n`);
  const hp1 = freeHugeBlocks(m);
  const inv = checkInvariants(m);
  const moved = delta(ev0, ev1, 'pgmigrate_success');
  const balloonMoved = delta(ev0, ev1, 'balloon_migrate');
  io.out(
    `\n${h('What happened')}\n` +
      `The workload filled most of memory with zsmalloc objects and freed half of them; the balloon then took pages ` +
      `from the holes. Free memory was scattered between zspage and balloon pages: only ${hp0} free 2 MiB blocks ` +
      `(order 9 and up) were left. compact_memory ran both scanners over each zone: the migrate scanner isolated ` +
      `movable pages from the bottom through ${callbacksOf(m)} (zs_page_isolate, balloon_page_isolate), ` +
      `migrate_pages moved them into free pages the free scanner took from the top — zs_page_migrate rewrote the handles ` +
      `of the objects in each page, and the balloon told the host to inflate the new page and deflate the old one ` +
      `(${balloonMoved} balloon pages). ${moved} pages moved in all, and ${hp1} free 2 MiB blocks exist now: ${outcome(hp0, hp1)} ` +
      `(${freeMiB(m)} MiB free). ` +
      (inv.ok
        ? 'Every zsmalloc object still matches its checksum, and the balloon list, its isolated count and the host agree: the invariant checker passed.\n'
        : 'The invariant checker found problems (below).\n'),
  );
  if (!inv.ok) {
    io.err(`invariants violated:\n${inv.violations.join('\n')}\n`);
    return 1;
  }
  return 0;
}

/** What the free 2 MiB blocks before (`hp0`) and after (`hp1`) compaction mean for huge pages. */
function outcome(hp0: number, hp1: number): string {
  if (hp1 === 0) return 'a huge-page allocation would still fail';
  if (hp1 <= hp0) return 'no more than before, so compaction gained huge pages nothing';
  return 'huge-page allocations can succeed again';
}
