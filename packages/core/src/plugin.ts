/**
 * Driver plugins: a package exporting a manifest and a
 * `register(container, machine)` entry point, loaded by package name or path and
 * installed into one machine's child container.
 * @module
 */

import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { DependencyContainer } from 'tsyringe';
import { checkMachine, MmBug, MopsError, valueKind } from './errors.js';
import type { Machine } from './machine.js';
import { describe, isThenable, shown } from './migrate/driver_faults.js';
import { keepPublishedOps, refusedMovableOps, registeredMovableOps } from './migrate/movable.js';
import { importModule } from './module_target.js';
import { pageTypeName } from './page/flags.js';
import { PROFILE_NAMES, type ProfileName } from './profile.js';
import type { ListenerTable } from './trace/bus.js';

/** What a plugin says about itself. */
export interface PluginManifest {
  /** Package-like name, e.g. `@mops/balloon`. */
  readonly name: string;
  /** Version, `major.minor.patch`. */
  readonly version: string;
  /** The profiles the plugin implements. */
  readonly profiles: readonly ProfileName[];
  /** One line for listings. */
  readonly description?: string;
  /** The plugin keeps data in page contents: its machine must be built with `contents`. */
  readonly needsContents?: boolean;
}

/** A driver plugin. */
export interface MopsPlugin {
  /** The manifest. */
  readonly manifest: PluginManifest;
  /**
   * Registers the plugin's services in the machine's child container (never the root one)
   * and sets the driver up: movable_ops, text views, invariant checkers. It must finish
   * before returning (no async work); a throw fails the install, and what it registered
   * with the machine is taken back (see {@link installPlugin}); what it did to memory is
   * its own to undo before it throws.
   * @param container the machine's own child container (`machine.container`)
   * @param machine the machine the plugin is installed into
   */
  register(container: DependencyContainer, machine: Machine): void;
}

/** DI token under which every installed plugin is registered (resolve with injectAll). */
export const PLUGIN: unique symbol = Symbol('mops.Plugin');

const VERSION = /^\d+\.\d+\.\d+(?:[-+][\w.-]+)?$/;

/**
 * Checks that `x` is a plugin: a manifest with name, version and supported profiles, and a
 * register function.
 * @param x what a module exported as the plugin
 * @param source where it came from (a package name or path), for messages
 * @returns `x`, typed
 * @throws {@link MopsError} `E_PLUGIN` naming the plugin and the bad field
 */
export function validatePlugin(x: unknown, source: string): MopsPlugin {
  if (typeof x === 'function')
    throw new MopsError(
      'E_PLUGIN',
      `plugin ${source}: export must be an object { manifest, register }, got ${valueKind(x)}: export the plugin object as the module's default export or as \`plugin\` (a driver class goes in its register)`,
      'export',
    );
  const fail = (field: string, what: string): never => {
    throw new MopsError('E_PLUGIN', `plugin ${source}: ${field} ${what}`, field);
  };
  if (x === null || typeof x !== 'object')
    return fail(
      'export',
      'must be an object { manifest, register }: the module’s default export or its `plugin` export',
    );
  const p = x as Partial<MopsPlugin>;
  const m = p.manifest as Partial<PluginManifest> | undefined;
  if (!m || typeof m !== 'object') return fail('manifest', 'is missing');
  const name =
    typeof m.name === 'string' && m.name.trim()
      ? m.name
      : fail('manifest.name', 'must be a non-empty string');
  // The name is how users and reports refer to the plugin: no blanks around it.
  if (name.trim() !== name)
    fail('manifest.name', `must not start or end with white space, got ${JSON.stringify(name)}`);
  source = `${name} (${source})`;
  if (typeof m.version !== 'string' || !VERSION.test(m.version))
    fail('manifest.version', `must look like 1.2.3, got ${valueKind(m.version)}`);
  if (!Array.isArray(m.profiles) || m.profiles.length === 0)
    fail('manifest.profiles', `must list the profiles it supports (${PROFILE_NAMES.join(', ')})`);
  const profiles = m.profiles as unknown[];
  for (const [i, prof] of profiles.entries()) {
    if (!PROFILE_NAMES.includes(prof as ProfileName))
      fail(
        'manifest.profiles',
        `names ${valueKind(prof)}, which is not a profile; known: ${PROFILE_NAMES.join(', ')}`,
      );
    if (profiles.indexOf(prof) !== i)
      fail('manifest.profiles', `names profile ${valueKind(prof)} twice`);
  }
  if (m.needsContents !== undefined && typeof m.needsContents !== 'boolean')
    fail('manifest.needsContents', 'must be true or false when given');
  if (typeof p.register !== 'function')
    fail('register', 'must be a function (container, machine) => void');
  return p as MopsPlugin;
}

/**
 * Loads a plugin by package name (`@mops/balloon`) or by path (`./my-driver/index.js`,
 * absolute or relative to `base`). The module's default export, or its `plugin` export,
 * is the plugin.
 * @param spec a package name or a path to the plugin's module or package directory
 * @param base the directory (or directories, tried in turn) a name or relative path
 *   resolves from (default: the working directory)
 * @returns the validated plugin
 * @throws {@link MopsError} `E_PLUGIN` when the module cannot be loaded or exports no valid
 *   plugin
 */
export async function loadPlugin(
  spec: string,
  base: string | readonly string[] = process.cwd(),
): Promise<MopsPlugin> {
  return (await loadPluginModule(spec, base)).plugin;
}

/**
 * The export of a plugin's module that is its plugin: the default export, or the `plugin`
 * export when the default export is something else (such as the driver's class) or absent.
 * @param mod the module's namespace
 * @returns the candidate, for {@link validatePlugin}
 */
export function pluginExport(mod: Record<string, unknown>): unknown {
  const d = mod.default;
  const looksLikePlugin = d !== null && typeof d === 'object' && 'manifest' in d;
  return looksLikePlugin || mod.plugin === undefined ? d : mod.plugin;
}

/** Plugin loads under way. */
let loadsInFlight = 0;
/** Plugin loads started so far. */
let loadsStarted = 0;

/**
 * {@link loadPlugin}, also returning the whole module, for exports beside the plugin (such
 * as the `conformance` hooks of the driver conformance suite).
 * @param spec a package name or a path to the plugin's module or package directory
 * @param base the directory (or directories, tried in turn) to resolve from
 * @returns the validated plugin and the module's namespace
 * @throws {@link MopsError} `E_PLUGIN` when the module cannot be loaded or exports no valid
 *   plugin
 */
export async function loadPluginModule(
  spec: string,
  base: string | readonly string[] = process.cwd(),
): Promise<{ plugin: MopsPlugin; module: Record<string, unknown> }> {
  const bases = typeof base === 'string' ? [base] : base;
  const copies = new Set(loadedCopies);
  // Whether another load ran during this one (beside it, or inside its import: a plugin
  // whose module loads another): what an import brought is then not known to be its own.
  const started = ++loadsStarted;
  const alone = loadsInFlight++ === 0;
  let mod: Record<string, unknown>;
  try {
    mod = await importModule(
      spec,
      (reason) =>
        new MopsError(
          'E_PLUGIN',
          `plugin ${spec}: cannot load it (${reason}); give a package name or a path to its module`,
          'plugin',
        ),
      bases,
    );
  } finally {
    loadsInFlight--;
  }
  checkSameCore(spec, copies, !alone || loadsStarted !== started);
  return { plugin: validatePlugin(pluginExport(mod), spec), module: mod };
}

/** The real path of this @mops/core's package directory. */
const OWN_CORE = realpathSync(fileURLToPath(new URL('..', import.meta.url)));

/**
 * The package directories of the copies of @mops/core loaded in this process: each adds
 * its own when it loads.
 */
const COPIES = Symbol.for('@mops/core: loaded copies');
const processGlobals = globalThis as Record<symbol, unknown>;
processGlobals[COPIES] ??= new Set<string>();
const loadedCopies = processGlobals[COPIES] as Set<string>;
loadedCopies.add(OWN_CORE);

/**
 * E_PLUGIN when, once the plugin `spec` is imported, another copy of @mops/core is loaded
 * in the process (`before`: the copies loaded until then, to say whether this import
 * brought it, unless other loads ran `beside` it): a driver on that copy would use its
 * classes as DI tokens and its registries, so installs fail with a container error, or,
 * worse, pass with two drivers sharing a page type.
 */
function checkSameCore(spec: string, before: ReadonlySet<string>, beside: boolean): void {
  const other = [...loadedCopies].find((c) => c !== OWN_CORE);
  if (other === undefined) return;
  const how = before.has(other)
    ? 'another copy of @mops/core is loaded in this process (a plugin loaded before brought it)'
    : beside
      ? 'another copy of @mops/core was loaded while it and other plugins were loading (one of them brought it)'
      : 'importing it loaded another copy of @mops/core';
  throw new MopsError(
    'E_PLUGIN',
    `plugin ${spec}: ${how}, at ${other}, while mops runs the one at ${OWN_CORE}; two copies share no machine services or registries: install the plugin against this one as a link (npm install without --install-links, or a pnpm workspace)`,
    'plugin',
  );
}

/**
 * Installs a plugin into a machine: checks it supports the machine's profile, registers it
 * under {@link PLUGIN} and calls its `register` with the machine's child container. A
 * failed install takes back what `register` registered: invariant checkers, views, trace
 * listeners, per-machine state and page-type registrations (v6.17: except the ops of a
 * type a page it published still carries). Pages it allocated or published, and its
 * container registrations, stay.
 * @param machine the machine to install into
 * @param plugin the plugin (its module's default or `plugin` export)
 * @throws {@link MopsError} `E_PLUGIN` for an invalid plugin, a profile it does not support,
 *   a second install of it, a register that throws or returns a promise, or a
 *   set_movable_ops() refused with -EBUSY; `E_STATE` when it needs page contents the
 *   machine lacks; an {@link MmBug} its register raised passes through
 */
export function installPlugin(machine: Machine, plugin: MopsPlugin): void {
  checkMachine(machine, 'installPlugin');
  const p = validatePlugin(plugin, plugin?.manifest?.name ?? 'plugin');
  const prof = machine.profile.name;
  if (!p.manifest.profiles.includes(prof))
    throw new MopsError(
      'E_PLUGIN',
      `plugin ${p.manifest.name} supports ${p.manifest.profiles.join(', ')}; this machine runs ${prof}`,
      'profile',
    );
  if (p.manifest.needsContents && !machine.mem.pages.contents)
    throw new MopsError(
      'E_STATE',
      `plugin ${p.manifest.name} keeps data in page contents; build the machine with contents: true`,
      'contents',
    );
  const name = p.manifest.name;
  if (installedPlugins(machine).some((q) => q.manifest.name === name))
    throw new MopsError(
      'E_PLUGIN',
      `plugin ${name} is already installed in this machine`,
      'manifest.name',
    );
  const before = machineRegistrations(machine);
  const refused = refusedMovableOps(machine.mem).length;
  const fail = (e: Error): never => {
    rollBack(machine, before);
    throw e;
  };
  let result: unknown;
  try {
    result = p.register(machine.container, machine);
  } catch (e) {
    fail(
      e instanceof MopsError || e instanceof MmBug
        ? e
        : new MopsError('E_PLUGIN', `plugin ${name}: register threw (${describe(e)})`, 'register'),
    );
  }
  if (isThenable(result)) {
    fail(
      new MopsError(
        'E_PLUGIN',
        // shown() also handles the Promise's rejection.
        `plugin ${name}: register returned ${shown(result)}; it must set the driver up before it returns (no async work)`,
        'register',
      ),
    );
  }
  const busy = refusedMovableOps(machine.mem).slice(refused);
  if (busy.length > 0)
    fail(
      new MopsError(
        'E_PLUGIN',
        `plugin ${name}: set_movable_ops() returned -EBUSY: page type ${pageTypeName(busy[0].pgty)} already has the movable_ops of ${busy[0].taken ?? 'another driver'}; one driver per page type`,
        'setMovableOps',
      ),
    );
  machine.container.register(PLUGIN, { useValue: p });
}

/** What a plugin's register may add to a machine and a failed install takes back. */
interface Registrations {
  readonly checkers: Map<string, unknown>;
  readonly ext: Map<object, unknown>;
  /** The machine's maps kept in `ext` (text views, the v6.17 registry), copied. */
  readonly maps: Map<object, Map<unknown, unknown>>;
  /** The trace bus's listeners. */
  readonly listeners: ListenerTable;
}

function machineRegistrations(machine: Machine): Registrations {
  const maps = new Map<object, Map<unknown, unknown>>();
  for (const [k, v] of machine.mem.ext) if (v instanceof Map) maps.set(k, new Map(v));
  return {
    checkers: new Map(machine.invariantCheckers),
    ext: new Map(machine.mem.ext),
    maps,
    listeners: machine.trace.listenerTable(),
  };
}

/**
 * Takes back the invariant checkers, text views, trace listeners, page-type registrations
 * and per-machine state a failed register added, except the movable_ops of a page type a
 * page it published still carries (v6.17: page_movable_ops() of that page must find them).
 * What it did to memory stays (pages it allocated or published: a register that fails
 * undoes its own work first, as a driver's probe does), and so do the container's own
 * registrations (tsyringe cannot remove them).
 */
function rollBack(machine: Machine, r: Registrations): void {
  const registered = registeredMovableOps(machine.mem);
  machine.trace.removeListenersAddedSince(r.listeners);
  const checkers = machine.invariantCheckers as Map<string, unknown>;
  checkers.clear();
  for (const [k, v] of r.checkers) checkers.set(k, v);
  const ext = machine.mem.ext;
  for (const k of [...ext.keys()]) if (!r.ext.has(k)) ext.delete(k);
  for (const [k, v] of r.ext) ext.set(k, v);
  for (const [k, copy] of r.maps) {
    const live = ext.get(k) as Map<unknown, unknown>;
    live.clear();
    for (const [a, b] of copy) live.set(a, b);
  }
  keepPublishedOps(machine.mem, registered);
}

/**
 * The plugins installed in a machine.
 * @param machine the machine
 * @returns the plugins, in install order
 * @throws {@link MopsError} `E_USAGE` when `machine` is not a machine
 */
export function installedPlugins(machine: Machine): MopsPlugin[] {
  checkMachine(machine, 'installedPlugins');
  return machine.container.isRegistered(PLUGIN)
    ? machine.container.resolveAll<MopsPlugin>(PLUGIN)
    : [];
}
