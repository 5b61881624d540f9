/**
 * Rules of spec §0.2 for the compaction scanners that the scenario tests do not reach: the
 * migrate scanner over a compound page smaller than the target order, and the free
 * scanner's judgement of a block by its first page.
 */
import { describe, expect, it } from 'vitest';
import {
  __GFP,
  freeCompactControl,
  GFP,
  isolateMigratepagesBlock,
  MIGRATE,
  MIGRATE_MODE,
  newCompactControl,
  PROFILE_NAMES,
  pageIsBuddy,
  suitableMigrationTarget,
} from '../../src/index.js';
import { TestDriver } from '../driver.js';
import { expectInvariants, smallMachine } from '../helpers.js';

describe.each(PROFILE_NAMES)('§0.2 compaction scanners — %s', (profile) => {
  it('a compound page below the target order: skipped whole (v4.8–v6.3) or scanned page by page (v6.17)', () => {
    const m = smallMachine('4M', { profile });
    const drv = new TestDriver(m);
    // An order-2 compound page at the start of an order-3 block, driver pages after it.
    let head = -1;
    for (;;) {
      head = m.allocPages(GFP.HIGHUSER_MOVABLE | __GFP.COMP, 2);
      if ((head & 7) === 0) break;
    }
    const movable = drv.alloc(40).filter((x) => x >= head + 4 && x < head + 8);
    expect(movable).toHaveLength(4);
    const cc = newCompactControl(m, m.mem.populatedZones[0], {
      order: 3,
      mode: MIGRATE_MODE.SYNC,
      directCompaction: false,
      migratetype: MIGRATE.MOVABLE,
    });
    m.run(() => isolateMigratepagesBlock(m, cc, head, head + 8, 0));
    // v6.17 looks at the head and each of its three tails (it may migrate a small compound
    // page); the others jump over the whole compound page and count it once.
    expect(cc.totalMigrateScanned).toBe(profile === 'v6.17' ? 8 : 5);
    expect(cc.nrMigratepages).toBe(4);
    freeCompactControl(m, cc);
    expectInvariants(m);
  });

  it('the free scanner judges a block by its first page: one heading a free buddy of pageblock order or more is no target; one whose first page is taken, or that lies inside a larger buddy it does not head, is', () => {
    const m = smallMachine('8M', { profile });
    const zone = m.mem.populatedZones[0];
    // The last pageblock that heads a free buddy of pageblock order or more.
    let last = zone.zoneEndPfn - 512;
    const headsFree = (b: number) => pageIsBuddy(m.mem, b, 9) || pageIsBuddy(m.mem, b, 10);
    while (last > zone.zoneStartPfn && !headsFree(last)) last -= 512;
    expect(headsFree(last)).toBe(true);
    const cc = newCompactControl(m, zone, {
      order: 9,
      mode: MIGRATE_MODE.SYNC_LIGHT,
      directCompaction: false,
      migratetype: MIGRATE.MOVABLE,
    });
    expect(last).toBeGreaterThanOrEqual(zone.zoneStartPfn);
    // The second pageblock of an order-10 buddy is all free, but its first page heads
    // nothing: it is a target (suitable_migration_target() looks at that page only).
    const o10 = zone.zoneStartPfn + ((1024 - (zone.zoneStartPfn % 1024)) % 1024);
    if (pageIsBuddy(m.mem, o10, 10))
      expect(suitableMigrationTarget(m.mem, cc, o10 + 512)).toBe(true);
    else throw new Error('no order-10 buddy to test');
    expect(suitableMigrationTarget(m.mem, cc, last)).toBe(false);
    // Take pages until one comes from that block: its first page is then a smaller buddy.
    let got = -1;
    for (let i = 0; i < 4096 && got < 0; i++) {
      const p = m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
      if (p < 0) break;
      if (p >= last) got = p;
    }
    expect(got).toBeGreaterThanOrEqual(last);
    expect(suitableMigrationTarget(m.mem, cc, last)).toBe(true);
    freeCompactControl(m, cc);
  });
});
