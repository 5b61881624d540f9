import { describe, expect, it } from 'vitest';
import { GFP, createMachine } from '../../src/index.js';

describe('machine smoke', () => {
  it('builds a 256 MiB machine and allocates', () => {
    const m = createMachine({ memory: '256M' });
    const zones = m.mem.populatedZones.map((z) => [z.name, z.zoneStartPfn, z.spannedPages, z.nrFreePages, z.watermark.join('/')]);
    console.log(zones, m.minFreeKbytes);
    const before = m.mem.populatedZones.map((z) => z.nrFreePages);
    const pfn = m.allocPages(GFP.KERNEL, 0);
    expect(pfn).toBeGreaterThan(0);
    m.putPage(pfn);
    expect(m.mem.populatedZones.map((z) => z.nrFreePages)).toEqual(before);
  });
});
