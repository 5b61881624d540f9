/**
 * Every bundled race, explored as `mops explore NAME --variant buggy --profile P` explores it
 * (the scenario's own strategy, the default run count and seed), finds its failure on every
 * profile the scenario lists, and `mops replay` of the reported schedule fails the same way.
 */
import { describe, expect, it } from 'vitest';
import {
  explore,
  registerBuiltinScenarios,
  replay,
  scenarios,
} from '../packages/explorer/src/index.js';
import { registerBalloonScenarios } from '../plugins/balloon/src/index.js';
import { registerZsmallocScenarios } from '../plugins/zsmalloc/src/index.js';

registerBuiltinScenarios();
registerZsmallocScenarios();
registerBalloonScenarios();

const cases = scenarios()
  .filter((s) => s.variants.includes('buggy'))
  .flatMap((s) => s.profiles.map((profile) => [s.name, profile] as const));

describe('the bundled races with explore’s defaults', () => {
  it('cover every bundled scenario', () => {
    const names = new Set(cases.map(([name]) => name));
    for (const name of [
      '9a',
      '9d-double',
      'zsmalloc-read-vs-migrate',
      'balloon-deflate-vs-isolate',
    ])
      expect(names).toContain(name);
  });

  it.each(cases)(
    '%s buggy on %s: found in the default 1000 runs, and replayed',
    (name, profile) => {
      const r = explore(name, { variant: 'buggy', profile });
      expect(r.failed).toBe(true);
      const rep = replay(name, { variant: 'buggy', profile, schedule: r.schedule! });
      expect(rep.failed).toBe(true);
      expect(rep.failure).toEqual(r.failure);
    },
  );
});
