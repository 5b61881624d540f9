/**
 * The ring under compaction, as `pnpm start` runs it and the tests check it.
 * @module
 */

import {
  compactMemory,
  createMachine,
  GFP,
  installPlugin,
  type Machine,
  type ProfileName,
} from '@mops/core';
import { type MovableRing, plugin, rings } from './index.js';

/** What {@link ringUnderCompaction} did. */
export interface RingRun {
  /** The machine. */
  readonly m: Machine;
  /** The ring. */
  readonly ring: MovableRing;
  /** The slots' pfns before compaction. */
  readonly before: readonly number[];
  /** The record written to each slot. */
  readonly records: readonly string[];
}

/**
 * A 16 MiB machine with one pinned page at the start of each pageblock (so no block is one
 * free order-9 block, which the free scanner would leave alone) and a ring of `slots` slots
 * at the lowest free pfns, a record in each; then compact_memory.
 */
export function ringUnderCompaction(profile: ProfileName, slots = 64): RingRun {
  const m = createMachine({ memory: '16M', zones: 'normal-only', minFreeKbytes: 0, profile });
  installPlugin(m, plugin);
  const ring = rings.get(m);
  if (ring === undefined) throw new Error('movable-ring did not register');
  const alloc = () => m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
  const all: number[] = [];
  for (let p = alloc(); p >= 0; p = alloc()) all.push(p);
  for (const p of all) if (p % 512 !== 0) m.putPage(p);
  ring.grow(slots);
  const records = ring.slots.map((_, i) => `record ${i}`);
  const text = new TextEncoder();
  for (const r of records) ring.push(text.encode(r));
  const before = [...ring.slots];
  m.run(() => compactMemory(m));
  return { m, ring, before, records };
}

/** The slots whose record no longer reads back as written. */
export function damagedSlots(run: RingRun): number[] {
  const dec = new TextDecoder();
  return run.records.flatMap((r, i) => (dec.decode(run.ring.read(i, r.length)) === r ? [] : [i]));
}
