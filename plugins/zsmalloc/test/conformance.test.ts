import type { Machine } from '@mops/core';
import { describeDriverConformance } from '@mops/testkit';
import { plugin, ZS_POOL, type ZsPool } from '../src/index.js';
import { fill, pfnOf } from './helpers.js';

describeDriverConformance({
  name: '@mops/zsmalloc',
  plugin,
  populate(m: Machine, n: number): number[] {
    const pool = m.container.resolve<ZsPool>(ZS_POOL);
    const pages = new Set<number>();
    // Objects of 3600 bytes span pages: every zspage has 8 sub-pages.
    for (let key = 0; pages.size < n; key++) {
      const [h] = fill(pool, 1, 3600, key);
      const zs = pool.zspageOf(pfnOf(pool, h));
      for (const pfn of zs?.pages ?? []) pages.add(pfn);
    }
    return [...pages];
  },
});
