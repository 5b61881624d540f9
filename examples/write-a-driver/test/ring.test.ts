import {
  checkInvariants,
  compactMemory,
  createMachine,
  createMovableFiller,
  GFP,
  installPlugin,
  type MopsError,
  PROFILE_NAMES,
} from '@mops/core';
import { describeDriverConformance } from '@mops/testkit';
import { describe, expect, it } from 'vitest';
import { conformance, plugin, rings } from '../src/index.js';

// The whole movable_ops contract, in every profile the plugin declares, with the owner
// releasing pages the VM holds isolated.
describeDriverConformance({
  name: 'movable-ring',
  plugin,
  populate: conformance.populate,
  release: conformance.release,
});

describe('the movable ring keeps its records across compaction', () => {
  it.each(PROFILE_NAMES)('%s', (profile) => {
    const m = createMachine({ memory: '16M', zones: 'normal-only', minFreeKbytes: 0, profile });
    installPlugin(m, plugin);
    const ring = rings.get(m)!;
    // One pinned page at the start of each pageblock (so no block is one free order-9 block,
    // which the free scanner would leave alone), the ring's slots at the lowest free pfns.
    const all: number[] = [];
    for (
      let p = m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
      p >= 0;
      p = m.allocPages(GFP.HIGHUSER_MOVABLE, 0)
    )
      all.push(p);
    for (const p of all) if (p % 512 !== 0) m.putPage(p);
    ring.grow(64);
    const before = [...ring.slots];
    const records = before.map((_, i) => new TextEncoder().encode(`record ${i}`));
    for (const r of records) ring.push(r);
    m.run(() => compactMemory(m));
    expect(m.mem.vmstat.get('pgmigrate_success')).toBeGreaterThan(0);
    expect(ring.slots).not.toEqual(before);
    for (const [i, r] of records.entries())
      expect(new TextDecoder().decode(ring.read(i, r.length))).toBe(`record ${i}`);
    expect(checkInvariants(m).ok).toBe(true);
  });
});

describe('the movable ring shares a machine only where its release allows', () => {
  it('v6.17: a second Offline-type driver (the core filler here) makes install fail with E_STATE', () => {
    const m = createMachine({ memory: '16M', zones: 'normal-only', profile: 'v6.17' });
    createMovableFiller(m);
    let err: unknown;
    try {
      installPlugin(m, plugin);
    } catch (e) {
      err = e;
    }
    expect((err as MopsError).code).toBe('E_STATE');
    expect((err as Error).message).toMatch(/set_movable_ops returned -16/);
  });

  it.each(['v4.8', 'v6.0', 'v6.3'] as const)(
    '%s: no page-type registry, both install',
    (profile) => {
      const m = createMachine({ memory: '16M', zones: 'normal-only', profile });
      createMovableFiller(m);
      installPlugin(m, plugin);
      expect(rings.get(m)).toBeDefined();
    },
  );
});
