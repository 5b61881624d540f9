import { describe, expect, it } from 'vitest';
import { compactMemory } from '../../src/compaction/index.js';
import { createMachine, type Machine } from '../../src/machine.js';
import { ZONE } from '../../src/memory/constants.js';
import {
  buddyinfo,
  machineFromProc,
  pagetypeinfo,
  vmstat,
  zoneinfo,
} from '../../src/proc/index.js';
import { PROFILE_NAMES, PROFILES, type ProfileName } from '../../src/profile.js';
import { VMSTAT_NAMES } from '../../src/vmstat/releases.js';
import { scannersMetBefore } from '../compaction/layout.js';
import { TestDriver } from '../driver.js';
import { smallMachine } from '../helpers.js';
import { fixture } from './helpers.js';

const fresh = (profile: ProfileName): Machine =>
  createMachine({ memory: '8G', contents: false, profile });

/** The zone headers of a zoneinfo text. */
const heads = (text: string) => text.split('\n').filter((l) => l.startsWith('Node '));

/** The lines of the block of zone `name` (header included), without the trailing newline. */
function block(text: string, name: string): string[] {
  const lines = text.split('\n');
  const at = lines.indexOf(`Node 0, zone ${name.padStart(8)}`);
  expect(at, name).toBeGreaterThanOrEqual(0);
  let end = lines.findIndex((l, i) => i > at && l.startsWith('Node '));
  if (end < 0) end = lines.length - 1;
  return lines.slice(at, end);
}

/** A line's shape: its numbers replaced by N. */
const shape = (l: string) => l.replace(/\d+/g, 'N');
/** A stat item line, `%-12s %lu` indented by 6. */
const item = (name: string) => `      ${name.padEnd(12)} N`;

/** The shape of a populated zone block that is not the first (no per-node stats). */
function expected(profile: ProfileName): string[] {
  const t = VMSTAT_NAMES[profile];
  const stats = [...t.zone, ...t.numa].map(item);
  const cpu =
    profile === 'v6.17'
      ? [
          '    cpu: N',
          '              count:    N',
          '              high:     N',
          '              batch:    N',
          '              high_min: N',
          '              high_max: N',
          '  vm stats threshold: N',
        ]
      : [
          '    cpu: N',
          '              count: N',
          '              high:  N',
          '              batch: N',
          '  vm stats threshold: N',
        ];
  const tail = ['  node_unreclaimable:  N', '  start_pfn:           N'];
  const protection = '        protection: (N, N, N, N, N)';
  if (profile === 'v4.8')
    return [
      'Node N, zone    DMAN',
      '  pages free     N',
      '        min      N',
      '        low      N',
      '        high     N',
      '   node_scanned  N',
      '        spanned  N',
      '        present  N',
      '        managed  N',
      ...stats,
      protection,
      '  pagesets',
      ...cpu,
      ...cpu,
      ...tail,
      '  node_inactive_ratio: N',
    ];
  return [
    'Node N, zone    DMAN',
    '  pages free     N',
    '        boost    N',
    '        min      N',
    '        low      N',
    '        high     N',
    ...(profile === 'v6.17' ? ['        promo    N'] : []),
    '        spanned  N',
    '        present  N',
    '        managed  N',
    '        cma      N',
    protection,
    ...stats,
    '  pagesets',
    ...cpu,
    ...cpu,
    ...tail,
  ];
}

describe('/proc/zoneinfo layout by release', () => {
  it.each(PROFILE_NAMES)('%s: a zone block has the release’s lines in its order', (profile) => {
    expect(PROFILES[profile].vmstatNames).toBe(profile);
    const text = zoneinfo(fresh(profile));
    expect(block(text, 'DMA32').map(shape)).toEqual(expected(profile));
  });

  it.each(PROFILE_NAMES)('%s: the per-node stats are the release’s node items', (profile) => {
    const dma = block(zoneinfo(fresh(profile)), 'DMA');
    expect(dma[1]).toBe('  per-node stats');
    const names = VMSTAT_NAMES[profile].node;
    expect(dma.slice(2, 2 + names.length).map(shape)).toEqual(names.map(item));
    expect(dma[2 + names.length]).toMatch(/^ {2}pages free {5}\d+$/);
  });

  it('switching the profile changes the layout', () => {
    const texts = PROFILE_NAMES.map((p) => shape(zoneinfo(fresh(p))));
    expect(new Set(texts).size).toBe(PROFILE_NAMES.length);
    // 6.0 and 6.3 share the zone block; their node items differ (6.3 added
    // nr_sec_page_table_pages and pgpromote_candidate).
    const dma32 = (p: ProfileName) => block(zoneinfo(fresh(p)), 'DMA32').map(shape);
    expect(dma32('v6.0')).toEqual(dma32('v6.3'));
    expect(dma32('v6.3')).not.toEqual(dma32('v6.17'));
    expect(dma32('v4.8')).not.toEqual(dma32('v6.0'));
    expect(zoneinfo(fresh('v6.0'))).not.toContain('nr_sec_page_table_pages');
    expect(zoneinfo(fresh('v6.3'))).toContain('\n      nr_sec_page_table_pages 0\n');
  });

  it('v4.8 prints only the populated zones; 6.x prints every zone, unpopulated ones short', () => {
    expect(heads(zoneinfo(fresh('v4.8')))).toEqual([
      'Node 0, zone      DMA',
      'Node 0, zone    DMA32',
      'Node 0, zone   Normal',
    ]);
    for (const p of ['v6.0', 'v6.3', 'v6.17'] as const) {
      const text = zoneinfo(fresh(p));
      expect(heads(text)).toHaveLength(5);
      const movable = block(text, 'Movable');
      expect(movable.at(-1)).toMatch(/^ {8}protection: \(\d+(, \d+){4}\)$/);
      expect(movable.join('\n')).not.toContain('pagesets');
    }
  });

  it('v6.17 is the 6.18 sample less the two per-node items 6.18 added', () => {
    const sample = fixture('zoneinfo')
      .split('\n')
      .filter((l) => !/^ {6}(pgpromote_candidate_nrl|nr_kernel_file_pages) /.test(l));
    expect(zoneinfo(fresh('v6.17')).split('\n').map(shape)).toEqual(sample.map(shape));
  });

  it('pcp high and batch before 6.7: 6 × batch (4.8, 512 KiB cap), the low watermark split (6.x)', () => {
    const high = (p: ProfileName) =>
      block(zoneinfo(fresh(p)), 'DMA32')
        .filter((l) => /^ {14}(high|batch):/.test(l))
        .slice(0, 2)
        .map((l) => Number(l.split(':')[1]));
    const [h48, b48] = high('v4.8');
    expect(h48).toBe(6 * b48);
    expect(b48).toBe(31);
    const m = fresh('v6.3');
    const dma32 = m.mem.node.zones[ZONE.DMA32];
    const [h63, b63] = high('v6.3');
    expect(b63).toBe(63);
    expect(h63).toBe(Math.max(Math.floor(dma32.watermark[1] / 2), 4 * b63));
  });

  it('4.8: a zone whose batch works out to 0 (DMA) shows high 0 and batch 1; 6.x raises batch first', () => {
    const pcp = (p: ProfileName) =>
      block(zoneinfo(fresh(p)), 'DMA')
        .filter((l) => /^ {14}(high|batch):/.test(l))
        .slice(0, 2)
        .map((l) => Number(l.split(':')[1]));
    expect(pcp('v4.8')).toEqual([0, 1]);
    const [h63, b63] = pcp('v6.3');
    expect(b63).toBe(1);
    expect(h63).toBeGreaterThanOrEqual(4);
  });

  it('v4.8: node counters printed per zone add up to the /proc/vmstat value', () => {
    const m = fresh('v4.8');
    m.mem.vmstat.modNode('nr_slab_reclaimable', 11);
    m.mem.vmstat.modNode('nr_kernel_stack', 5);
    const text = zoneinfo(m);
    const sum = (name: string) =>
      [...text.matchAll(new RegExp(`\\n {6}${name} +(\\d+)`, 'g'))].reduce(
        (a, r) => a + Number(r[1]),
        0,
      );
    expect(sum('nr_slab_reclaimable')).toBe(11);
    expect(sum('nr_kernel_stack')).toBe(5);
    expect(vmstat(m)).toContain('\nnr_slab_reclaimable 11\n');
    // Shown whole in the highest populated zone.
    expect(block(text, 'Normal')).toContain('      nr_slab_reclaimable 11');
  });
});

describe('machineFromProc imports every release’s zoneinfo', () => {
  it.each(PROFILE_NAMES)('%s: the output imports and round-trips', (profile) => {
    const m = fresh(profile);
    m.mem.vmstat.modNode('nr_slab_reclaimable', 11);
    m.mem.vmstat.modNode('workingset_refault_file', 7);
    m.mem.node.zones[ZONE.NORMAL].stat[2] = 3; // nr_zone_inactive_anon
    const texts = {
      buddyinfo: buddyinfo(m),
      pagetypeinfo: pagetypeinfo(m),
      zoneinfo: zoneinfo(m),
    };
    const copy = machineFromProc(texts, { profile });
    expect(zoneinfo(copy)).toBe(texts.zoneinfo);
    expect(copy.mem.vmstat.get('nr_slab_reclaimable')).toBe(11);
    expect(copy.mem.vmstat.get('workingset_refault_file')).toBe(7);
  });
});

describe('node_unreclaimable by release', () => {
  /** The node_unreclaimable values of a zoneinfo text, one per zone block. */
  const unreclaimable = (text: string) =>
    [...text.matchAll(/^ {2}node_unreclaimable: {2}(\d+)$/gm)].map((x) => Number(x[1]));

  it.each(PROFILE_NAMES)(
    '%s: on a machine at rest, and while compaction holds pages isolated',
    (profile) => {
      const m = smallMachine('8M', { profile });
      const drv = new TestDriver(m);
      const pages = drv.alloc(2048);
      for (const p of pages) if (p % 2) m.run(() => drv.freeOwned(p));
      scannersMetBefore(m);
      const during: number[][] = [];
      drv.migrateRc = () => {
        if (during.length === 0) during.push(unreclaimable(zoneinfo(m)));
        return 0;
      };
      // 4.8: !pgdat_reclaimable(): no page scanned is below 6 × the file LRU pages only while
      // isolated pages count (nr_isolated_file); 6.x: kswapd_failures, never reached.
      const resting = profile === 'v4.8' ? 1 : 0;
      const zones = unreclaimable(zoneinfo(m)).length;
      expect(unreclaimable(zoneinfo(m))).toEqual(Array(zones).fill(resting));
      m.run(() => compactMemory(m));
      expect(during).toEqual([Array(zones).fill(0)]);
      expect(unreclaimable(zoneinfo(m))).toEqual(Array(zones).fill(resting));
    },
  );
});
