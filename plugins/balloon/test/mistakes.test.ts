import { GFP, hexPfn, installPlugin, type KernelGen, type Machine, type Task } from '@mops/core';
import { isolateThenMigrate } from '@mops/explorer';
import { describe, expect, it } from 'vitest';
import {
  BalloonDevice,
  balloonInvariants,
  createBalloonPlugin,
  VirtioBalloon,
} from '../src/index.js';
import { expectClean, expectRefused, machine, run } from './helpers.js';

/** Free pages per zone, to see that a refusal allocated nothing. */
const free = (m: Machine): number[] => m.mem.populatedZones.map((z) => z.nrFreePages);

describe('balloon mistakes: each applies to one design', () => {
  it.each([
    [
      'v6.3',
      'classic',
      { perDeviceLockWithoutPageLock: true },
      /applies to the 2026 balloon design, not the classic one/,
    ],
    [
      'v6.17',
      '2026',
      { dequeueWaitsForPageLock: true },
      /applies to the classic balloon design, not the 2026 one/,
    ],
    ['v6.17', '2026', { perDeviceLockWithoutPageLock: 1 }, /must be a boolean, got 1/],
    // v6.17's classic dequeue has no PG_isolated re-check to leave out and only finalizes.
    [
      'v6.17',
      'classic',
      { dequeueWaitsForPageLock: true },
      /^mistakes\.dequeueWaitsForPageLock reproduces the dequeue of v4\.8, v6\.0 and v6\.3 .*not that of profile v6\.17/,
    ],
  ] as const)(
    '%s %s with %o is E_USAGE before anything changes',
    (profile, design, mistakes, text) => {
      for (const make of [
        (m: Machine) => new BalloonDevice(m, { design, mistakes: mistakes as never }),
        (m: Machine) => new VirtioBalloon(m, { design, mistakes: mistakes as never }),
        (m: Machine) =>
          installPlugin(m, createBalloonPlugin({ design, mistakes: mistakes as never })),
      ]) {
        const m = machine(profile);
        expectRefused(
          () => make(m),
          'E_USAGE',
          'mistakes',
          text,
          () => free(m),
        );
        expectClean(m);
        // Nothing was set up: a device without mistakes can still be made.
        expect(new BalloonDevice(m, { design }).design).toBe(design);
      }
    },
  );

  it('perDeviceLockWithoutPageLock is one setting for the machine: a device that differs is E_USAGE', () => {
    const m = machine('v6.17');
    const a = new BalloonDevice(m, {
      design: '2026',
      mistakes: { perDeviceLockWithoutPageLock: true },
    });
    // Without the global lock each device has a pages_lock of its own.
    const b = new BalloonDevice(m, {
      design: '2026',
      name: 'b',
      mistakes: { perDeviceLockWithoutPageLock: true },
    });
    expect(a.pagesLock).not.toBe(b.pagesLock);
    expect(a.pagesLock.className).toBe('pages_lock');
    expectRefused(
      () => new BalloonDevice(m, { design: '2026', name: 'c' }),
      'E_USAGE',
      'mistakes',
      /set up with the perDeviceLockWithoutPageLock mistake/,
    );
    const fixed = machine('v6.17');
    const g = new BalloonDevice(fixed, { design: '2026' });
    expect(g.pagesLock.className).toBe('balloon_pages_lock');
    expectRefused(
      () =>
        new BalloonDevice(fixed, {
          design: '2026',
          mistakes: { perDeviceLockWithoutPageLock: true },
        }),
      'E_USAGE',
      'mistakes',
      /set up without/,
    );
    expectClean(m);
    expectClean(fixed);
  });
});

describe('2026 balloon without the global lock (perDeviceLockWithoutPageLock)', () => {
  /** A v6.17 machine with a two-page 2026 balloon, with or without the mistake. */
  function rig(mistake: boolean) {
    const m = machine('v6.17');
    const vb = new VirtioBalloon(m, {
      design: '2026',
      mistakes: mistake ? { perDeviceLockWithoutPageLock: true } : undefined,
    });
    m.run(() => vb.fill(2));
    const [a] = vb.dev.listPages();
    return { m, vb, dev: vb.dev, a };
  }

  /**
   * The VM isolates `a` (to put it back later); it runs alone up to its point `stop`, then
   * leak_balloon deflates the whole balloon; returns the VM's task.
   */
  function race(m: Machine, vb: VirtioBalloon, a: number, stop: string): Task {
    m.sched.manual = true;
    const vm = m.sched.spawn('vm', () => isolateThenMigrate(m, a, false));
    const leak = m.sched.spawn('leak', (): KernelGen<number> => vb.leak(2));
    m.sched.runUntil(vm, (p) => p.op === stop);
    while (leak.state === 'runnable') m.sched.step(leak);
    expect(leak.state).toBe('done');
    return vm;
  }

  it('isolate looks the device up before its lock: a deflation in between leaves a deflated page counted isolated', () => {
    const { m, vb, dev, a } = rig(true);
    // The VM has read page->private in isolate_page and waits to take the device's lock.
    const vm = race(m, vb, a, 'spin_lock');
    expect(vb.numPages).toBe(0);
    // The VM isolated the page all the same and holds it on its list.
    m.sched.runUntil(vm, (p) => p.op === 'putback_movable_pages');
    expect(m.mem.pages.priv[a]).toBe(0);
    expect(dev.isCountedIsolated(a)).toBe(true);
    expect(dev.isolatedPages).toBe(1);
    expect(balloonInvariants(vb)).toContainEqual(`isolated balloon pfn ${hexPfn(a)} has private 0`);
    // Its putback finds no b_dev_info: the kernel's WARN_ON_ONCE, and the count stays.
    m.sched.runAll();
    // The warning's second line (the model's, not the kernel's) says how it got there.
    expect(m.mem.warnings.map((w) => w.text)).toEqual([
      `WARNING: balloon_page_putback: WARN_ON_ONCE(!b_dev_info)\npfn ${hexPfn(a)} is still counted in isolated_pages of balloon balloon-kvm: balloon_page_isolate looked the device up through page->private before deflation cleared it, then did list_del(&page->lru) on a page the balloon no longer has and counted it; isolated_pages never comes down for it`,
    ]);
    expect(dev.isolatedPages).toBe(1);
  });

  it('with the global lock, isolate reads private under it: the deflated page is refused', () => {
    const { m, vb, dev, a } = rig(false);
    // The VM holds its reference and is about to lock the page: the lock does not keep the
    // 2026 balloon's deflation out, the global lock does.
    const vm = race(m, vb, a, 'folio_trylock');
    m.sched.runAll();
    expect(vm.result).toBe(false);
    expect(dev.isolatedPages).toBe(0);
    expect(vb.numPages).toBe(0);
    expect(m.mem.warnings).toEqual([]);
    expect(balloonInvariants(vb)).toEqual([]);
    expectClean(m);
  });

  it('isolateLockedAfterLookup: a listed page is isolated as by isolateLocked; bad pages are refused and change nothing', () => {
    const { m, vb, dev, a } = rig(true);
    const [, b] = dev.listPages();
    const snapshot = () => [dev.isolatedPages, dev.listPages(), [...dev.countedIsolated()]];
    expectRefused(
      () => dev.isolateLockedAfterLookup(m.mem.nrPages),
      'E_RANGE',
      'pfn',
      /outside/,
      snapshot,
    );
    const plain = m.allocPages(GFP.HIGHUSER_MOVABLE, 0, 'plain');
    expectRefused(
      () => dev.isolateLockedAfterLookup(plain),
      'E_STATE',
      'pfn',
      /neither on the list/,
      snapshot,
    );
    dev.isolateLockedAfterLookup(a);
    expect(dev.listPages()).toEqual([b]);
    expect(dev.isCountedIsolated(a)).toBe(true);
    expectRefused(
      () => dev.isolateLockedAfterLookup(a),
      'E_STATE',
      'pfn',
      /neither on the list/,
      snapshot,
    );
    dev.putbackLocked(a);
    run(m, () => vb.leak(2));
    expect(vb.numPages).toBe(0);
    expect(dev.isolatedPages).toBe(0);
  });
});
