/**
 * `mops explore`, `mops replay`, `mops scenarios`: the race explorer from the command line.
 * Exit 1 when a failure was found, 0 when none, 2 on a usage error.
 * @module
 */

import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { MopsError } from '@mops/core';
import {
  type ExploreOptions,
  type ExploreResult,
  explore,
  mergeShardResults,
  nthSeed,
  type ReplayResult,
  replay,
  scenarios,
} from '@mops/explorer';
import { Presets, SingleBar } from 'cli-progress';
import Tinypool from 'tinypool';
import { EXPLORE_RUNS } from '../defaults.js';
import type { WorkerError } from '../explore_worker.js';
import type { Io } from '../io.js';
import { withLoadOptions } from '../load.js';

/** Options of `mops explore`. */
export interface ExploreCommandOptions extends ExploreOptions {
  /** Print JSON instead of the report. */
  readonly json?: boolean;
  /** Worker threads to spread the seeds over (random and PCT; default 1: in process). */
  readonly jobs?: number;
  /** The `--load` modules the command loaded: the workers load them too, the replay line names them. */
  readonly load?: readonly string[];
}

async function exploreInWorkers(
  name: string,
  opts: ExploreOptions,
  jobs: number,
  load: readonly string[],
): Promise<ExploreResult> {
  // Workers run the built module (from the TypeScript sources, use the package's dist/).
  const worker = fileURLToPath(new URL('../explore_worker.js', import.meta.url)).replace(
    /([\\/])src([\\/])explore_worker\.js$/,
    '$1dist$2explore_worker.js',
  );
  // A clean execArgv: the workers load the built packages, whatever conditions this process uses.
  const pool = new Tinypool({ filename: worker, minThreads: 1, maxThreads: jobs, execArgv: [] });
  try {
    const parts = await Promise.all(
      Array.from(
        { length: jobs },
        (_, i) =>
          pool.run({
            name,
            opts: { ...opts, shard: `${i + 1}/${jobs}` },
            load,
          }) as Promise<ExploreResult | WorkerError>,
      ),
    );
    const results: ExploreResult[] = [];
    for (const p of parts) {
      if ('mopsError' in p) {
        const { code, message, field } = p.mopsError;
        throw new MopsError(code, message, field);
      }
      results.push(p);
    }
    return mergeShardResults(results);
  } finally {
    await pool.destroy();
  }
}

/**
 * Random and PCT runs in consecutive seed chunks, so a terminal shows progress; the result is
 * the one a single run gives (the first failing seed wins, schedules add up). Chunk k starts
 * at the seed run k·chunk of the single run takes ({@link nthSeed}, which wraps as the
 * seeds do), so the chunks take its seeds, and only the seed the caller gave is checked as
 * theirs.
 */
export function exploreInChunks(io: Io, name: string, opts: ExploreOptions): ExploreResult {
  const strategy = opts.strategy ?? 'random';
  const runs = opts.runs ?? EXPLORE_RUNS;
  if (strategy === 'dfs' || opts.shard || !Number.isInteger(runs) || runs < 2)
    return explore(name, opts);
  const chunk = Math.max(1, Math.ceil(runs / 50));
  const seed0 = opts.seed ?? 1;
  const bar = io.isTTY
    ? new SingleBar(
        { format: `exploring ${name} {bar} {value}/{total} schedules`, stream: process.stderr },
        Presets.shades_classic,
      )
    : undefined;
  bar?.start(runs, 0);
  const parts: ExploreResult[] = [];
  try {
    for (let done = 0; done < runs; done += chunk) {
      const r = explore(name, {
        ...opts,
        ...(done === 0 ? {} : { seed: nthSeed(seed0, done) }),
        runs: Math.min(chunk, runs - done),
      });
      parts.push(r);
      bar?.update(Math.min(runs, done + chunk));
      if (r.failed) break;
    }
  } finally {
    bar?.stop();
  }
  // Consecutive seed chunks, stopped at the first failure: that one is the result, over the
  // whole range from the first chunk's first seed.
  const schedules = parts.reduce((n, r) => n + r.schedules, 0);
  const last = parts[parts.length - 1];
  return { ...(last.failed ? last : parts[0]), schedules, firstSeed: parts[0].firstSeed, runs };
}

/** Runs `mops explore`. */
export async function exploreCommand(
  io: Io,
  name: string,
  opts: ExploreCommandOptions,
): Promise<number> {
  const jobs = opts.jobs ?? 1;
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > Math.max(64, cpus().length))
    throw new MopsError(
      'E_USAGE',
      `--jobs must be an integer 1..${Math.max(64, cpus().length)}, got ${jobs}`,
      '--jobs',
    );
  if (jobs > 1 && (opts.strategy === 'dfs' || opts.shard))
    throw new MopsError(
      'E_USAGE',
      '--jobs splits the seeds of random or pct runs; it cannot be combined with dfs or --shard',
      '--jobs',
    );
  const { json, jobs: _jobs, load = [], ...eo } = opts;
  let found: ExploreResult;
  try {
    found = jobs > 1 ? await exploreInWorkers(name, eo, jobs, load) : exploreInChunks(io, name, eo);
  } catch (e) {
    throw withScenarioHint(e, load);
  }
  const r = withLoad(found, load);
  // A shard that got no seed checked nothing: not a "no failure".
  if (!r.failed && r.schedules === 0 && opts.shard !== undefined)
    throw new MopsError(
      'E_USAGE',
      `--shard ${opts.shard}: none of the --runs seeds falls in this shard, so nothing ran; use fewer shards or more --runs`,
      '--shard',
    );
  if (json) io.out(`${JSON.stringify(r, null, 2)}\n`);
  else {
    io.out(
      r.failed
        ? `${r.report ?? ''}\n`
        : `no failure in ${r.schedules} schedule${r.schedules === 1 ? '' : 's'} (${r.scenario} ${r.variant}, ${r.profile}, ${r.strategy}${r.exhausted !== undefined ? `, bound ${r.exhausted ? 'exhausted' : 'not exhausted'}` : ''})\n`,
    );
  }
  return r.failed ? 1 : 0;
}

/** A result whose report and replay command name the `--load` modules, when there are any. */
function withLoad<R extends { scenario: string; report?: string; command?: string }>(
  r: R,
  load: readonly string[],
): R {
  if (load.length === 0) return r;
  const add = (t: string | undefined) => t && withLoadOptions(t, r.scenario, load);
  return {
    ...r,
    ...(r.report !== undefined ? { report: add(r.report) } : {}),
    ...(r.command !== undefined ? { command: add(r.command) } : {}),
  };
}

/**
 * An unknown scenario named without `--load`: the explorer's error (which lists the known
 * ones) with how to add one's own. Other errors as they are.
 */
function withScenarioHint(e: unknown, load: readonly string[]): unknown {
  if (
    !(e instanceof MopsError) ||
    e.code !== 'E_USAGE' ||
    e.field !== 'scenario' ||
    !e.message.startsWith('unknown scenario') ||
    load.length > 0
  )
    return e;
  return new MopsError(
    'E_USAGE',
    `${e.message}; to run a scenario of your own, give --load <module>, a module that registers it with registerScenario from @mops/explorer`,
    e.field,
  );
}

/**
 * Runs `mops replay`: exit 1 when the schedule fails, 0 when it passes, and 2 when it did
 * not fit the run (a recorded decision named a task that could not run, or decisions were
 * left over): a stale schedule checks nothing, so it is a usage error, not a pass. A
 * schedule that failed after it stopped fitting is a failure (exit 1), said so. A schedule
 * that ends before the run does fits: each later step continues without a preemption (the
 * task that ran last while it can, else the lowest-numbered runnable one), which is why
 * explore prints schedules with those steps left out. With `--json`, a schedule that does
 * not fit gives `error` in place of the report, the replay command and the schedule followed.
 */
export function replayCommand(
  io: Io,
  name: string,
  opts: {
    variant?: string;
    schedule: string;
    profile?: string;
    json?: boolean;
    load?: readonly string[];
  },
): number {
  const { json, load = [], ...ro } = opts;
  let replayed: ReplayResult;
  try {
    replayed = replay(name, ro);
  } catch (e) {
    throw withScenarioHint(e, load);
  }
  const r = withLoad(replayed, load);
  const misfit =
    r.diverged && !r.failed
      ? `replay: the schedule ${opts.schedule} does not fit ${r.scenario} (${r.variant}, ${r.profile}): it names a task that cannot run where it does, or has decisions left when the run ends, so nothing was checked; give a schedule explore printed for this scenario, variant and profile`
      : undefined;
  if (json) {
    // A replay that checked nothing has no report ("passed") and no replay command: the
    // error says why, in their place. The schedule it followed is not one to replay either.
    const { report: _report, command: _command, schedule: _schedule, ...rest } = r;
    io.out(
      `${JSON.stringify(misfit === undefined ? r : { ...rest, error: { code: 'E_USAGE', message: misfit } }, null, 2)}\n`,
    );
  } else if (r.failed)
    io.out(
      `${r.report}\n${r.diverged ? 'the schedule did not fit this run: the report shows the one it followed\n' : ''}`,
    );
  else if (misfit === undefined) io.out('no failure on this schedule\n');
  if (misfit !== undefined) {
    io.err(`mops: ${misfit} [E_USAGE]\n`);
    return 2;
  }
  return r.failed ? 1 : 0;
}

/** Runs `mops scenarios`. */
export function scenariosCommand(io: Io, json: boolean): number {
  const list = scenarios();
  if (json) {
    io.out(`${JSON.stringify(list, null, 2)}\n`);
    return 0;
  }
  // Name, variants, profiles (the first is the default), the strategy `mops explore` uses
  // without --strategy, description.
  const rows = list.map((s) => [s.name, s.variants.join('|'), s.profiles.join(','), s.strategy]);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  list.forEach((s, k) => {
    io.out(`${rows[k].map((c, i) => c.padEnd(widths[i])).join('  ')}  ${s.description}\n`);
  });
  return 0;
}
