/**
 * Runs the movable ring under compaction ({@link ringUnderCompaction}): prints where the
 * slots went and checks that every record survived the moves.
 */
import { checkInvariants, type ProfileName } from '@mops/core';
import { damagedSlots, ringUnderCompaction } from './run.js';

// A profile name may be given: pnpm start v6.17 (createMachine rejects an unknown one).
const run = ringUnderCompaction((process.argv[2] ?? 'v6.3') as ProfileName);
const { m, ring, before } = run;
const moved = ring.slots.filter((pfn, i) => pfn !== before[i]).length;
const damaged = damagedSlots(run);
console.log(`profile ${m.profile.name}: ${moved} of ${before.length} slots moved by compaction`);
const first = ring.slots.findIndex((pfn, i) => pfn !== before[i]);
if (first >= 0) console.log(`e.g. slot ${first}: pfn ${before[first]} -> ${ring.slots[first]}`);
console.log(
  `pgmigrate_success ${m.mem.vmstat.get('pgmigrate_success')}, records intact: ${damaged.length === 0}`,
);
console.log(`invariants: ${checkInvariants(m).ok ? 'ok' : 'VIOLATED'}`);
if (damaged.length !== 0) process.exitCode = 1;
