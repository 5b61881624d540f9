/**
 * Loading user modules by package name or path: driver plugins (`--plugin`, `check-plugin`)
 * and modules that register race scenarios (`--load`).
 * @module
 */

import { fileURLToPath } from 'node:url';
import { importModule, MopsError, moduleTarget } from '@mops/core';

/** Where package names resolve: the working directory, then this command's install. */
export const PLUGIN_BASES: readonly string[] = [
  process.cwd(),
  fileURLToPath(new URL('..', import.meta.url)),
];

/** Modules {@link loadScenarioModules} has loaded in this process, by import target. */
const loaded = new Set<string>();

/**
 * Loads the modules of `--load`, each once per process. A module registers its scenarios
 * with `registerScenario` from `@mops/explorer` when imported, or exports
 * `registerScenarios()`, which is called. `MopsError('E_USAGE')` when a module cannot be
 * loaded or registers nothing with the `@mops/explorer` this command uses.
 */
export async function loadScenarioModules(specs: readonly string[]): Promise<void> {
  const { listScenarios } = await import('@mops/explorer');
  for (const spec of specs) {
    const target = moduleTarget(spec, PLUGIN_BASES);
    if (loaded.has(target)) continue;
    const before = new Set(listScenarios());
    const mod = await importModule(
      spec,
      (reason) =>
        new MopsError(
          'E_USAGE',
          `--load ${spec}: cannot load it (${reason}); give a package name or a path (./file.js) to a module that registers scenarios`,
          '--load',
        ),
      PLUGIN_BASES,
    );
    const register = mod.registerScenarios;
    if (typeof register === 'function') await register();
    if (listScenarios().every((s) => before.has(s)))
      throw new MopsError(
        'E_USAGE',
        `--load ${spec}: the module registered no scenario; call registerScenario from @mops/explorer when it is imported, or export registerScenarios() (check it imports the same @mops/explorer as mops)`,
        '--load',
      );
    loaded.add(target);
  }
}

/** A word as a POSIX shell reads it back: quoted unless it is plain. */
export function shellWord(s: string): string {
  return /^[\w./@:+=,-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`;
}

/**
 * `text` with `--load SPEC` added to its `mops replay SCENARIO` command lines, so the
 * printed command finds a scenario the modules register.
 */
export function withLoadOptions(text: string, scenario: string, specs: readonly string[]): string {
  if (specs.length === 0) return text;
  const load = specs.map((s) => `--load ${shellWord(s)}`).join(' ');
  return text.replaceAll(`mops replay ${scenario} `, `mops replay ${scenario} ${load} `);
}
