/**
 * Runs the movable ring under compaction ({@link ringUnderCompaction}): prints where the
 * slots went and checks that every record survived the moves, that the machine is
 * consistent, and that the VM warned of nothing (a broken rule of the contract shows as a
 * warning, a protocol violation, not in the invariants).
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
const ok = checkInvariants(m).ok;
console.log(`invariants: ${ok ? 'ok' : 'VIOLATED'}`);
const { warnings } = m.mem;
console.log(`warnings: ${warnings.length}`);
if (warnings.length !== 0) console.log(`  ${warnings[0].kind}: ${warnings[0].text.split('\n')[0]}`);
if (damaged.length !== 0 || !ok || warnings.length !== 0) process.exitCode = 1;
