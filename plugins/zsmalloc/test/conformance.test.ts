import type { MopsPlugin } from '@mops/core';
import { describeDriverConformance, runRule } from '@mops/testkit';
import { describe, expect, it } from 'vitest';
import { conformance, createZsPool, plugin, ZS_POOL } from '../src/index.js';

describeDriverConformance({
  name: '@mops/zsmalloc',
  plugin,
  populate: conformance.populate,
  release: conformance.release,
});

describe('release-isolated catches a zsmalloc that frees a zspage without __ClearPageMovable', () => {
  const careless: MopsPlugin = {
    manifest: { ...plugin.manifest, name: 'zsmalloc-careless' },
    register(container, machine) {
      const pool = createZsPool(machine, { mistakes: { freeWithoutClearMovable: true } });
      container.register(ZS_POOL, { useValue: pool });
    },
  };
  const adapter = {
    name: 'zsmalloc-careless',
    plugin: careless,
    populate: conformance.populate,
    release: conformance.release,
  };

  it.each(['v6.0', 'v6.3'] as const)(
    '%s: the VM is left to call zs_page_putback for a page of a freed zspage',
    (profile) => {
      const r = runRule(adapter, profile, 'release-isolated');
      expect(r.passed).toBe(false);
      // The VM reports the pages it meets with only its isolation reference left, then the
      // rule its own finding right after the release.
      expect(r.detail).toMatch(
        /^migration: zsmalloc: the owner dropped its references to an isolated page but left it PageMovable .*migration: pfn \d+: its owner dropped its references but left the page PageMovable/,
      );
      // Past the first findings the table shows: in the full list.
      expect(r.findings.join('; ')).toMatch(
        /putback: .*zs_page_putback: get_zspage\(\) of a released page/,
      );
    },
  );

  it.each(['v4.8', 'v6.17'] as const)(
    '%s: the mistake cannot happen (v4.8 defers the free, v6.17 has no __ClearPageMovable)',
    (profile) => {
      expect(runRule(adapter, profile, 'release-isolated').detail).toBe('');
    },
  );
});
