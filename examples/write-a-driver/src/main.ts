/**
 * Runs the movable ring under compaction: 64 slots with a record each, scattered through a
 * fragmented 16 MiB machine, then compact_memory. Prints where the slots went and checks
 * that every record survived the moves.
 */
import {
  checkInvariants,
  compactMemory,
  createMachine,
  GFP,
  installPlugin,
  type ProfileName,
} from '@mops/core';
import { plugin, rings } from './index.js';

// A profile name may be given: pnpm start v6.17 (createMachine rejects an unknown one).
const profile = (process.argv[2] ?? 'v6.3') as ProfileName;
const m = createMachine({ memory: '16M', zones: 'normal-only', minFreeKbytes: 0, profile });
installPlugin(m, plugin);
const ring = rings.get(m);
if (ring === undefined) throw new Error('movable-ring did not register');

// Pin the first page of every pageblock, so compaction has somewhere to work.
const all: number[] = [];
for (
  let p = m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
  p >= 0;
  p = m.allocPages(GFP.HIGHUSER_MOVABLE, 0)
)
  all.push(p);
for (const p of all) if (p % 512 !== 0) m.putPage(p);

ring.grow(64);
const text = new TextEncoder();
for (let i = 0; i < 64; i++) ring.push(text.encode(`record ${i}`));
const before = [...ring.slots];
m.run(() => compactMemory(m));

const moved = ring.slots.filter((pfn, i) => pfn !== before[i]).length;
const dec = new TextDecoder();
const intact = ring.slots.every(
  (_, i) => dec.decode(ring.read(i, `record ${i}`.length)) === `record ${i}`,
);
console.log(`profile ${m.profile.name}: ${moved} of ${before.length} slots moved by compaction`);
const first = ring.slots.findIndex((pfn, i) => pfn !== before[i]);
if (first >= 0) console.log(`e.g. slot ${first}: pfn ${before[first]} -> ${ring.slots[first]}`);
console.log(
  `pgmigrate_success ${m.mem.vmstat.get('pgmigrate_success')}, records intact: ${intact}`,
);
console.log(`invariants: ${checkInvariants(m).ok ? 'ok' : 'VIOLATED'}`);
if (!intact) process.exitCode = 1;
