import { describe, expect, it } from 'vitest';
import {
  Clock,
  checkInvariants,
  container,
  createMachine,
  inject,
  injectable,
  MACHINE_CONFIG,
  Machine,
  Memory,
  MopsError,
  mixedChurn,
  PROFILES,
  type ResolvedMachineConfig,
  Scheduler,
  TraceBus,
  ZONE,
} from '../src/index.js';

function codeOf(f: () => unknown): { code?: string; field?: string; message: string } {
  try {
    f();
  } catch (e) {
    if (e instanceof MopsError) return { code: e.code, field: e.field, message: e.message };
    throw e;
  }
  throw new Error('did not throw');
}

describe('createMachine config validation', () => {
  it.each([
    [0, 'memory'],
    [-4096, 'memory'],
    ['3M', 'memory'],
    ['65G', 'memory'],
    ['1M', 'memory'],
    ['lots', 'memory'],
  ])('memory %s → MopsError naming the field and the range', (memory, field) => {
    const e = codeOf(() => createMachine({ memory }));
    expect(e.code).toBe('E_CONFIG');
    expect(e.field).toBe(field);
    expect(e.message).toMatch(/memory/);
  });

  it('a misspelt option is E_CONFIG naming it, not a silent default', () => {
    const e = codeOf(() => createMachine({ memory: '64M', profle: 'v6.17' } as never));
    expect(e.code).toBe('E_CONFIG');
    expect(e.field).toBe('profle');
    expect(e.message).toBe(
      "unknown option 'profle'; the options are memory, profile, seed, contents, zones, minFreeKbytes",
    );
  });

  it('names the allowed range for sizes out of range', () => {
    expect(codeOf(() => createMachine({ memory: '128G' })).message).toContain('2 MiB to 64 GiB');
  });

  it('rejects an unknown zone layout, a non-integer seed and an unknown profile', () => {
    expect(codeOf(() => createMachine({ memory: '4M', zones: 'numa' as never })).field).toBe(
      'zones',
    );
    expect(codeOf(() => createMachine({ memory: '4M', seed: 1.5 })).field).toBe('seed');
    expect(codeOf(() => createMachine({ memory: '4M', contents: 'no' as never })).field).toBe(
      'contents',
    );
  });

  it('takes a seed the PRNG keeps whole: a 32-bit signed integer, nothing wider', () => {
    for (const seed of [2 ** 31, 2 ** 32 + 1, -(2 ** 31) - 1])
      expect(codeOf(() => createMachine({ memory: '4M', seed }))).toMatchObject({
        code: 'E_CONFIG',
        field: 'seed',
        message: expect.stringContaining('-2147483648 to 2147483647'),
      });
    for (const seed of [2 ** 31 - 1, -(2 ** 31)])
      expect(createMachine({ memory: '4M', seed }).config.seed).toBe(seed);
    expect(
      codeOf(() => createMachine({ memory: '4M', profile: 'v5.0' as never })).message,
    ).toContain('v4.8, v6.0, v6.3, v6.17');
  });

  it.each([
    [
      'a fractional index',
      [{ idx: 1.5, startPfn: 0, spanned: 100, present: 100 }],
      /idx must be a non-negative integer, got 1.5/,
    ],
    ['a null span', [null], /span 0 must be \{ idx, startPfn, spanned, present \}, got null/],
    [
      'negative present',
      [{ idx: 2, startPfn: 0, spanned: 100, present: -5 }],
      /present must be a non-negative integer, got -5/,
    ],
    ['a missing field', [{ idx: 2 }], /startPfn must be a non-negative integer, got undefined/],
    ['a NaN start', [{ idx: 2, startPfn: Number.NaN, spanned: 100, present: 100 }], /got NaN/],
    ['a fractional start', [{ idx: 2, startPfn: 0.5, spanned: 100, present: 100 }], /got 0.5/],
    ['no span', [], /no zone has any page present/],
    [
      'a zone twice',
      [
        { idx: 2, startPfn: 0, spanned: 100, present: 100 },
        { idx: 2, startPfn: 100, spanned: 100, present: 100 },
      ],
      /zone Normal comes after zone Normal/,
    ],
    [
      'zones out of order',
      [
        { idx: 2, startPfn: 0, spanned: 100, present: 100 },
        { idx: 1, startPfn: 100, spanned: 100, present: 100 },
      ],
      /zone DMA32 comes after zone Normal/,
    ],
    [
      'more present than spanned',
      [{ idx: 2, startPfn: 0, spanned: 100, present: 101 }],
      /more pages present than spanned/,
    ],
  ])('explicit zone spans with %s are E_CONFIG naming zones', (_what, zones, message) => {
    const e = codeOf(() => createMachine({ memory: '64M', zones: zones as never }));
    expect(e).toMatchObject({ code: 'E_CONFIG', field: 'zones' });
    expect(e.message).toMatch(message);
  });

  it('accepts explicit zone spans with holes and an unaligned start', () => {
    const m = createMachine({
      memory: '64M',
      zones: [
        { idx: ZONE.DMA, startPfn: 1, spanned: 4095, present: 4000 },
        { idx: ZONE.NORMAL, startPfn: 4096, spanned: 12288, present: 12288 },
      ],
    });
    expect(m.mem.populatedZones.map((z) => z.idx)).toEqual([ZONE.DMA, ZONE.NORMAL]);
    expect(m.allocPages(0, 0)).toBeGreaterThanOrEqual(0);
    expect(checkInvariants(m).ok).toBe(true);
  });

  it('accepts every multiple of a pageblock from 2 MiB to 64 GiB', () => {
    expect(createMachine({ memory: '2M' }).nrPages).toBe(512);
    expect(createMachine({ memory: 6 * 1024 * 1024 }).nrPages).toBe(1536);
    const big = createMachine({ memory: '64G', contents: false });
    expect(big.nrPages).toBe(16 * 1024 * 1024);
  });
});

describe('vm.min_free_kbytes', () => {
  it('writing machine.minFreeKbytes recomputes the watermarks, as the sysctl does', () => {
    const m = createMachine({ memory: '256M', zones: 'normal-only' });
    const z = m.mem.node.zones[ZONE.NORMAL];
    const before = [...z.watermark];
    m.minFreeKbytes = 4 * m.minFreeKbytes;
    expect(z.watermark[0]).toBeGreaterThan(3 * before[0]);
    m.minFreeKbytes = 0;
    expect(z.watermark[0]).toBe(0);
    expect(m.minFreeKbytes).toBe(0);
  });

  it.each([-1, 1.5, 2 ** 31])('%s is a MopsError and changes nothing', (bad) => {
    const m = createMachine({ memory: '64M' });
    const mfk = m.minFreeKbytes;
    const wm = m.mem.node.zones.map((z) => [...z.watermark]);
    const e = codeOf(() => {
      m.minFreeKbytes = bad;
    });
    expect(e.code).toBe('E_RANGE');
    expect(e.message).toContain('0..2147483647');
    expect(m.minFreeKbytes).toBe(mfk);
    expect(m.mem.node.zones.map((z) => [...z.watermark])).toEqual(wm);
    expect(checkInvariants(m).violations).toEqual([]);
  });
});

describe('the machine model', () => {
  it('lays out x86-64 zones: DMA from pfn 1 to 16 MiB, DMA32 to 4 GiB, Normal above', () => {
    const m = createMachine({ memory: '8G', contents: false });
    const z = m.mem.node.zones;
    expect([z[ZONE.DMA].zoneStartPfn, z[ZONE.DMA].spannedPages]).toEqual([1, 4095]);
    expect([z[ZONE.DMA32].zoneStartPfn, z[ZONE.DMA32].spannedPages]).toEqual([
      4096,
      (1 << 20) - 4096,
    ]);
    expect([z[ZONE.NORMAL].zoneStartPfn, z[ZONE.NORMAL].spannedPages]).toEqual([1 << 20, 1 << 20]);
    expect(z[ZONE.MOVABLE].populated).toBe(false);
    // pfn 0 is firmware-reserved: allocated, PG_reserved, never freed.
    expect(m.mem.pages.refcount[0]).toBe(1);
    expect(checkInvariants(m).ok).toBe(true);
  });

  it('has page contents by default up to 1 GiB, metadata only above', () => {
    expect(createMachine({ memory: '64M' }).mem.pages.contents?.length).toBe(64 * 1024 * 1024);
    expect(createMachine({ memory: '2G' }).mem.pages.contents).toBeUndefined();
  });

  it('spends 32 bytes of metadata per page', () => {
    expect(createMachine({ memory: '64M', contents: false }).mem.pages.metadataBytesPerPage()).toBe(
      32,
    );
  });

  it('lays the metadata fields of a large machine out in different L1 cache sets', () => {
    // A 64 MiB machine: each field is 64 KiB, so end to end they would all start in set 0.
    const p = createMachine({ memory: '64M', contents: false }).mem.pages;
    const fields = [
      p.flags,
      p.refcount,
      p.type,
      p.mapping,
      p.priv,
      p.lruNext,
      p.lruPrev,
      p.compound,
    ];
    const sets = fields.map((f) => (f.byteOffset >> 6) & 63);
    expect(new Set(sets).size).toBe(8);
    for (const f of fields) expect(f.buffer).toBe(p.block.buffer);
    expect(p.block.byteLength).toBeGreaterThanOrEqual(8 * 4 * p.nr);
    // The smallest machines keep the fields end to end: the block fits in an L1 cache.
    const small = createMachine({ memory: '2M', contents: false }).mem.pages;
    expect(small.block.byteLength).toBe(32 * small.nr);
  });

  it('gives only populated zones free lists of their own; the empty zones share one', () => {
    const m = createMachine({ memory: '2M', zones: 'normal-only' });
    const zones = m.mem.node.zones;
    const normal = zones[ZONE.NORMAL];
    const empty = zones.filter((z) => !z.populated);
    expect(empty.length).toBe(zones.length - 1);
    const shared = empty[0].freeList[0];
    for (const z of empty) for (const id of z.freeList) expect(id).toBe(shared);
    const own = new Set(normal.freeList);
    expect(own.size).toBe(normal.freeList.length);
    expect(own.has(shared)).toBe(false);
    expect(m.mem.pages.lists.first(shared)).toBe(-1);
    expect(checkInvariants(m).ok).toBe(true);
  });

  it('is deterministic: the same seed gives the same state, another seed another', () => {
    const run = (seed: number) => {
      const m = createMachine({ memory: '64M', seed });
      mixedChurn(m);
      return Buffer.from(m.mem.pages.refcount.buffer).toString('base64');
    };
    expect(run(3)).toBe(run(3));
    expect(run(3)).not.toBe(run(4));
  });

  it('each machine has its own child container; the root stays clean', () => {
    const a = createMachine({ memory: '4M' });
    const b = createMachine({ memory: '4M', profile: 'v6.17' });
    expect(a.container.resolve(Memory)).toBe(a.mem);
    expect(b.container.resolve(Memory)).toBe(b.mem);
    expect(a.container.resolve(Scheduler)).not.toBe(b.container.resolve(Scheduler));
    expect(a.container.resolve<ResolvedMachineConfig>(MACHINE_CONFIG).profile).toBe(
      PROFILES['v6.3'],
    );
    expect(b.container.resolve(Machine)).toBe(b);
    expect(container.isRegistered(Memory)).toBe(false);
  });

  it('profiles and resolved configs are constants: writing to one throws', () => {
    const m = createMachine({
      memory: '4M',
      zones: [{ idx: 2, startPfn: 0, spanned: 1024, present: 1024 }],
    });
    const prof = PROFILES['v6.3'] as { name: string; compaction: { fastSearch: boolean } };
    expect(() => {
      prof.compaction.fastSearch = false;
    }).toThrow(TypeError);
    expect(() => {
      (m.config as { seed: number }).seed = 2;
    }).toThrow(TypeError);
    expect(() => {
      (m.config.spans[0] as { spanned: number }).spanned = 1;
    }).toThrow(TypeError);
    expect(PROFILES['v6.3'].compaction.fastSearch).toBe(true);
  });

  it('injects machine services by class and by token (decorator metadata is emitted)', () => {
    @injectable()
    class Probe {
      constructor(
        readonly mem: Memory,
        readonly clock: Clock,
        readonly trace: TraceBus,
        @inject(MACHINE_CONFIG) readonly config: ResolvedMachineConfig,
      ) {}
    }
    expect(Reflect.getMetadata('design:paramtypes', Probe)?.slice(0, 3)).toEqual([
      Memory,
      Clock,
      TraceBus,
    ]);
    const m = createMachine({ memory: '4M' });
    const p = m.container.resolve(Probe);
    expect(p.mem).toBe(m.mem);
    expect(p.clock).toBe(m.clock);
    expect(p.config.nrPages).toBe(1024);
  });

  it('a throwing trace listener does not break the VM or other listeners', () => {
    const m = createMachine({ memory: '4M' });
    const seen: number[] = [];
    m.trace.on('mm_page_free', () => {
      throw new Error('listener bug');
    });
    m.trace.on('mm_page_free', (e) => seen.push(e.pfn));
    expect(m.trace.fire('mm_page_free', { pfn: 7, order: 0 })).toBe(true);
    expect(seen).toEqual([7]);
    expect(m.trace.listenerErrors).toHaveLength(1);
  });
});
