/**
 * Worker-thread entry of `mops explore --jobs N`: runs one shard of the seed space.
 * @module
 */

import { registerBalloonScenarios } from '@mops/balloon';
import { MopsError, type MopsErrorCode } from '@mops/core';
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
}): Promise<ExploreResult | WorkerError> {
  try {
    await loadScenarioModules(load);
    return explore(name, opts);
  } catch (e) {
    // A MopsError loses its class and code on the way to the main thread: send them as data.
    if (e instanceof MopsError)
      return { mopsError: { code: e.code, message: e.message, field: e.field } };
    throw e;
  }
}

/** A worker's MopsError, as data (see {@link run}). */
export interface WorkerError {
  readonly mopsError: {
    readonly code: MopsErrorCode;
    readonly message: string;
    readonly field?: string;
  };
}
