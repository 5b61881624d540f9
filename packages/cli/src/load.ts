/**
 * Loading user modules by package name or path: driver plugins (`--plugin`, `check-plugin`)
 * and modules that register race scenarios (`--load`).
 * @module
 */

import { fileURLToPath } from 'node:url';
import { importModule, MopsError, moduleTarget, printable, valueKind } from '@mops/core';

/** Where package names resolve: the working directory, then this command's install. */
export const PLUGIN_BASES: readonly string[] = [
  process.cwd(),
  fileURLToPath(new URL('..', import.meta.url)),
];

/**
 * `MopsError('E_USAGE')` naming `option` unless `spec` is a string that is not blank: an
 * empty module name would resolve to the working directory and fail there with a message
 * about `index.js`, an empty file name would write nothing. `what` says what the option
 * takes; `field` is the error's (default `option`).
 */
export function checkNonBlank(spec: unknown, option: string, what: string, field = option): void {
  if (typeof spec !== 'string' || spec.trim() === '')
    throw new MopsError('E_USAGE', `${option} needs ${what}, got ${valueKind(spec)}`, field);
}

/** The first line of what an error says. */
function reasonOf(e: unknown): string {
  return e instanceof Error ? (e.message.split('\n')[0] ?? '') : printable(e);
}

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
    checkNonBlank(
      spec,
      '--load',
      'a package name or a path (./file.js) to a module that registers scenarios',
    );
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
    // Its errors, like those of the import, are the module's: one line naming it. A
    // MopsError (registerScenario refusing a scenario) keeps its own code.
    if (typeof register === 'function')
      try {
        await register();
      } catch (e) {
        if (e instanceof MopsError)
          throw new MopsError(e.code, `--load ${spec}: ${e.message.split('\n')[0]}`, e.field);
        throw new MopsError(
          'E_USAGE',
          `--load ${spec}: its registerScenarios() threw (${reasonOf(e)}); fix the module, or give one that registers scenarios`,
          '--load',
        );
      }
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
