import {
  checkInvariants,
  createMovableFiller,
  defineMovableOps,
  Errno,
  installedPlugins,
  installPlugin,
  MopsError,
  PGTY,
  pageMovableOps,
  procView,
  procViewNames,
  setMovableOps,
} from '@mops/core';
import { describe, expect, it } from 'vitest';
import plugin, {
  BALLOON_DEVICE,
  BalloonDevice,
  createBalloonPlugin,
  HYPERVISOR,
  Hypervisor,
  VIRTIO_BALLOON,
  VirtioBalloon,
} from '../src/index.js';
import { expectRefused, isolate, machine, PROFILES, run } from './helpers.js';

describe('@mops/balloon plugin', () => {
  it('registers the driver, device and host in the machine container, a checker and a view', () => {
    const m = machine('v6.3');
    installPlugin(m, plugin);
    const vb = m.container.resolve<VirtioBalloon>(VIRTIO_BALLOON);
    expect(vb).toBeInstanceOf(VirtioBalloon);
    expect(m.container.resolve(BALLOON_DEVICE)).toBe(vb.dev);
    expect(m.container.resolve<Hypervisor>(HYPERVISOR)).toBe(vb.host);
    expect(vb.dev).toBeInstanceOf(BalloonDevice);
    expect(procViewNames(m)).toContain('balloon/stats');
    run(m, () => vb.fill(6));
    const list = m.mem.pages.lists.newList();
    isolate(m, list, vb.dev.listPages()[0]);
    const text = procView(m, 'balloon/stats');
    expect(text).toMatch(/^num_pages\s+6$/m);
    expect(text).toMatch(/^list_pages\s+5$/m);
    expect(text).toMatch(/^isolated_pages\s+1$/m);
    expect(text).toMatch(/^host_pages\s+6$/m);
    expect(text).toMatch(/^balloon_inflate\s+6$/m);
    expect(text).toMatch(/^nr_balloon_pages\s+-$/m);
    expect(checkInvariants(m).ok).toBe(true);
  });

  it('the checker catches a driver that disagrees with its list and host', () => {
    const m = machine('v6.17');
    installPlugin(m, plugin);
    const vb = m.container.resolve<VirtioBalloon>(VIRTIO_BALLOON);
    run(m, () => vb.fill(3));
    vb.numPages = 4;
    const r = checkInvariants(m);
    expect(r.ok).toBe(false);
    expect(r.violations.join('\n')).toMatch(/driver believes it has 4/);
    vb.numPages = 3;
    const [a] = vb.dev.listPages();
    vb.host.deflateOne(a);
    expect(checkInvariants(m).violations.join('\n')).toMatch(/in the balloon but not at the host/);
  });

  it('machines do not share balloon state', () => {
    const m1 = machine('v6.3');
    const m2 = machine('v6.3');
    installPlugin(m1, plugin);
    installPlugin(m2, plugin);
    const a = m1.container.resolve<VirtioBalloon>(VIRTIO_BALLOON);
    const b = m2.container.resolve<VirtioBalloon>(VIRTIO_BALLOON);
    run(m1, () => a.fill(2));
    expect(b.numPages).toBe(0);
    expect(b.host.inflatedCount).toBe(0);
    expect(a.dev.id).toBe(b.dev.id);
  });

  it('a 2026-design plugin refuses a machine older than v6.17', () => {
    const p = createBalloonPlugin({ design: '2026' });
    expect(() => installPlugin(machine('v6.3'), p)).toThrow(
      expect.objectContaining({ code: 'E_USAGE' }) as MopsError,
    );
    const m = machine('v6.17');
    installPlugin(m, p);
    expect(procView(m, 'balloon/stats')).toMatch(/^design\s+2026$/m);
  });
});

describe('v6.17: the balloon movable_ops are registered for PageOffline when the plugin is installed', () => {
  /** Another PageOffline driver's movable_ops. */
  const otherOps = () =>
    defineMovableOps('other-offline', {
      isolatePage: () => false,
      migratePage: () => Errno.EAGAIN,
      putbackPage: () => {},
    });

  it('a PageOffline driver registering afterwards gets -EBUSY; creating balloons never fails for it', () => {
    const m = machine('v6.17');
    installPlugin(m, plugin);
    const vb = m.container.resolve<VirtioBalloon>(VIRTIO_BALLOON);
    // balloon_init ran at "boot": the ops are there before the balloon has a page.
    expect(setMovableOps(m.mem, otherOps(), PGTY.offline)).toBe(Errno.EBUSY);
    expect(() => createMovableFiller(m)).toThrow(
      expect.objectContaining({ code: 'E_PLUGIN' }) as MopsError,
    );
    const dev2 = new BalloonDevice(m, { name: 'balloon-2' });
    const vb2 = new VirtioBalloon(m, { name: 'balloon-3' });
    expect(dev2.ops).toBe(vb.dev.ops);
    expect(vb2.dev.ops).toBe(vb.dev.ops);
    run(m, () => vb.fill(2));
    for (const pfn of vb.dev.listPages()) expect(pageMovableOps(m.mem, pfn)?.ops).toBe(vb.dev.ops);
    expect(checkInvariants(m).ok).toBe(true);
  });

  it('one PageOffline driver registered before: the install fails naming it, and changes nothing', () => {
    const m = machine('v6.17');
    const filler = createMovableFiller(m);
    expectRefused(
      () => installPlugin(m, plugin),
      'E_PLUGIN',
      'ops',
      /^balloon_init: set_movable_ops\(PGTY_offline\) returned -EBUSY: page type Offline already has the movable_ops of filler\. .*install the balloon plugin .* first/,
    );
    expect(installedPlugins(m)).toEqual([]);
    expect(procViewNames(m)).not.toContain('balloon/stats');
    const [pfn] = filler.alloc(1);
    expect(pageMovableOps(m.mem, pfn)?.ops).toBe(filler.ops);
    expect(checkInvariants(m).ok).toBe(true);
  });

  it.each(PROFILES.filter((p) => p !== 'v6.17'))(
    '%s has no set_movable_ops: another driver and the balloon share the machine either way',
    (profile) => {
      const m1 = machine(profile);
      createMovableFiller(m1).alloc(2);
      installPlugin(m1, plugin);
      const m2 = machine(profile);
      installPlugin(m2, plugin);
      createMovableFiller(m2).alloc(2);
      for (const m of [m1, m2]) {
        run(m, () => m.container.resolve<VirtioBalloon>(VIRTIO_BALLOON).fill(2));
        expect(checkInvariants(m).ok).toBe(true);
      }
    },
  );

  it('the 2026 design: the global balloon_pages_lock is set up with the core, shared by every device', () => {
    const m = machine('v6.17');
    installPlugin(m, createBalloonPlugin({ design: '2026' }));
    const vb = m.container.resolve<VirtioBalloon>(VIRTIO_BALLOON);
    const dev2 = new BalloonDevice(m, { design: '2026', name: 'balloon-2' });
    expect(vb.dev.pagesLock.className).toBe('balloon_pages_lock');
    expect(dev2.pagesLock).toBe(vb.dev.pagesLock);
    expect(() => new BalloonDevice(m)).toThrow(/use the 2026 design/);
  });
});
