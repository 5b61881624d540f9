/**
 * `mops compact`: run compaction on a machine built from the options, after a workload, and
 * report in the kernel's formats.
 * @module
 */

import { fstatSync, lstatSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import {
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
import type { AllocRequest } from '../compact_args.js';
import { deltaLines, vmstatDeltas } from '../deltas.js';
import { healthLines, machineHealth, warningsPointer, warningsText } from '../health.js';
import { checkWritable, type Io, writeOutputFile } from '../io.js';
import { checkNonBlank } from '../load.js';
import { buildMachine, type MachineOptions, runWorkload } from '../machine.js';
import { inertSysctlWarnings } from '../sysctl_reach.js';
import { checkAllocFits, checkStep, runStep, stepLines } from './compact_entry.js';
import { checkView } from './proc.js';

/** Options of `mops compact`. */
export interface CompactOptions extends MachineOptions {
  /** Workload name. */
  readonly workload: string;
  /**
   * Target order; -1 compacts everything (compact_memory). Default -1, unless `alloc` or
   * `kcompactdMs` is given: those compact in its place, and it must then be left out.
   */
  readonly order?: number;
  /** Migration mode name (async, sync_light or sync-light, sync), for `order`'s compaction. */
  readonly mode?: string;
  /** High-order allocations to make after the workload: their slow path's direct compaction. */
  readonly alloc?: AllocRequest;
  /** Run kcompactd for this many milliseconds of machine time (after `alloc`'s allocations). */
  readonly kcompactdMs?: number;
  /** Write ftrace lines to this file, or '-' for standard output. */
  readonly trace?: string;
  /** A tracefs filter expression for the trace. */
  readonly traceFilter?: string;
  /** The events to trace: comma-separated event or system names (default: every event
   * of the release). */
  readonly traceEvents?: string;
  /** Write a JSON summary to this file ('-' for standard output). */
  readonly json?: string;
  /** Write every warning in full (with its dump_page) to this file ('-' for standard output). */
  readonly warnings?: string;
  /** Views to print after the compaction: comma-separated names as `mops proc` takes them. */
  readonly proc?: string;
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
 * `--trace-events`, each item as tracefs's `set_event` reads a line (ftrace_set_clr_event):
 * `EVENT` or `SYSTEM` (`mm_migrate_pages`, `compaction`: every event of the system, as
 * `events/SYSTEM/enable`), `SYSTEM:EVENT`, `SYSTEM:*` or `SYSTEM:`, `*:EVENT` or `:EVENT`,
 * and `*:*`. A system or wildcard stands for its events the profile's release has; an
 * event named outright the release lacks is refused by the recorder. A name that matches
 * nothing (an unknown system or event, an event of another system) is `MopsError('E_USAGE')`,
 * where the kernel's write fails with -EINVAL; its message lists the systems and the events
 * of the profile's release.
 */
function traceEvents(list: string, profile: Profile): string[] {
  const names = ftraceEventNames();
  const systemOf = (n: string) => ftraceFormat(n)?.system;
  const systems = [...new Set(names.map(systemOf))];
  // What the refusal lists: the events of the profile's release, and their systems.
  const own = names.filter((n) => profileHasEvent(profile, n));
  const refuse = (why: string): never => {
    throw new MopsError(
      'E_USAGE',
      `--trace-events: ${why}; systems: ${[...new Set(own.map(systemOf))].join(', ')}; ${profile.name}'s events: ${own.join(', ')}`,
      '--trace-events',
    );
  };
  const out = new Set<string>();
  for (const item of list.split(',').map((x) => x.trim())) {
    const colon = item.indexOf(':');
    const [sub, ev] = colon < 0 ? [undefined, item] : [item.slice(0, colon), item.slice(colon + 1)];
    const anySub = sub === undefined || sub === '' || sub === '*';
    const anyEvent = colon >= 0 && (ev === '' || ev === '*');
    if (!anySub && !systems.includes(sub)) refuse(`no system '${sub}' (in '${item}')`);
    if (!anyEvent && colon >= 0 && !names.includes(ev)) refuse(`no event '${ev}' (in '${item}')`);
    if (colon < 0 && !names.includes(ev) && !systems.includes(ev))
      refuse(`no event or system '${item}'`);
    if (!anySub && !anyEvent && systemOf(ev) !== sub)
      refuse(`${ev} is an event of ${systemOf(ev)}, not of ${sub} (in '${item}')`);
    // An event named outright: the recorder refuses one the release lacks.
    if (!anyEvent && names.includes(ev)) {
      out.add(ev);
      continue;
    }
    // A system (bare, or SYSTEM:*), or every system (*:*).
    const system = colon < 0 ? ev : anySub ? undefined : sub;
    for (const n of names)
      if ((system === undefined || systemOf(n) === system) && profileHasEvent(profile, n))
        out.add(n);
  }
  return [...out];
}

/**
 * `--proc`: the views to print after the compaction, each as `mops proc` takes it (a
 * leading `/proc/` dropped). `MopsError('E_USAGE')` for a blank list or a view the
 * machine lacks, naming the plugin that has it where one does.
 */
function procViews(list: string, m: Machine): string[] {
  const out: string[] = [];
  for (const item of list.split(',').map((x) => x.trim())) {
    const name = item.replace(/^\/proc\//, '');
    if (name === '')
      throw new MopsError(
        'E_USAGE',
        `--proc needs view names separated by commas, got '${list}'`,
        '--proc',
      );
    checkView(m, name, '--proc');
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

/** The options that write to a file or, given `-`, to standard output. */
const OUTPUTS = ['--trace', '--json', '--warnings'] as const;

/**
 * What a write to output `path` replaces: a regular file, named by its device and inode
 * when it exists (through any links), else by the real directory and name a write creates
 * (through a dangling link) — or nothing for a terminal, a pipe or another file that is not
 * regular, where writes follow one another. `-` is standard output: the regular file it is
 * redirected to, if any.
 */
function replaced(path: string): string | undefined {
  try {
    // Bigint stats: in Node 20 a plain stat of a pipe spoils the module resolver's next
    // lookups through symbolic links (a later import() then misses its packages).
    const st = path === '-' ? fstatSync(1, { bigint: true }) : statSync(path, { bigint: true });
    return st.isFile() ? `${st.dev}:${st.ino}` : undefined;
  } catch {
    if (path === '-') return undefined;
    let p = path;
    for (let hops = 0; hops < 40; hops++)
      try {
        if (!lstatSync(p, { bigint: true }).isSymbolicLink()) break;
        p = resolve(realpathSync.native(dirname(p)), readlinkSync(p));
      } catch {
        break;
      }
    // The directory as the system walks it (a link in it before a `..` included).
    try {
      return join(realpathSync.native(dirname(p)), basename(p));
    } catch {
      return resolve(p);
    }
  }
}

/** Runs the command. */
export async function compact(io: Io, opts: CompactOptions): Promise<number> {
  const given: Record<(typeof OUTPUTS)[number], string | undefined> = {
    '--trace': opts.trace,
    '--json': opts.json,
    '--warnings': opts.warnings,
  };
  // An empty file name is a mistake (`--trace "$OUT"` with OUT unset), not "no output".
  for (const opt of OUTPUTS) {
    const v = given[opt];
    if (v !== undefined) checkNonBlank(v, opt, 'a file name, or - for standard output');
  }
  for (const [opt, v] of [
    ['--trace-filter', opts.traceFilter],
    ['--trace-events', opts.traceEvents],
  ] as const)
    if (v !== undefined && opts.trace === undefined)
      throw new MopsError(
        'E_USAGE',
        `${opt} chooses what --trace writes; give --trace <file|-> too`,
        opt,
      );
  if (opts.proc !== undefined) checkNonBlank(opts.proc, '--proc', 'view names');
  checkStep(opts);
  // Checked before the run, like the output files.
  const events =
    opts.traceEvents === undefined
      ? undefined
      : traceEvents(opts.traceEvents, getProfile(opts.profile));
  const toStdout = OUTPUTS.filter((o) => given[o] === '-');
  if (toStdout.length > 1)
    throw new MopsError(
      'E_USAGE',
      toStdout.length === 2
        ? `${toStdout[0]} - and ${toStdout[1]} - would both write to standard output; send one of them to a file`
        : `${toStdout.map((o) => `${o} -`).join(', ')} would all write to standard output; send all but one of them to a file`,
      toStdout[0],
    );
  // With no output on `-`, the report goes to standard output: one more writer there.
  const outputs: string[] = OUTPUTS.filter((o) => given[o] !== undefined);
  const paths = outputs.map((o) => given[o as (typeof OUTPUTS)[number]] ?? '');
  if (toStdout.length === 0) {
    outputs.push('the report');
    paths.push('-');
  }
  const targets = paths.map(replaced);
  for (const [i, a] of outputs.entries()) {
    const j = targets.findIndex((t, k) => k > i && t !== undefined && t === targets[i]);
    if (j >= 0)
      throw new MopsError(
        'E_USAGE',
        `${a} and ${outputs[j]} would both write to ${paths[i] === '-' ? 'standard output, a file' : paths[i]}${paths[j] === '-' ? ' (standard output is redirected to it)' : ''}, the one over the other; give each a file of its own`,
        a,
      );
  }
  // Refuse an unwritable output before the run rather than after it.
  for (const opt of OUTPUTS) {
    const v = given[opt];
    if (v !== undefined && v !== '-') checkWritable(opt, v);
  }
  const m = await buildMachine(opts);
  const views = opts.proc === undefined ? [] : procViews(opts.proc, m);
  checkAllocFits(m, opts.alloc);
  const direct = opts.alloc !== undefined || opts.kcompactdMs !== undefined;
  for (const w of inertSysctlWarnings(m, opts.sysctls ?? [], {
    command: 'compact',
    ...(direct ? {} : { order: opts.order ?? -1 }),
    ...(opts.alloc ? { allocOrder: opts.alloc.order } : {}),
    kcompactd: opts.kcompactdMs !== undefined,
  }))
    io.err(`mops: warning: ${w}\n`);
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
  const step = runStep(m, opts);
  rec?.stop();
  const after = procView(m, 'buddyinfo');
  const score1 = scoreOf(m);
  const ev1 = vmstatEvents(m);
  const deltas = vmstatDeltas(ev0, ev1);
  const proc = Object.fromEntries(views.map((v) => [v, procView(m, v)]));
  const health = machineHealth(m);
  const json = {
    memory: opts.fromProc !== undefined ? sizeText(m.config.bytes) : opts.memory,
    profile: m.profile.name,
    seed: opts.seed,
    workload: opts.workload,
    order: step.order,
    zones: step.zones,
    alloc: step.alloc,
    kcompactd: step.kcompactd,
    vmstat: deltas,
    // v4.8 has no fragmentation score: null, not a missing key.
    fragmentationScore: { before: score0 ?? null, after: score1 ?? null },
    buddyinfo: { before, after },
    proc,
    warnings: health.warnings,
    warningDetails: health.details,
    invariants: { ok: health.violations.length === 0, violations: health.violations },
  };
  const rc = health.ok ? 0 : 1;
  const write = (opt: (typeof OUTPUTS)[number], text: string) => {
    const to = given[opt];
    if (to === '-') io.out(text);
    else if (to !== undefined) writeOutputFile(opt, to, text);
  };
  if (rec) write('--trace', rec.text());
  write('--warnings', warningsText(health));
  const more = warningsPointer(opts.warnings, '--warnings FILE|-');
  if (opts.json === '-') {
    io.out(`${JSON.stringify(json, null, 2)}\n`);
    if (!health.ok) io.err(`${healthLines(health, more).join('\n')}\n`);
    return rc;
  }
  write('--json', `${JSON.stringify(json, null, 2)}\n`);
  // With the trace or the warnings on standard output, the report goes to standard error:
  // the output stays a file of one kind.
  const say = toStdout.length > 0 ? (t: string) => io.err(t) : (t: string) => io.out(t);
  for (const l of work.lines) say(`${l}\n`);
  say(
    `${work.lines.length > 0 ? '\n' : ''}/proc/buddyinfo before\n${before}\n/proc/buddyinfo after\n${after}\n`,
  );
  for (const l of stepLines(step)) say(`${l}\n`);
  if (score0 !== undefined) say(`fragmentation score (node): ${score0} -> ${score1}\n`);
  say(`${deltaLines('/proc/vmstat deltas', deltas).join('\n')}\n`);
  for (const [v, text] of Object.entries(proc)) say(`\n${v} after compaction\n${text}\n`);
  say(`${healthLines(health, more).join('\n')}\n`);
  return rc;
}
