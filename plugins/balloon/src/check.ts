/**
 * The balloon's invariant checker and its `balloon/stats` text view.
 * @module
 */

import {
  hasPageType,
  hexPfn,
  ISOLATED,
  type Machine,
  PGTY,
  page_has_movable_ops,
} from '@mops/core';
import { balloonDevices } from './balloon_ops.js';
import type { BalloonDevice } from './device.js';
import type { VirtioBalloon } from './virtio.js';

/** A page in a message: `pfn 0x1f`. */
const pfnLabel = (pfn: number): string => `pfn ${hexPfn(pfn)}`;

/**
 * Checks a balloon device at any step: every page on its list is a live, published balloon
 * page of this device (PageOffline, movable, `private` = the device, referenced) and not
 * counted isolated; `isolated_pages` matches the pages the VM holds isolated. With no task
 * live (no isolation or putback half done) a page on the list is not isolated, and one
 * counted isolated is, with the VM's reference besides the balloon's.
 */
export function deviceInvariants(dev: BalloonDevice): string[] {
  const out: string[] = [];
  const mem = dev.k.mem;
  const p = mem.pages;
  const quiescent = dev.k.sched.liveTasks === 0;
  if (dev.isolatedPages < 0) out.push(`isolated_pages is negative (${dev.isolatedPages})`);
  const iso = dev.countedIsolated();
  if (dev.isolatedPages !== iso.size)
    out.push(`isolated_pages ${dev.isolatedPages} != ${iso.size} pages isolated`);
  const seen = new Set<number>();
  for (let pfn = p.lists.first(dev.pages); pfn !== -1; pfn = p.lists.nextOf(pfn)) {
    if (seen.has(pfn) || seen.size > mem.nrPages) {
      out.push(`the balloon list loops at ${pfnLabel(pfn)}`);
      break;
    }
    seen.add(pfn);
    if (p.refcount[pfn] < 1)
      out.push(`${pfnLabel(pfn)} on the balloon list has refcount ${p.refcount[pfn]}`);
    if (p.priv[pfn] !== dev.id)
      out.push(`${pfnLabel(pfn)} on the balloon list has private ${p.priv[pfn]}`);
    if (!hasPageType(mem, pfn, PGTY.offline))
      out.push(`${pfnLabel(pfn)} on the balloon list is not PageOffline`);
    if (!page_has_movable_ops(mem, pfn))
      out.push(`${pfnLabel(pfn)} on the balloon list is not movable`);
    if (dev.isCountedIsolated(pfn))
      out.push(`${pfnLabel(pfn)} is on the balloon list and counted isolated`);
    if (quiescent && p.flags[pfn] & ISOLATED)
      out.push(`${pfnLabel(pfn)} is on the balloon list but the VM's isolated flag is set`);
  }
  for (const pfn of iso) {
    if (p.refcount[pfn] < (quiescent ? 2 : 1))
      out.push(
        `isolated balloon ${pfnLabel(pfn)} has refcount ${p.refcount[pfn]}${quiescent ? " (the balloon's and the VM's references make 2)" : ''}`,
      );
    if (p.priv[pfn] !== dev.id)
      out.push(`isolated balloon ${pfnLabel(pfn)} has private ${p.priv[pfn]}`);
    if (quiescent && !(p.flags[pfn] & ISOLATED))
      out.push(`isolated balloon ${pfnLabel(pfn)} lacks the VM's isolated flag`);
  }
  return out;
}

/**
 * The balloon checker: {@link deviceInvariants}, every page the host holds is allocated in
 * the guest, and — whenever no fill, leak or migration is under way — list length +
 * isolated_pages = pages the driver believes it has (`num_pages`) = pages inflated at the
 * host (the same pfns), nr_balloon_pages agrees (where it exists, classic design), and
 * (without deflate-on-OOM) {@link managedInvariants}.
 */
export function balloonInvariants(vb: VirtioBalloon): string[] {
  const dev = vb.dev;
  const out = deviceInvariants(dev);
  out.push(...vb.host.verify(false));
  if (!vb.quiescent()) return out;
  const list = dev.listPages();
  const have = list.length + dev.isolatedPages;
  if (have !== vb.numPages)
    out.push(
      `list ${list.length} + isolated ${dev.isolatedPages} = ${have}, but the driver believes it has ${vb.numPages}`,
    );
  if (vb.host.inflatedCount !== vb.numPages)
    out.push(`the host holds ${vb.host.inflatedCount} pages, the driver believes ${vb.numPages}`);
  for (const pfn of list)
    if (!vb.host.isInflated(pfn))
      out.push(`${pfnLabel(pfn)} is in the balloon but not at the host`);
  for (const pfn of dev.countedIsolated())
    if (!vb.host.isInflated(pfn)) out.push(`isolated ${pfnLabel(pfn)} is not at the host`);
  const mem = vb.k.mem;
  if (dev.rules.nrBalloonPages && dev.design === 'classic') {
    // A node counter: the balloon pages of every device of the machine.
    const nr = mem.vmstat.get('nr_balloon_pages');
    const devices = balloonDevices(mem);
    let all = 0;
    for (const d of devices) all += d.listPages().length + d.isolatedPages;
    if (nr !== all)
      out.push(
        `nr_balloon_pages ${nr} != ${all}, the pages of ${devices.length === 1 ? 'this balloon' : `the machine's ${devices.length} balloons`}`,
      );
  }
  if (!vb.deflateOnOom) out.push(...managedInvariants(vb, list));
  return out;
}

/**
 * The managed pages the balloon took from each zone ({@link BalloonDevice.managedTaken}:
 * its own adjust_managed_page_count calls, apart from other callers') are exactly the
 * balloon pages in it (those on `list`, the balloon list, and those counted isolated), as
 * in every release since 5.5; in v4.8 one more or less for each known miscount of its
 * migrations across zones ({@link VirtioBalloon.managedMiscount}), which the check
 * accepts, and names, as the kernel state it is.
 */
export function managedInvariants(
  vb: VirtioBalloon,
  list: readonly number[] = vb.dev.listPages(),
): string[] {
  const out: string[] = [];
  const mem = vb.k.mem;
  const inZone = vb.managedZoneBase.map(() => 0);
  for (const pfn of list) inZone[mem.zoneOf(pfn).idx]++;
  for (const pfn of vb.dev.countedIsolated()) inZone[mem.zoneOf(pfn).idx]++;
  const taken = vb.dev.managedTaken;
  for (const zone of mem.node.zones) {
    const i = zone.idx;
    const miscount = vb.managedMiscount[i];
    if (taken[i] === inZone[i] + miscount) continue;
    const known =
      miscount === 0
        ? ''
        : ` ${miscount > 0 ? '+' : '-'} ${Math.abs(miscount)} (v4.8's known miscount)`;
    out.push(
      `zone ${zone.name}: the balloon took ${taken[i]} managed pages, for ${inZone[i]} balloon pages in it${known}`,
    );
  }
  return out;
}

/**
 * The `managed_miscount` row of `balloon/stats`: each zone whose managed count v4.8's
 * migrations left short (+) or over (-), `0` if none, `-` where the driver's accounting
 * has no miscount (other profiles, deflate-on-OOM, the 2026 design).
 */
function miscountText(vb: VirtioBalloon): string {
  const dev = vb.dev;
  if (vb.deflateOnOom || dev.design !== 'classic' || dev.rules.migrateAdjustsManaged) return '-';
  const zones = vb.k.mem.node.zones;
  const parts = vb.managedMiscount.flatMap((n, i) =>
    n === 0 ? [] : [`${zones[i].name}:${n > 0 ? '+' : ''}${n}`],
  );
  return parts.length ? parts.join(' ') : '0';
}

/** The text of `balloon/stats` for a driver. */
export function balloonStatsText(machine: Machine, vb: VirtioBalloon): string {
  const dev = vb.dev;
  const ev = (n: string): number => machine.mem.vmstat.get(n);
  const rows: [string, string | number][] = [
    ['device', dev.name],
    ['design', dev.design],
    ['profile', machine.profile.name],
    ['deflate_on_oom', vb.deflateOnOom ? 1 : 0],
    ['num_pages', vb.numPages],
    ['list_pages', dev.listLength()],
    ['isolated_pages', dev.isolatedPages],
    ['host_pages', vb.host.inflatedCount],
    ['balloon_inflate', ev('balloon_inflate')],
    ['balloon_deflate', ev('balloon_deflate')],
    ['balloon_migrate', ev('balloon_migrate')],
    ['nr_balloon_pages', dev.rules.nrBalloonPages ? ev('nr_balloon_pages') : '-'],
    ['managed_miscount', miscountText(vb)],
    ['fills', vb.stats.fills],
    ['leaks', vb.stats.leaks],
    ['alloc_failures', vb.stats.allocFailures],
    ['host_refused', vb.stats.refusedPages],
    ['empty_leaks', vb.stats.emptyLeaks],
    ['leak_short', vb.stats.leakShort],
    ['dequeue_empty', dev.stats.dequeueEmpty],
    ['isolations', dev.stats.isolations],
    ['putbacks', dev.stats.putbacks],
    ['migrations', dev.stats.migrations],
    ['migrate_busy', vb.stats.migrateBusy],
    ['migrate_refused', vb.stats.migrateRefused],
    ['migrate_enoent', dev.stats.enoent],
    ['host_inflate_requests', vb.host.stats.inflateRequests],
    ['host_deflate_requests', vb.host.stats.deflateRequests],
    ['host_latency', vb.host.latency],
  ];
  return `${rows.map(([k, v]) => `${k.padEnd(24)}${v}`).join('\n')}\n`;
}
