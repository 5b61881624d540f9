import {
  checkInvariants,
  installPlugin,
  type MopsError,
  procView,
  procViewNames,
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
import { isolate, machine, run } from './helpers.js';

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
