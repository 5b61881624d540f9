/**
 * `@mops/balloon`: a virtio-balloon-like driver plugin with a hypervisor model. It shows
 * why isolated balloon pages cannot be deflated and what migration means to a host
 * (spec §6).
 * @module
 */

import {
  type DependencyContainer,
  type Machine,
  type MopsPlugin,
  registerProcView,
} from '@mops/core';
import { balloonInit } from './balloon_ops.js';
import { balloonInvariants, balloonStatsText } from './check.js';
import { VirtioBalloon, type VirtioBalloonOptions } from './virtio.js';

export { balloonPageDevice } from './balloon_ops.js';
export {
  balloonInvariants,
  balloonStatsText,
  deviceInvariants,
  managedInvariants,
} from './check.js';
export {
  type BalloonDesign,
  BalloonDevice,
  type BalloonDeviceOptions,
  type BalloonDeviceStats,
  type BalloonMigratepage,
  type BalloonMistakes,
} from './device.js';
export {
  HOST_POISON,
  Hypervisor,
  type HypervisorOptions,
  type HypervisorStats,
} from './hypervisor.js';
export { adjustManagedPageCount, managedPages } from './managed.js';
export { BALLOON_GFP, type BalloonRules, balloonRules } from './rules.js';
export {
  balloonDeflateVsIsolate,
  balloonPrivateVsIsolate,
  balloonScenarios,
  registerBalloonScenarios,
} from './scenarios.js';
export {
  VIRTIO_BALLOON_ARRAY_PFNS_MAX,
  VirtioBalloon,
  type VirtioBalloonOptions,
  type VirtioBalloonStats,
} from './virtio.js';

/** DI token of the machine's {@link VirtioBalloon}. */
export const VIRTIO_BALLOON: unique symbol = Symbol('mops.balloon.VirtioBalloon');
/** DI token of the machine's {@link BalloonDevice} (`balloon_dev_info`). */
export const BALLOON_DEVICE: unique symbol = Symbol('mops.balloon.BalloonDevice');
/** DI token of the machine's {@link Hypervisor}. */
export const HYPERVISOR: unique symbol = Symbol('mops.balloon.Hypervisor');

/**
 * A balloon plugin whose driver has `opts`: installing it sets up the machine's balloon
 * core (balloon_init, which the kernel runs at boot; in v6.17 it registers the balloon's
 * movable_ops for PageOffline pages, so a PageOffline driver registering later gets
 * -EBUSY), creates the host and a {@link VirtioBalloon} on the machine, registers them in
 * the machine's container ({@link VIRTIO_BALLOON}, {@link BALLOON_DEVICE},
 * {@link HYPERVISOR}), adds the `balloon` invariant checker and the `balloon/stats` view.
 */
export function createBalloonPlugin(opts: VirtioBalloonOptions = {}): MopsPlugin {
  return {
    manifest: {
      name: '@mops/balloon',
      version: '0.1.0',
      profiles: ['v4.8', 'v6.0', 'v6.3', 'v6.17'],
      description: 'virtio-balloon-like driver with a hypervisor model',
    },
    register(container: DependencyContainer, machine: Machine): void {
      // core_initcall(balloon_init): before any driver probes.
      const o = opts as VirtioBalloonOptions | null;
      balloonInit(machine, o?.design, o?.mistakes);
      const vb = new VirtioBalloon(machine, opts);
      container.register(VIRTIO_BALLOON, { useValue: vb });
      container.register(BALLOON_DEVICE, { useValue: vb.dev });
      container.register(HYPERVISOR, { useValue: vb.host });
      machine.registerInvariantChecker('balloon', () => balloonInvariants(vb));
      registerProcView(machine, 'balloon/stats', (m) => balloonStatsText(m, vb));
    },
  };
}

/** The plugin with the default driver (classic design, no deflate-on-OOM, a prompt host). */
export const plugin: MopsPlugin = createBalloonPlugin();

/**
 * How the conformance suite (`@mops/testkit`, `mops check-plugin`) makes balloon pages: the
 * driver inflates `n` pages; returns the pages now on the balloon list.
 */
export const conformance = {
  /** Inflates `n` pages through the virtio driver's fill task. */
  populate(machine: Machine, n: number): number[] {
    const vb = machine.container.resolve<VirtioBalloon>(VIRTIO_BALLOON);
    machine.run(() => vb.fill(n));
    return machine.mem.pages.lists.toArray(vb.dev.pages);
  },
};
export default plugin;
