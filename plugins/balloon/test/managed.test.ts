import {
  __GFP,
  checkInvariants,
  createMachine,
  GFP,
  type Machine,
  MIGRATE_MODE,
  type ProfileName,
  type Zone,
} from '@mops/core';
import { describe, expect, it } from 'vitest';
import {
  adjustManagedPageCount,
  type BalloonDesign,
  balloonInvariants,
  balloonStatsText,
  managedPages,
  VirtioBalloon,
} from '../src/index.js';
import { managedPagesAdd } from '../src/managed.js';
import { expectClean, isolate, migrate, PROFILES, run, targets } from './helpers.js';

/** A 64 MiB machine (DMA and DMA32) with a virtio balloon of two pages in DMA32. */
function twoZones(profile: ProfileName, design: BalloonDesign = 'classic', deflateOnOom = false) {
  const m = createMachine({ memory: '64M', profile, minFreeKbytes: 0 });
  const [dma, dma32] = m.mem.populatedZones;
  const base = [dma.managedPages, dma32.managedPages];
  const total = managedPages(m);
  const vb = new VirtioBalloon(m, { design, deflateOnOom });
  m.registerInvariantChecker('balloon', () => balloonInvariants(vb));
  expect(run(m, () => vb.fill(2))).toBe(2);
  const [a, b] = vb.dev.listPages();
  expect([m.mem.zoneOf(a), m.mem.zoneOf(b)]).toEqual([dma32, dma32]);
  return { m, vb, dma, dma32, base, total, a, b };
}

/** Migrates balloon page `a` into the DMA zone; returns the new page. */
function migrateToDma(m: Machine, a: number, dma: Zone): number {
  const list = m.mem.pages.lists.newList();
  expect(isolate(m, list, a)).toBe(true);
  const t = targets(GFP.KERNEL | __GFP.DMA);
  expect(migrate(m, list, MIGRATE_MODE.ASYNC, t).rc).toBe(0);
  const d = t.handed[0];
  expect(m.mem.zoneOf(d)).toBe(dma);
  return d;
}

/** Every release and design, with and without VIRTIO_BALLOON_F_DEFLATE_ON_OOM. */
const SETUPS: [ProfileName, BalloonDesign, boolean][] = [
  ...PROFILES.flatMap((p): [ProfileName, BalloonDesign, boolean][] => [
    [p, 'classic', false],
    [p, 'classic', true],
  ]),
  ['v6.17', '2026', false],
  ['v6.17', '2026', true],
];

describe.each(SETUPS)(
  'adjust_managed_page_count where the kernel calls it, %s %s, deflate-on-OOM %s',
  (profile, design, deflateOnOom) => {
    it('fill takes a managed page per balloon page, a migration across zones moves it (5.5+) or leaves it (4.8), leak gives it to the zone the page is in', () => {
      const { m, vb, dma, dma32, base, total, a } = twoZones(profile, design, deflateOnOom);
      const zones = () => [dma.managedPages - base[0], dma32.managedPages - base[1]];
      /** Expected changes, -0 read as 0. */
      const want = (...d: number[]) => d.map((x) => x || 0);
      // Without deflate-on-OOM, fill_balloon (2026: balloon_page_enqueue) adjusts by -1 a page.
      const adj = deflateOnOom ? 0 : 1;
      expect(zones()).toEqual(want(0, -2 * adj));
      expect(managedPages(m)).toBe(total - 2 * adj);
      // virtballoon_migratepage (2026: balloon_page_migrate) moves the debit since 5.5; 4.8's
      // leaves it in DMA32, a page short of its pages from now on.
      const d = migrateToDma(m, a, dma);
      const moved = profile === 'v4.8' ? 0 : adj;
      expect(zones()).toEqual(want(-moved, -2 * adj + moved));
      expect(managedPages(m)).toBe(total - 2 * adj);
      const stuck = adj - moved;
      expect(vb.managedMiscount[dma32.idx]).toBe(stuck);
      expect(vb.managedMiscount[dma.idx]).toBe(-stuck || 0);
      expect(balloonInvariants(vb)).toEqual([]);
      // release_pages_balloon (2026: balloon_page_list_dequeue) credits the page's zone.
      expect(run(m, () => vb.leak(2))).toBe(2);
      expect(m.mem.pages.refcount[d]).toBe(0);
      expect(zones()).toEqual(want(stuck, -stuck));
      expect(managedPages(m)).toBe(total);
      expect(balloonInvariants(vb)).toEqual([]);
      expectClean(m);
      // Nothing was left locked: the balloon fills and deflates again.
      expect(run(m, () => vb.fill(2))).toBe(2);
      expect(run(m, () => vb.leak(2))).toBe(2);
    });
  },
);

describe("v4.8's managed-page miscount, a known kernel state", () => {
  it('the checker accepts the debit 4.8 leaves in the old zone, names it, and it outlives the deflation', () => {
    const { m, vb, dma, dma32, base, a } = twoZones('v4.8');
    expect(balloonStatsText(m, vb)).toMatch(/^managed_miscount\s+0$/m);
    migrateToDma(m, a, dma);
    // DMA32 keeps the page's debit; DMA has the page, and its count never lost one.
    expect([dma.managedPages, dma32.managedPages]).toEqual([base[0], base[1] - 2]);
    expect(vb.managedMiscount[dma32.idx]).toBe(1);
    expect(vb.managedMiscount[dma.idx]).toBe(-1);
    expect(balloonStatsText(m, vb)).toMatch(/^managed_miscount\s+DMA:-1 DMA32:\+1$/m);
    expect(balloonInvariants(vb)).toEqual([]);
    expectClean(m);
    // Deflating credits DMA, above its present pages; DMA32 stays a page short.
    run(m, () => vb.leak(2));
    expect([dma.managedPages, dma32.managedPages]).toEqual([base[0] + 1, base[1] - 1]);
    expect(dma.managedPages).toBe(dma.presentPages + 1);
    expect(balloonStatsText(m, vb)).toMatch(/^managed_miscount\s+DMA:-1 DMA32:\+1$/m);
    expect(balloonInvariants(vb)).toEqual([]);
    // DMA32 is all free again: one free page more than its managed count, as in 4.8.
    expect(dma32.nrFreePages).toBe(dma32.managedPages + 1);
    expectClean(m);
  });

  it('any other managed count per zone the balloon keeps is a fault the checker names, in every profile', () => {
    for (const profile of PROFILES) {
      const { m, vb, dma, dma32, a } = twoZones(profile);
      const d = migrateToDma(m, a, dma);
      const b = vb.dev.listPages().find((p) => p !== d) as number;
      expect(m.mem.zoneOf(b)).toBe(dma32);
      expect(balloonInvariants(vb)).toEqual([]);
      // The balloon's own debit put back in the wrong zone: the total is right, DMA and
      // DMA32 are not.
      managedPagesAdd(m.mem, d, 1, vb.dev.managedTaken);
      managedPagesAdd(m.mem, b, -1, vb.dev.managedTaken);
      const known = profile === 'v4.8';
      expect(balloonInvariants(vb)).toEqual([
        `zone DMA: the balloon took ${known ? -1 : 0} managed pages, for 1 balloon pages in it${known ? " - 1 (v4.8's known miscount)" : ''}`,
        `zone DMA32: the balloon took ${known ? 3 : 2} managed pages, for 1 balloon pages in it${known ? " + 1 (v4.8's known miscount)" : ''}`,
      ]);
      expect(checkInvariants(m).ok).toBe(false);
    }
  });

  it('another caller of adjust_managed_page_count, or a second balloon, is no fault of either balloon', () => {
    for (const profile of PROFILES) {
      const { m, vb, dma32 } = twoZones(profile);
      // A page some other driver took and keeps out of the managed count.
      const kept = m.allocPages(GFP.KERNEL, 0);
      expect(m.mem.zoneOf(kept)).toBe(dma32);
      adjustManagedPageCount(m.mem, kept, -1);
      const other = new VirtioBalloon(m, { name: 'b2' });
      m.registerInvariantChecker('balloon b2', () => balloonInvariants(other));
      expect(run(m, () => other.fill(3))).toBe(3);
      expect(dma32.managedPages).toBeLessThan(dma32.presentPages - 5);
      expect(balloonInvariants(vb)).toEqual([]);
      expect(balloonInvariants(other)).toEqual([]);
      if (vb.dev.rules.nrBalloonPages) expect(m.mem.vmstat.get('nr_balloon_pages')).toBe(5);
      expectClean(m);
    }
  });
});
