/**
 * `@mops/cli`: the `mops` command. {@link main} runs it with given arguments and streams.
 * Exit codes: 0 success, 1 a check failed or a bug was found, 2 usage error, 4 a skipped
 * test (kselftest's KSFT_SKIP, from `compaction-test`).
 * @module
 */

import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { MmBug, MopsError } from '@mops/core/errors';
import { MIGRATE_MODE_BY_NAME } from '@mops/core/migrate-types';
import { PROFILE_NAMES } from '@mops/core/profile';
import { Command, CommanderError, Option } from 'commander';
import { allocArg, KCOMPACTD_MAX_SECONDS, kcompactdArg } from './compact_args.js';
import {
  COMPACT_MEMORY_MODE,
  COMPACT_ORDER_MODE,
  EXPLORE_DFS_BOUND,
  EXPLORE_PCT_DEPTH,
  EXPLORE_RUNS,
} from './defaults.js';
import { bufferIo, type Io, processIo } from './io.js';
import { SYSCTL_NAMES } from './sysctls.js';
import { WORKLOADS } from './workloads.js';

// Each command loads what it needs when it runs, so `mops --help` starts fast.

export { bufferIo, type Io, processIo };

/**
 * A decimal integer option value (as --sysctl values are written): no '', 0x10 or 1e3, and
 * from `min` to `max` (by default, the safe integers: a larger one would read back rounded).
 */
function intArg(
  v: string,
  name: string,
  min = -Number.MAX_SAFE_INTEGER,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (!/^\s*-?\d+\s*$/.test(v))
    throw new MopsError('E_USAGE', `${name} must be a decimal integer, got '${v}'`, name);
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const low = min > -Number.MAX_SAFE_INTEGER;
    const range =
      max < Number.MAX_SAFE_INTEGER
        ? `from ${min} to ${max}`
        : low
          ? `≥ ${min} (at most 2^53 − 1)`
          : 'of at most 2^53 − 1 in size';
    throw new MopsError('E_USAGE', `${name} must be an integer ${range}, got '${v.trim()}'`, name);
  }
  return n;
}

/** `v` if it is one of `allowed`, else `MopsError('E_USAGE')` naming the option `name`. */
function oneOf(v: string, allowed: readonly string[], name: string): string {
  if (!allowed.includes(v))
    throw new MopsError(
      'E_USAGE',
      `${name} must be one of ${allowed.join(', ')}, got '${v}'`,
      name,
    );
  return v;
}

const checkProfile = (p: string): string => oneOf(p, PROFILE_NAMES, '--profile');
const checkWorkload = (w: string): string => oneOf(w, WORKLOADS, '--workload');

/** `--mode` values. */
const MODES = Object.keys(MIGRATE_MODE_BY_NAME);

/** `--order`: an integer -1..10 (-1: compact_memory). */
function orderArg(v: string): number {
  const n = intArg(v, '--order');
  if (n < -1 || n > 10)
    throw new MopsError(
      'E_USAGE',
      `--order must be an integer -1..10 (-1 compacts everything), got ${n}`,
      '--order',
    );
  return n;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/**
 * The explorer commands, with the driver races the bundled plugins contribute and the
 * scenarios the `--load` modules register.
 */
async function loadExplorer(load: readonly string[]) {
  const [explore, zsmalloc, balloon, { loadScenarioModules }] = await Promise.all([
    import('./commands/explore.js'),
    import('@mops/zsmalloc'),
    import('@mops/balloon'),
    import('./load.js'),
  ]);
  zsmalloc.registerZsmallocScenarios();
  balloon.registerBalloonScenarios();
  await loadScenarioModules(load);
  return explore;
}

/** The bundled scenarios whose first value differs from the others' that the help names. */
const NAMED_EXCEPTIONS = 2;

/**
 * What `--variant` and `--profile` of `explore` and `replay` default to, for their help:
 * each scenario's first (as the explorer resolves them), with the value most bundled
 * scenarios have there and the few that differ, when they are few.
 */
async function scenarioDefaults(): Promise<{ variant: string; profile: string }> {
  await loadExplorer([]);
  const list = (await import('@mops/explorer')).scenarios();
  const first = (pick: (x: (typeof list)[number]) => string, what: string) => {
    const counts = new Map<string, number>();
    for (const x of list) counts.set(pick(x), (counts.get(pick(x)) ?? 0) + 1);
    const [common] = [...counts].sort((a, b) => b[1] - a[1])[0] ?? [''];
    const others = list.filter((x) => pick(x) !== common);
    const values =
      others.length === 0
        ? `, ${common} for every bundled scenario`
        : others.length <= NAMED_EXCEPTIONS
          ? `, ${common} for the bundled scenarios but ${others.map((x) => `${x.name} (${pick(x)})`).join(' and ')}`
          : '';
    return `default: the scenario's first ${what}${values}; mops scenarios lists them`;
  };
  return {
    variant: first((x) => x.variants[0], 'variant'),
    profile: first((x) => x.profiles[0], 'profile'),
  };
}

/** Whether `argv` runs, or asks for the help of, `explore` or `replay`. */
function scenarioCommand(argv: readonly string[]): boolean {
  const cmd = argv[0] === 'help' ? argv[1] : argv[0];
  return cmd === 'explore' || cmd === 'replay';
}

/** The `--load` option of the explorer commands. */
const loadOption = () =>
  new Option(
    '--load <module>',
    'import a module that registers scenarios (repeatable): a path (./race.js) or a package',
  )
    .argParser(collect)
    .default([]);

/** The version in this package's package.json. */
function version(): string {
  const pkg = createRequire(import.meta.url)('../package.json') as { version: string };
  return pkg.version;
}

/** What commander's own parse errors say, without its `error: ` prefix. */
function commanderMessage(text: string): string {
  return text
    .trim()
    .replace(/^error: /, '')
    .replace(/\s*\n\s*/g, ' ')
    .replace(/\.$/, '');
}

/** The values of the machine options of `proc`, `compact` and `compaction-test`. */
interface MachineOptionValues {
  memory: string;
  seed: number;
  profile: string;
  plugin: string[];
  fromProc?: string;
  fromProcMovable?: boolean;
  sysctl: string[];
}

/** Runs `mops` with `argv` (without the node and script names); resolves to the exit code. */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  let code = 0;
  // The scenario defaults the help of explore and replay shows, from the scenarios
  // themselves (those commands load them anyway).
  const defaults = scenarioCommand(argv)
    ? await scenarioDefaults()
    : { variant: "default: the scenario's first", profile: "default: the scenario's first" };
  const program = new Command('mops')
    .description(
      'a lab for Linux movable-page migration (movable_operations) and memory compaction',
    )
    .version(version(), '-V, --version', 'print the version')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });
  const seed = () =>
    new Option('--seed <n>', 'seed of the run')
      .default(1)
      .argParser((v) => intArg(v, '--seed', -(2 ** 31), 2 ** 31 - 1));
  const machineOptions = (c: Command, memory: string) =>
    c
      .addOption(seed())
      .option('--memory <size>', 'memory size (2M..64G, a multiple of 2M)', memory)
      .option('--profile <p>', `protocol profile: ${PROFILE_NAMES.join(', ')}`, 'v6.3')
      .option(
        '--plugin <name|path>',
        'load a driver plugin (repeatable): zsmalloc, balloon, a package or a path',
        collect,
        [],
      )
      .option(
        '--from-proc <dir>',
        "build the machine from a real machine's buddyinfo + pagetypeinfo (+ zoneinfo)",
      )
      .option(
        '--from-proc-movable',
        'with --from-proc: the allocated pages of Movable pageblocks are movable pages compaction can migrate (default: every allocated page is unmovable)',
      )
      .option(
        '--sysctl <vm.name=value>',
        `set a sysctl (repeatable): ${SYSCTL_NAMES.map((n) => `vm.${n}`).join(', ')}; a warning names one nothing in the run reads`,
        collect,
        [],
      );
  /**
   * What {@link machineOptions} parsed, as buildMachine takes it. `cmd` tells an option
   * given on the command line from its default.
   */
  const machineArgs = (o: MachineOptionValues, cmd: Command) => {
    if (o.fromProc !== undefined && cmd.getOptionValueSource('memory') === 'cli')
      throw new MopsError(
        'E_USAGE',
        "--memory and --from-proc: the machine's size comes from the /proc sample; leave out --memory",
        '--memory',
      );
    if (o.fromProcMovable === true && o.fromProc === undefined)
      throw new MopsError(
        'E_USAGE',
        '--from-proc-movable: it imports the pages of a --from-proc machine; give --from-proc DIR too',
        '--from-proc-movable',
      );
    return {
      memory: o.memory,
      seed: o.seed,
      profile: checkProfile(o.profile),
      plugins: o.plugin,
      fromProc: o.fromProc,
      fromProcMovable: o.fromProcMovable === true,
      sysctls: o.sysctl,
    };
  };
  program
    .command('demo')
    .description(
      'fragment a 256 MiB machine with zsmalloc objects, compact it, and show it in the kernel formats',
    )
    .addOption(seed())
    .option('--memory <size>', 'memory size', '256M')
    .option('--profile <p>', 'protocol profile', 'v6.3')
    .action(async (o) => {
      const { demo } = await import('./commands/demo.js');
      code = await demo(io, { seed: o.seed, memory: o.memory, profile: checkProfile(o.profile) });
    });
  machineOptions(program.command('proc'), '1G')
    .description(
      'print a view: buddyinfo, pagetypeinfo, vmstat, zoneinfo, extfrag_index, unusable_index, or a plugin view',
    )
    .argument('<view>', 'view name')
    .option('--workload <w>', `run a workload first: ${WORKLOADS.join(', ')}`, 'none')
    .option(
      '--warnings <file>',
      'write every warning the run logged in full, with its dump_page, to a file',
    )
    .action(async (view, o, cmd) => {
      const { proc } = await import('./commands/proc.js');
      code = await proc(io, view, {
        ...machineArgs(o, cmd),
        workload: checkWorkload(o.workload),
        warnings: o.warnings,
      });
    });
  machineOptions(program.command('compact'), '1G')
    .description('run compaction after a workload and report buddyinfo, vmstat deltas and results')
    .option(
      '--workload <w>',
      `workload: ${WORKLOADS.join(', ')} (default: filler; none with --from-proc, whose free lists are the real machine's)`,
    )
    .option(
      '--order <n>',
      'target order: -1 = compact_memory; N = every zone for order N, as kcompactd works (no deferral)',
      orderArg,
      -1,
    )
    .option(
      '--mode <m>',
      `migration mode: async, sync_light (or sync-light), sync (default: ${COMPACT_MEMORY_MODE} for --order -1, compact_memory's; ${COMPACT_ORDER_MODE} for an order N)`,
      (v) => oneOf(v, MODES, '--mode'),
    )
    .option(
      '--alloc <ORDERxN>',
      'instead of --order: N allocations of order ORDER (with the gfp mask of a hugetlb pool page), each entering direct compaction when the free lists cannot serve it; they stay allocated',
      allocArg,
    )
    .option(
      '--kcompactd <seconds>',
      `instead of --order (after --alloc's allocations): run kcompactd for this much machine time (0..${KCOMPACTD_MAX_SECONDS}), its proactive check every 500 ms, and the work kswapd wakes it for`,
      kcompactdArg,
    )
    .option('--trace <file|->', 'write the ftrace lines to a file or - for standard output')
    .option('--trace-filter <expr>', 'tracefs filter expression for --trace (needs --trace)')
    .option(
      '--trace-events <list>',
      "events for --trace, comma-separated as tracefs's set_event takes them: EVENT, SYSTEM (compaction, migrate, kmem), SYSTEM:EVENT, SYSTEM:*, *:*; default: every event of the release",
    )
    .option('--json <file|->', 'write a JSON summary')
    .option(
      '--warnings <file|->',
      'write every warning the run logged in full, with its dump_page, to a file or - for standard output',
    )
    .option(
      '--proc <view,...>',
      'print these views after the compaction (as mops proc names them: buddyinfo, zoneinfo, …)',
    )
    .action(async (o, cmd) => {
      const { compact } = await import('./commands/compact.js');
      code = await compact(io, {
        ...machineArgs(o, cmd),
        workload: checkWorkload(o.workload ?? (o.fromProc === undefined ? 'filler' : 'none')),
        // Left out unless given: --alloc and --kcompactd refuse it.
        order: cmd.getOptionValueSource('order') === 'cli' ? o.order : undefined,
        mode: o.mode,
        alloc: o.alloc,
        kcompactdMs: o.kcompactd,
        trace: o.trace,
        traceFilter: o.traceFilter,
        traceEvents: o.traceEvents,
        json: o.json,
        warnings: o.warnings,
        proc: o.proc,
        contents: false,
      });
    });
  machineOptions(program.command('compaction-test'), '256M')
    .description(
      'the kernel selftest compaction_test (method and pass criterion); exit 0 when it passes, 1 when it fails, 4 when skipped',
    )
    .option(
      '--interleave',
      'interleave the chunks page by page (a checkerboard of locked pages)',
      false,
    )
    .action(async (o, cmd) => {
      const { compactionTestCommand } = await import('./commands/compaction_test.js');
      code = await compactionTestCommand(io, {
        ...machineArgs(o, cmd),
        interleave: o.interleave,
        contents: false,
      });
    });
  program
    .command('check-plugin')
    .description('run the movable_ops conformance suite against a plugin; print a table of rules')
    .argument('<name|path>', 'zsmalloc, balloon, a package name or a path')
    .option('--profile <p>', 'check one profile only')
    .action(async (name, o) => {
      const { checkPlugin } = await import('./commands/check_plugin.js');
      code = await checkPlugin(io, name, o.profile && checkProfile(o.profile));
    });
  program
    .command('explore')
    .description(
      'explore interleavings of a race scenario; exit 1 with a replayable report when one fails',
    )
    .argument('<scenario>', 'scenario name (see mops scenarios)')
    .option('--variant <v>', `scenario variant, e.g. buggy or fixed (${defaults.variant})`)
    .option('--strategy <s>', "random, pct or dfs (default: the scenario's, else random)")
    .option(
      '--runs <n>',
      'schedules to run (random, pct) or the DFS cap',
      (v) => intArg(v, '--runs', 1),
      EXPLORE_RUNS,
    )
    .addOption(
      new Option(
        '--seed <n>',
        "first seed: each schedule takes the next; a failure's report names its own seed",
      )
        .default(1)
        // The explorer's seeds are the PRNG's, 32-bit.
        .argParser((v) => intArg(v, '--seed', -(2 ** 31), 2 ** 31 - 1)),
    )
    .option('--depth <d>', `PCT bug depth (default: ${EXPLORE_PCT_DEPTH})`, (v) =>
      intArg(v, '--depth', 1, 64),
    )
    .option('--bound <b>', `DFS preemption bound (default: ${EXPLORE_DFS_BOUND})`, (v) =>
      intArg(v, '--bound', 0, 64),
    )
    .option('--profile <p>', `protocol profile (${defaults.profile})`)
    .option('--shard <i/n>', 'run only this shard of the seeds (for a CI matrix or batch engine)')
    .option(
      '--jobs <n>',
      'worker threads (random, pct)',
      (v) => intArg(v, '--jobs', 1, Math.max(64, cpus().length)),
      1,
    )
    .option('--no-shrink', 'report the failing schedule as found')
    .addOption(loadOption())
    .option('--json', 'print JSON')
    .action(async (name, o, cmd) => {
      const { exploreCommand } = await loadExplorer(o.load);
      code = await exploreCommand(io, name, {
        variant: o.variant,
        strategy: o.strategy,
        runs: o.runs,
        // Only when given: the explorer's own default is the same, and a DFS run takes none.
        seed: cmd.getOptionValueSource('seed') === 'cli' ? o.seed : undefined,
        depth: o.depth,
        bound: o.bound,
        profile: o.profile,
        shard: o.shard,
        jobs: o.jobs,
        shrink: o.shrink,
        json: o.json,
        load: o.load,
      });
    });
  program
    .command('replay')
    .description(
      'replay one schedule of a scenario; exit 1 if it fails, 2 if the schedule does not fit the run',
    )
    .argument('<scenario>', 'scenario name')
    .requiredOption(
      '--schedule <str>',
      'the schedule string explore printed; where it ends before the run does, each later step continues without a preemption (the task that ran last while it can, else the lowest-numbered one), as explore leaves those steps out',
    )
    .option('--variant <v>', `scenario variant, e.g. buggy or fixed (${defaults.variant})`)
    .option('--profile <p>', `protocol profile (${defaults.profile})`)
    .addOption(loadOption())
    .option('--json', 'print JSON')
    .action(async (name, o) => {
      const { replayCommand } = await loadExplorer(o.load);
      code = replayCommand(io, name, {
        variant: o.variant,
        schedule: o.schedule,
        profile: o.profile,
        json: o.json,
        load: o.load,
      });
    });
  program
    .command('scenarios')
    .description('list the race scenarios and their variants')
    .addOption(loadOption())
    .option('--json', 'print JSON')
    .action(async (o) => {
      const { scenariosCommand } = await loadExplorer(o.load);
      code = scenariosCommand(io, Boolean(o.json));
    });
  // Commander's own parse errors (unknown command or option, missing argument) in the mops
  // format, with the help command of the command that was run.
  for (const c of [program, ...program.commands])
    c.configureOutput({
      ...c.configureOutput(),
      outputError: (text) =>
        io.err(
          `mops: ${commanderMessage(text)}; see mops ${c === program ? '' : `${c.name()} `}--help [E_USAGE]\n`,
        ),
    });
  // No command, or help for one that does not exist: the help, then the error line.
  const unknownHelp =
    argv[0] === 'help' &&
    argv[1] !== undefined &&
    !program.commands.some((c) => c.name() === argv[1]);
  if (argv.length === 0 || unknownHelp) {
    io.err(program.helpInformation());
    io.err(
      argv.length === 0
        ? 'mops: give a command; see mops --help [E_USAGE]\n'
        : `mops: unknown command '${argv[1]}'; see mops --help [E_USAGE]\n`,
    );
    return 2;
  }
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
