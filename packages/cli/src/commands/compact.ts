/**
 * `mops compact`: run compaction on a machine built from the options, after a workload, and
 * report in the kernel's formats.
 * @module
 */

import {
  compactMemory,
  compactResultName,
  compactZones,
  fragmentationScoreNode,
  ftraceEventNames,
  ftraceFormat,
  getProfile,
  type Machine,
  MopsError,
  type Profile,
  procView,
  profileHasEvent,
  profileHasProactiveCompaction,
  traceRecorder,
  vmstatEvents,
} from '@mops/core';
import { healthLines, machineHealth } from '../health.js';
import { checkWritable, type Io, writeOutputFile } from '../io.js';
import { checkNonBlank } from '../load.js';
import { buildMachine, type MachineOptions, runWorkload } from '../machine.js';

/** Options of `mops compact`. */
export interface CompactOptions extends MachineOptions {
  /** Workload name. */
  readonly workload: string;
  /** Target order; -1 compacts everything (compact_memory). */
  readonly order: number;
  /** Migration mode name (async, sync_light or sync-light, sync). */
  readonly mode?: string;
  /** Write ftrace lines to this file, or '-' for standard output. */
  readonly trace?: string;
  /** A tracefs filter expression for the trace. */
  readonly traceFilter?: string;
  /** The events to trace: comma-separated event or system names (default: every event
   * of the release). */
  readonly traceEvents?: string;
  /** Write a JSON summary to this file ('-' for standard output). */
  readonly json?: string;
}

/** The node's fragmentation score, where the profile has one (not v4.8). */
function scoreOf(m: Machine): number | undefined {
  return profileHasProactiveCompaction(m.profile) ? fragmentationScoreNode(m.mem) : undefined;
}

/** The machine's size as --memory writes it: whole GiB, else MiB (always whole pageblocks). */
function sizeText(bytes: number): string {
  return bytes % 1024 ** 3 === 0 ? `${bytes / 1024 ** 3}G` : `${bytes / 1024 ** 2}M`;
}

/**
 * `--trace-events`: each item an event (`mm_migrate_pages`) or a system, as tracefs groups
 * them (`compaction`, `migrate`, `kmem`: `events/SYSTEM/enable`), a system standing for
 * its events the profile's release has.
 */
function traceEvents(list: string, profile: Profile): string[] {
  const names = ftraceEventNames();
  const out = new Set<string>();
  for (const item of list.split(',').map((x) => x.trim())) {
    const inSystem = names.filter((n) => ftraceFormat(n)?.system === item);
    if (inSystem.length > 0) {
      for (const n of inSystem) if (profileHasEvent(profile, n)) out.add(n);
    } else if (names.includes(item)) out.add(item);
    else
      throw new MopsError(
        'E_USAGE',
        `--trace-events: no event or system '${item}'; systems: ${[...new Set(names.map((n) => ftraceFormat(n)?.system))].join(', ')}; events: ${names.join(', ')}`,
        '--trace-events',
      );
  }
  return [...out];
}

/** Runs the command. */
export async function compact(io: Io, opts: CompactOptions): Promise<number> {
  // An empty file name is a mistake (`--trace "$OUT"` with OUT unset), not "no output".
  for (const [opt, given] of [
    ['--trace', opts.trace],
    ['--json', opts.json],
  ] as const)
    if (given !== undefined) checkNonBlank(given, opt, 'a file name, or - for standard output');
  for (const [opt, given] of [
    ['--trace-filter', opts.traceFilter],
    ['--trace-events', opts.traceEvents],
  ] as const)
    if (given !== undefined && opts.trace === undefined)
      throw new MopsError(
        'E_USAGE',
        `${opt} chooses what --trace writes; give --trace <file|-> too`,
        opt,
      );
  // Checked before the run, like the output files.
  const events =
    opts.traceEvents === undefined
      ? undefined
      : traceEvents(opts.traceEvents, getProfile(opts.profile));
  if (opts.trace === '-' && opts.json === '-')
    throw new MopsError(
      'E_USAGE',
      '--trace - and --json - would both write to standard output; send one of them to a file',
      '--trace',
    );
  // Refuse an unwritable output before the run rather than after it.
  if (opts.trace !== undefined && opts.trace !== '-') checkWritable('--trace', opts.trace);
  if (opts.json !== undefined && opts.json !== '-') checkWritable('--json', opts.json);
  const m = await buildMachine(opts);
  const work = await runWorkload(m, opts.workload);
  const before = procView(m, 'buddyinfo');
  const score0 = scoreOf(m);
  const ev0 = vmstatEvents(m);
  const rec =
    opts.trace !== undefined
      ? traceRecorder(m, {
          filter: opts.traceFilter,
          ...(events === undefined ? {} : { events }),
        })
      : undefined;
  const results =
    opts.order === -1 && (opts.mode === undefined || opts.mode === 'sync')
      ? m.run(() => compactMemory(m))
      : m.run(() => compactZones(m, opts.order, opts.mode ?? 'sync_light'));
  rec?.stop();
  const after = procView(m, 'buddyinfo');
  const score1 = scoreOf(m);
  const ev1 = vmstatEvents(m);
  const deltas: Record<string, number> = {};
  for (const [name, v] of ev1) {
    const d = v - (ev0.get(name) ?? 0);
    if (d !== 0) deltas[name] = d;
  }
  const health = machineHealth(m);
  const zones = m.mem.populatedZones.map((z, i) => ({
    zone: z.name,
    result: compactResultName(results[i], m.profile),
  }));
  const json = {
    memory: opts.fromProc !== undefined ? sizeText(m.config.bytes) : opts.memory,
    profile: m.profile.name,
    seed: opts.seed,
    workload: opts.workload,
    order: opts.order,
    zones,
    vmstat: deltas,
    // v4.8 has no fragmentation score: null, not a missing key.
    fragmentationScore: { before: score0 ?? null, after: score1 ?? null },
    buddyinfo: { before, after },
    warnings: health.warnings,
    invariants: { ok: health.violations.length === 0, violations: health.violations },
  };
  const rc = health.ok ? 0 : 1;
  if (rec && opts.trace === '-') io.out(rec.text());
  else if (rec && opts.trace !== undefined) writeOutputFile('--trace', opts.trace, rec.text());
  if (opts.json === '-') {
    io.out(`${JSON.stringify(json, null, 2)}\n`);
    if (!health.ok) io.err(`${healthLines(health).join('\n')}\n`);
    return rc;
  }
  if (opts.json !== undefined)
    writeOutputFile('--json', opts.json, `${JSON.stringify(json, null, 2)}\n`);
  // With the trace on standard output, the report goes to standard error: the output stays
  // a trace file.
  const say = opts.trace === '-' ? (s: string) => io.err(s) : (s: string) => io.out(s);
  for (const l of work.lines) say(`${l}\n`);
  say(`\n/proc/buddyinfo before\n${before}\n/proc/buddyinfo after\n${after}\n`);
  say(`compaction: ${zones.map((z) => `${z.zone}=${z.result}`).join(' ')}\n`);
  if (score0 !== undefined) say(`fragmentation score (node): ${score0} -> ${score1}\n`);
  say('/proc/vmstat deltas\n');
  for (const [k, v] of Object.entries(deltas)) say(`${k} ${v}\n`);
  say(`${healthLines(health).join('\n')}\n`);
  return rc;
}
