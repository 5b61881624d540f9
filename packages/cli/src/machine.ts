/**
 * Building the machine a command runs on: size, profile, seed, plugins (by name or path),
 * a real machine's /proc files, and the workloads that fragment it.
 * @module
 */

import {
  compactionState,
  createMachine,
  fragmentWithFiller,
  installPlugin,
  loadPluginModule as loadModule,
  MAX_CONTENT_BYTES,
  type Machine,
  MopsError,
  type MopsPlugin,
  machineFromProc,
  mixedChurn,
  type ProfileName,
  pluginExport,
  profileHasProactiveCompaction,
  setDefragMode,
  setWatermarkBoostFactor,
  validatePlugin,
  valueKind,
} from '@mops/core';
import { checkNonBlank, PLUGIN_BASES } from './load.js';
import { type PopulateHook, pluginWorkload, setPopulateHooks } from './plugin_workload.js';
import { SYSCTL_NAMES } from './sysctls.js';
import { WORKLOADS } from './workloads.js';

/** Machine options shared by the commands. */
export interface MachineOptions {
  /** Memory size, e.g. 256M. */
  readonly memory: string;
  /** Protocol profile. */
  readonly profile: string;
  /** Seed. */
  readonly seed: number;
  /** Plugins to load: `zsmalloc`, `balloon`, a package name, or a path. */
  readonly plugins?: readonly string[];
  /** A directory with a real machine's buddyinfo + pagetypeinfo (+ zoneinfo). */
  readonly fromProc?: string;
  /**
   * With `fromProc`: import the allocated pages of Movable pageblocks as movable pages
   * (machineFromProc's `movable`).
   */
  readonly fromProcMovable?: boolean;
  /** With `fromProc`: receives what the machine prints back differently from the copy. */
  readonly onFromProcNote?: (note: string) => void;
  /** Page contents (default: as createMachine decides). */
  readonly contents?: boolean;
  /** `vm.<name>=<value>` settings (see {@link SYSCTL_NAMES}). */
  readonly sysctls?: readonly string[];
}

/** INT_MAX: the largest value an int sysctl takes. */
const INT_MAX = 0x7fffffff;

/** A sysctl's value, and its text as given (for messages). */
interface SysctlValue {
  readonly value: number;
  readonly text: string;
}

/** Parses `vm.name=value` settings (the `vm.` optional), keeping each value's text; MopsError for a malformed one. */
function parseSysctls(specs: readonly string[]): Map<string, SysctlValue> {
  const out = new Map<string, SysctlValue>();
  for (const spec of specs) {
    const m = /^(?:vm\.)?([a-z_]+)=(-?\d+)$/.exec(spec.trim());
    if (!m)
      throw new MopsError(
        'E_USAGE',
        `--sysctl: write vm.<name>=<integer>, e.g. vm.defrag_mode=1; got '${spec}'`,
        '--sysctl',
      );
    if (!SYSCTL_NAMES.includes(m[1]))
      throw new MopsError(
        'E_USAGE',
        `--sysctl: unknown sysctl vm.${m[1]}; known: ${SYSCTL_NAMES.map((n) => `vm.${n}`).join(', ')}`,
        '--sysctl',
      );
    const v = Number(m[2]);
    // An int sysctl with .extra1 = SYSCTL_ZERO and no upper bound: proc_dointvec_minmax
    // refuses what does not fit an int.
    if (m[1] === 'min_free_kbytes' && !(v >= 0 && v <= INT_MAX))
      throw new MopsError(
        'E_RANGE',
        `--sysctl vm.min_free_kbytes must be an integer 0..${INT_MAX}, got ${m[2]}`,
        '--sysctl',
      );
    out.set(m[1], { value: v, text: m[2] });
  }
  return out;
}

/**
 * A sysctl's range error as the command line gives it: naming `--sysctl` and the value as
 * written (a number too large for a double would otherwise read back rounded, as
 * 100000000000000000000 for 99999999999999999999). Other errors as they are.
 */
function asGiven(e: unknown, given: SysctlValue): unknown {
  const got = `, got ${valueKind(given.value)}`;
  if (!(e instanceof MopsError) || e.code !== 'E_RANGE' || !e.message.endsWith(got)) return e;
  const what = e.message.slice(0, -got.length);
  return new MopsError('E_RANGE', `--sysctl ${what}, got ${given.text}`, '--sysctl');
}

/** Applies the sysctls other than min_free_kbytes (which the machine is built with). */
function applySysctls(m: Machine, sysctls: ReadonlyMap<string, SysctlValue>): void {
  for (const [name, given] of sysctls)
    try {
      applySysctl(m, name, given.value);
    } catch (e) {
      throw asGiven(e, given);
    }
}

/** Sets one sysctl other than min_free_kbytes. */
function applySysctl(m: Machine, name: string, v: number): void {
  const compaction = compactionState(m).sysctl;
  if (name === 'watermark_boost_factor') setWatermarkBoostFactor(m.mem, v);
  else if (name === 'defrag_mode') setDefragMode(m.mem, v);
  else if (name === 'compaction_proactiveness') {
    if (!profileHasProactiveCompaction(m.profile))
      throw new MopsError(
        'E_USAGE',
        `vm.compaction_proactiveness does not exist in ${m.profile.name} (proactive compaction came in 5.9)`,
        '--sysctl',
      );
    compaction.compactionProactiveness = v;
  } else if (name === 'extfrag_threshold') compaction.extfragThreshold = v;
  else if (name === 'compact_unevictable_allowed') compaction.compactUnevictableAllowed = v;
}

/** The bundled plugins, imported through this package's own dependencies. */
const BUNDLED: Record<string, () => Promise<Record<string, unknown>>> = {
  zsmalloc: () => import('@mops/zsmalloc'),
  '@mops/zsmalloc': () => import('@mops/zsmalloc'),
  balloon: () => import('@mops/balloon'),
  '@mops/balloon': () => import('@mops/balloon'),
};

/**
 * Loads a plugin module: a bundled one by short or package name, anything else by package
 * name or path. Returns the validated plugin and its module (for extra exports such as
 * `conformance`).
 */
export async function loadPluginModule(
  spec: string,
): Promise<{ plugin: MopsPlugin; module: Record<string, unknown> }> {
  const bundled = BUNDLED[spec];
  if (bundled) {
    const module = await bundled();
    return { plugin: validatePlugin(pluginExport(module), spec), module };
  }
  return loadModule(spec, PLUGIN_BASES);
}

/**
 * Creates the machine (with page contents when a plugin needs them) and installs the plugins.
 * An empty `--from-proc` or `--plugin` is `MopsError('E_USAGE')` naming it; a machine too
 * large to keep the page contents a plugin needs, `MopsError('E_CONFIG')` saying what works.
 */
export async function buildMachine(opts: MachineOptions): Promise<Machine> {
  if (opts.fromProc !== undefined)
    checkNonBlank(
      opts.fromProc,
      '--from-proc',
      "a directory holding a copy of a machine's /proc files (buddyinfo, pagetypeinfo)",
    );
  const plugins: MopsPlugin[] = [];
  const hooks: PopulateHook[] = [];
  // The plugins that keep data in pages, as the command line named them.
  const needContents: string[] = [];
  for (const spec of opts.plugins ?? []) {
    checkNonBlank(spec, '--plugin', 'zsmalloc, balloon, a package name or a path');
    const { plugin, module } = await loadPluginModule(spec);
    plugins.push(plugin);
    if (plugin.manifest.needsContents === true) needContents.push(spec);
    const populate = (module.conformance as { populate?: unknown } | undefined)?.populate;
    if (typeof populate === 'function')
      hooks.push({
        name: plugin.manifest.name,
        needsContents: plugin.manifest.needsContents === true,
        populate: populate as PopulateHook['populate'],
      });
  }
  const contents = needContents.length > 0 ? true : opts.contents;
  const sysctls = parseSysctls(opts.sysctls ?? []);
  const minFreeKbytes = sysctls.get('min_free_kbytes')?.value;
  const mfk = minFreeKbytes === undefined ? {} : { minFreeKbytes };
  let m: Machine;
  try {
    m =
      opts.fromProc !== undefined
        ? machineFromProc(opts.fromProc, {
            profile: opts.profile as ProfileName,
            seed: opts.seed,
            contents,
            movable: opts.fromProcMovable === true,
            ...(opts.onFromProcNote ? { onNote: opts.onFromProcNote } : {}),
            ...mfk,
          })
        : createMachine({
            memory: opts.memory,
            profile: opts.profile as ProfileName,
            seed: opts.seed,
            contents,
            ...mfk,
          });
  } catch (e) {
    throw contentsTooLarge(e, opts, needContents);
  }
  applySysctls(m, sysctls);
  for (const p of plugins) installPlugin(m, p);
  setPopulateHooks(m, hooks);
  return m;
}

/**
 * The core's refusal of page contents for a machine above {@link MAX_CONTENT_BYTES}, as the
 * command line can act on it: the command cannot leave the contents out (the plugins that
 * keep data in pages need them), so it says the largest memory that works, or which
 * plugin to leave out of a `--from-proc` machine. Other errors as they are.
 */
function contentsTooLarge(e: unknown, opts: MachineOptions, names: readonly string[]): unknown {
  if (!(e instanceof MopsError) || e.code !== 'E_CONFIG' || e.field !== 'contents') return e;
  const gib = MAX_CONTENT_BYTES / 1024 ** 3;
  const max = `${gib}G`;
  const who =
    names.length === 0
      ? 'this command keeps page contents'
      : `the ${names.join(' and ')} plugin${names.length > 1 ? 's keep their' : ' keeps its'} data in page contents`;
  const limit = `which mops holds for at most ${gib} GiB of memory`;
  if (opts.fromProc !== undefined)
    return new MopsError(
      'E_CONFIG',
      `--from-proc ${opts.fromProc}: the sample's machine is larger than ${gib} GiB, and ${who}, ${limit}; ${
        names.length > 0
          ? `leave out ${names.map((n) => `--plugin ${n}`).join(' and ')}, or use --memory ${max} or less instead of --from-proc`
          : `use --memory ${max} or less instead of --from-proc`
      }`,
      '--from-proc',
    );
  return new MopsError(
    'E_CONFIG',
    `--memory ${opts.memory}: ${who}, ${limit}; give --memory ${max} or less`,
    '--memory',
  );
}

export { WORKLOADS };

/** What a workload did, for reports. */
export interface WorkloadSummary {
  /** One line per effect. */
  readonly lines: string[];
}

interface ZsPoolLike {
  zsMalloc(size: number): number;
  zsFree(h: number): void;
  objWrite(h: number, data: Uint8Array): void;
}

/** What the CLI asks of a virtio balloon. */
export interface BalloonLike {
  fill(n: number): import('@mops/core').KernelGen<number>;
}

/**
 * Inflates `vb` by `want` pages, as update_balloon_size_func() reaches a target: fill again
 * (each fill_balloon() takes at most VIRTIO_BALLOON_ARRAY_PFNS_MAX pages) until the target
 * is reached or a fill finds no page. Returns the pages inflated.
 */
export function inflateBalloon(m: Machine, vb: BalloonLike, want: number): number {
  return m.run(function* () {
    let got = 0;
    while (got < want) {
      const step = yield* vb.fill(want - got);
      if (step === 0) break;
      got += step;
    }
    return got;
  });
}

/**
 * Runs a workload built on the filler driver. v6.17 lets one driver own a page type: with
 * another Offline driver loaded the filler cannot register, and the error says which
 * workloads leave it out.
 */
function withFiller<T>(run: () => T): T {
  try {
    return run();
  } catch (e) {
    if (e instanceof MopsError && e.code === 'E_PLUGIN')
      throw new MopsError(
        'E_PLUGIN',
        `${e.message}; --workload none or plugin runs without the filler`,
        e.field,
      );
    throw e;
  }
}

function resolveOptional<T>(m: Machine, token: symbol): T | undefined {
  return m.container.isRegistered(token, true) ? m.container.resolve<T>(token) : undefined;
}

/**
 * Runs a named workload. `filler` fills memory with movable filler pages among pinned
 * unmovable ones and frees a random half; `zsmalloc` fills the zsmalloc pool with objects
 * of random sizes and frees a random half; `balloon` inflates the balloon over a
 * fragmented machine; `churn` is the unmovable/movable allocation churn, its movable pages
 * filler pages compaction can migrate.
 */
export async function runWorkload(m: Machine, name: string): Promise<WorkloadSummary> {
  switch (name) {
    case 'none':
      return { lines: [] };
    case 'plugin':
      return pluginWorkload(m);
    case 'churn': {
      const r = withFiller(() => mixedChurn(m, { movable: 'filler' }));
      const movable = r.live.filter((b) => b[2]).length;
      return {
        lines: [
          `churn: ${r.live.length - movable} unmovable blocks and ${movable} movable filler pages left allocated`,
        ],
      };
    }
    case 'filler': {
      const r = withFiller(() => fragmentWithFiller(m, { fill: 0.9, free: 0.5 }));
      return {
        lines: [
          `filler: ${r.filled} movable filler pages, ${r.freed} freed again, ${r.unmovable.length} pinned unmovable pages`,
        ],
      };
    }
    case 'zsmalloc': {
      const { ZS_POOL } = (await import('@mops/zsmalloc')) as { ZS_POOL: symbol };
      const pool = resolveOptional<ZsPoolLike>(m, ZS_POOL);
      if (!pool)
        throw new MopsError('E_USAGE', '--workload zsmalloc needs --plugin zsmalloc', '--workload');
      const hs: number[] = [];
      const free = m.mem.nrFreePages();
      const budget = Math.floor(free * 0.7) * 4096;
      let used = 0;
      while (used < budget) {
        const size = 32 + m.prng.below(4000);
        const h = pool.zsMalloc(size);
        if (h <= 0) break;
        const data = new Uint8Array(size);
        data.fill(h & 0xff);
        pool.objWrite(h, data);
        hs.push(h);
        used += size;
      }
      let freed = 0;
      for (const h of hs)
        if (m.prng.float() < 0.5) {
          pool.zsFree(h);
          freed++;
        }
      return {
        lines: [`zsmalloc: ${hs.length} objects written, ${freed} freed, zspages left sparse`],
      };
    }
    case 'balloon': {
      const { VIRTIO_BALLOON } = (await import('@mops/balloon')) as { VIRTIO_BALLOON: symbol };
      const vb = resolveOptional<BalloonLike>(m, VIRTIO_BALLOON);
      if (!vb)
        throw new MopsError('E_USAGE', '--workload balloon needs --plugin balloon', '--workload');
      // Inflate into the holes of a churned machine: balloon pages end up scattered.
      mixedChurn(m, { fill: 0.8, free: 0.5, unmovable: 0.1 });
      const want = Math.floor(m.mem.nrFreePages() / 3);
      const n = inflateBalloon(m, vb, want);
      return {
        lines: [
          `balloon: inflated ${n} of ${want} pages (a third of the free ones) into the holes of a churned machine`,
        ],
      };
    }
    default:
      throw new MopsError(
        'E_USAGE',
        `--workload must be one of ${WORKLOADS.join(', ')}, got '${name}'`,
        '--workload',
      );
  }
}
