import {
  checkInvariants,
  createMachine,
  createMovableFiller,
  installPlugin,
  type MopsError,
  PROFILE_NAMES,
} from '@mops/core';
import { describeDriverConformance } from '@mops/testkit';
import { describe, expect, it } from 'vitest';
import { conformance, plugin, rings } from '../src/index.js';
import { damagedSlots, ringUnderCompaction } from '../src/run.js';

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
    const run = ringUnderCompaction(profile);
    expect(run.m.mem.vmstat.get('pgmigrate_success')).toBeGreaterThan(0);
    expect(run.ring.slots).not.toEqual(run.before);
    expect(damagedSlots(run)).toEqual([]);
    expect(checkInvariants(run.m).ok).toBe(true);
    // The contract's rules show as warnings, not in the invariants.
    expect(run.m.mem.warnings).toEqual([]);
  });
});

describe('the movable ring shares a machine only where its release allows', () => {
  it('v6.17: a second Offline-type driver (the core filler here) makes install fail with E_PLUGIN', () => {
    const m = createMachine({ memory: '16M', zones: 'normal-only', profile: 'v6.17' });
    createMovableFiller(m);
    let err: unknown;
    try {
      installPlugin(m, plugin);
    } catch (e) {
      err = e;
    }
    expect((err as MopsError).code).toBe('E_PLUGIN');
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
