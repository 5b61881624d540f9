import {
  checkInvariants,
  createMachine,
  type Machine,
  type MachineConfig,
  type Zone,
} from '../src/index.js';

/** A small machine with one Normal zone and no watermarks in the way. */
export function smallMachine(memory = '4M', extra: Partial<MachineConfig> = {}): Machine {
  return createMachine({ memory, zones: 'normal-only', minFreeKbytes: 0, ...extra });
}

/** The Normal zone (or the highest populated zone). */
export function topZone(m: Machine): Zone {
  return m.mem.populatedZones[m.mem.populatedZones.length - 1];
}

/** nr_free per order of a zone, as an array. */
export function nrFree(z: Zone): number[] {
  return Array.from(z.nrFree);
}

/** Asserts the invariant checker passes, printing the violations otherwise. */
export function expectInvariants(m: Machine): void {
  const r = checkInvariants(m);
  if (!r.ok) throw new Error(`invariants violated:\n${r.violations.join('\n')}`);
}
