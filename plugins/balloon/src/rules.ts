/**
 * What the balloon does differently in each profile. The core Profile has no balloon rows,
 * so this small table is keyed by the profile's existing `movableMarker` field (v4.8:
 * `'address_space'`, v6.0/v6.3: `'mops'`, v6.17: `'page_type'`).
 * @module
 */

import { __GFP, GFP, type Profile } from '@mops/core';

/**
 * Alloc flags of balloon_page_alloc() in current releases: GFP_HIGHUSER_MOVABLE (balloon
 * compaction is configured) | __GFP_NOMEMALLOC | __GFP_NORETRY | __GFP_NOWARN. A profile's
 * own mask is {@link BalloonRules.gfp}.
 * @see mm/balloon_compaction.c balloon_page_alloc()
 */
export const BALLOON_GFP = GFP.HIGHUSER_MOVABLE | __GFP.NOMEMALLOC | __GFP.NORETRY | __GFP.NOWARN;

/** Balloon rules of one profile (spec §6, §0.2 "Balloon migratepage order"). */
export interface BalloonRules {
  /**
   * How a page is published: v4.8 `__SetPageMovable(page, inode->i_mapping)` (the device's
   * address_space), v6.0/v6.3 `__SetPageMovable(page, &balloon_mops)`, v6.17 PageOffline +
   * `SetPageMovableOps` with the ops registered for PGTY_offline.
   */
  readonly marker: Profile['movableMarker'];
  /**
   * Deflation only clears `page->private` (`balloon_page_finalize`, v6.17): PageOffline and
   * PG_movable_ops stay until the page is freed. Before, `balloon_page_delete` clears the
   * page type, calls `__ClearPageMovable` and clears `private`.
   */
  readonly finalizeOnly: boolean;
  /**
   * NR_BALLOON_PAGES exists. It was added in 2025, after 6.14; of the profiles, only v6.17
   * has it.
   */
  readonly nrBalloonPages: boolean;
  /** fill_balloon allocates its pages with balloon_lock held (v4.8); later, before taking it. */
  readonly fillAllocsUnderLock: boolean;
  /**
   * fill_balloon enqueues its batch last-allocated first: each new page goes to the head of
   * a local list (balloon_page_push; list_add since the 2026 series) and the enqueue loop
   * takes pages from the head, so the pfns reach the host in reverse allocation order and
   * the first-allocated page ends at the head of the balloon list (5.x-6.17 and the 2026
   * design). v4.8 enqueues each page as it allocates it.
   */
  readonly fillEnqueueLifo: boolean;
  /**
   * leak_balloon frees its pages last-dequeued first: each dequeued page goes to the head of
   * a local list (list_add) and release_pages_balloon walks that list from the head (the
   * "deflate via a page list" rework, 4.13-6.17 and the 2026 design). v4.8 frees them from
   * vb->pfns, in dequeue order.
   */
  readonly leakReleasesLifo: boolean;
  /** The dequeue walk skips PG_isolated pages (v4.8-v6.3; dead code removed in 2025). */
  readonly dequeueSkipsIsolated: boolean;
  /**
   * isolate refuses a page whose `private` is NULL; putback and migrate warn once and bail
   * out (v6.17: "Isolated balloon pages cannot get deflated").
   */
  readonly nullDeviceChecks: boolean;
  /**
   * virtballoon_migratepage deletes the old page under pages_lock (v6.0, v6.3; v4.8 without
   * it). In v6.17 it no longer deletes it: the old page is finalized after balloon_lock, with
   * no pages_lock (see {@link finalizeOnly}).
   */
  readonly migrateDeleteUnderListLock: boolean;
  /** virtballoon_migratepage moves a managed page between zones when they differ (v6.x). */
  readonly migrateAdjustsManaged: boolean;
  /**
   * The gfp mask of a balloon page allocation: GFP_HIGHUSER_MOVABLE | __GFP_NOMEMALLOC |
   * __GFP_NORETRY, plus __GFP_NOWARN since balloon_page_alloc() (5.x; v4.8's
   * balloon_page_enqueue allocated without it).
   */
  readonly gfp: number;
}

const RULES: Readonly<Record<Profile['movableMarker'], BalloonRules>> = {
  address_space: {
    marker: 'address_space',
    finalizeOnly: false,
    nrBalloonPages: false,
    fillAllocsUnderLock: true,
    fillEnqueueLifo: false,
    leakReleasesLifo: false,
    dequeueSkipsIsolated: true,
    nullDeviceChecks: false,
    migrateDeleteUnderListLock: false,
    migrateAdjustsManaged: false,
    gfp: GFP.HIGHUSER_MOVABLE | __GFP.NOMEMALLOC | __GFP.NORETRY,
  },
  mops: {
    marker: 'mops',
    finalizeOnly: false,
    nrBalloonPages: false,
    fillAllocsUnderLock: false,
    fillEnqueueLifo: true,
    leakReleasesLifo: true,
    dequeueSkipsIsolated: true,
    nullDeviceChecks: false,
    migrateDeleteUnderListLock: true,
    migrateAdjustsManaged: true,
    gfp: BALLOON_GFP,
  },
  page_type: {
    marker: 'page_type',
    finalizeOnly: true,
    nrBalloonPages: true,
    fillAllocsUnderLock: false,
    fillEnqueueLifo: true,
    leakReleasesLifo: true,
    dequeueSkipsIsolated: false,
    nullDeviceChecks: true,
    migrateDeleteUnderListLock: false,
    migrateAdjustsManaged: true,
    gfp: BALLOON_GFP,
  },
};

/** The balloon rules of a profile. */
export function balloonRules(profile: Profile): BalloonRules {
  return RULES[profile.movableMarker];
}
