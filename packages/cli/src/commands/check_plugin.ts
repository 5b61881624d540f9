/**
 * `mops check-plugin NAME|PATH`: the conformance suite against a plugin, as a table.
 * @module
 */

import { type Machine, MopsError, type ProfileName } from '@mops/core';
import {
  checkDriverConformance,
  conformanceMachine,
  conformanceProfiles,
  type DriverAdapter,
} from '@mops/testkit/conformance';
import pc from 'picocolors';
import type { Io } from '../io.js';
import { checkNonBlank } from '../load.js';
import { loadPluginModule } from '../machine.js';

/**
 * A plugin module exports `conformance = { populate, release? }` so the suite can make its
 * pages (and, with `release`, check the owner giving up an isolated page).
 */
interface ConformanceExport {
  populate(m: Machine, n: number): number[];
  release?(m: Machine, pfn: number): number[];
}

/** Runs the command (`profile` already checked); exit 0 when every rule passes, 1 otherwise. */
export async function checkPlugin(io: Io, spec: string, profile?: string): Promise<number> {
  checkNonBlank(
    spec,
    'check-plugin',
    'a plugin: zsmalloc, balloon, a package name or a path',
    '<name|path>',
  );
  const { plugin, module } = await loadPluginModule(spec);
  const conf = module.conformance as ConformanceExport | undefined;
  if (!conf || typeof conf.populate !== 'function')
    throw new MopsError(
      'E_PLUGIN',
      `plugin ${plugin.manifest.name}: export \`conformance = { populate(machine, n) }\` so the suite can make its pages`,
      'conformance',
    );
  const listed = plugin.manifest.profiles;
  if (profile && !listed.includes(profile as ProfileName))
    throw new MopsError(
      'E_USAGE',
      `--profile ${profile}: plugin ${plugin.manifest.name} does not implement it; its manifest lists ${listed.join(', ')}`,
      '--profile',
    );
  const adapter: DriverAdapter = {
    name: plugin.manifest.name,
    plugin,
    populate: conf.populate,
    ...(typeof conf.release === 'function' ? { release: conf.release } : {}),
  };
  const profiles = profile ? [profile as ProfileName] : conformanceProfiles(adapter);
  // A plugin that cannot be installed (its `register` throws, say) fails here, with its
  // error, as in every other command, not once per rule. What populate() does is the
  // rules' business: they report it.
  for (const p of profiles) conformanceMachine(adapter, p);
  let failed = 0;
  let skipped = 0;
  const rows = profiles.flatMap((p) => checkDriverConformance(adapter, p).map((r) => ({ p, r })));
  // Columns as wide as their widest cell.
  const ruleW = Math.max(4, ...rows.map(({ r }) => r.id.length));
  const secW = Math.max(7, ...rows.map(({ r }) => r.section.length));
  io.out(`${'profile'.padEnd(8)} ${'rule'.padEnd(ruleW)} ${'section'.padEnd(secW)} result\n`);
  for (const { p, r } of rows) {
    // A rule the adapter lacks a hook for was not checked: SKIP with the reason.
    const mark =
      r.skipped !== undefined
        ? io.isTTY
          ? pc.yellow('SKIP')
          : 'SKIP'
        : r.passed
          ? io.isTTY
            ? pc.green('pass')
            : 'pass'
          : io.isTTY
            ? pc.red('FAIL')
            : 'FAIL';
    const why = r.skipped !== undefined ? `  ${r.skipped}` : r.passed ? '' : `  ${r.detail}`;
    io.out(`${p.padEnd(8)} ${r.id.padEnd(ruleW)} ${r.section.padEnd(secW)} ${mark}${why}\n`);
    if (!r.passed) failed++;
    if (r.skipped !== undefined) skipped++;
  }
  const notChecked = skipped > 0 ? ` (${skipped} not checked)` : '';
  io.out(`${failed === 0 ? 'all rules pass' : `${failed} rule(s) failed`}${notChecked}\n`);
  return failed === 0 ? 0 : 1;
}
