/**
 * Worker-thread entry of `mops explore --jobs N`: runs one shard of the seed space.
 * @module
 */

import { registerBalloonScenarios } from '@mops/balloon';
import { type ExploreOptions, type ExploreResult, explore } from '@mops/explorer';
import { registerZsmallocScenarios } from '@mops/zsmalloc';
import { loadScenarioModules } from './load.js';

registerZsmallocScenarios();
registerBalloonScenarios();

/**
 * Loads the `--load` modules the command loaded (once per worker), then runs
 * `explore(name, opts)` for one shard.
 */
export default async function run({
  name,
  opts,
  load = [],
}: {
  name: string;
  opts: ExploreOptions;
  load?: readonly string[];
}): Promise<ExploreResult> {
  await loadScenarioModules(load);
  return explore(name, opts);
}
