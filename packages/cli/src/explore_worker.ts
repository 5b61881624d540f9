/**
 * Worker-thread entry of `mops explore --jobs N`: runs one shard of the seed space.
 * @module
 */

import { registerBalloonScenarios } from '@mops/balloon';
import { type ExploreOptions, type ExploreResult, explore } from '@mops/explorer';
import { registerZsmallocScenarios } from '@mops/zsmalloc';

registerZsmallocScenarios();
registerBalloonScenarios();

/** Runs `explore(name, opts)` for one shard. */
export default function run({ name, opts }: { name: string; opts: ExploreOptions }): ExploreResult {
  return explore(name, opts);
}
