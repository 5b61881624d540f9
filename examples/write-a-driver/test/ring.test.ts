import {
  checkInvariants,
  compactMemory,
  createMachine,
  GFP,
  installPlugin,
  PROFILE_NAMES,
} from '@mops/core';
import { describeDriverConformance } from '@mops/testkit';
import { describe, expect, it } from 'vitest';
import { conformance, plugin, rings } from '../src/index.js';

// The whole movable_ops contract, in every profile the plugin declares.
describeDriverConformance({ name: 'movable-ring', plugin, populate: conformance.populate });

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
