/**
 * The enqueue/dequeue API of mm/balloon_compaction.c (from 2026 mm/balloon.c; spec §6.2,
 * §6.4) through which a balloon driver inflates and deflates: balloon_page_alloc,
 * balloon_page_enqueue, balloon_page_list_enqueue, balloon_page_list_dequeue and
 * balloon_page_dequeue. {@link BalloonDevice} offers them as methods.
 * @module
 */

import {
  allocPages,
  bug,
  type KernelGen,
  lockPage,
  MopsError,
  PG,
  trylockPage,
  unlockPage,
  valueKind,
} from '@mops/core';
import {
  balloonPageDelete,
  balloonPageFinalize,
  balloonPageInsert,
  checkNewPage,
} from './balloon_page.js';
import type { BalloonDevice } from './device.js';
import { managedPagesAdd } from './managed.js';

const ISOLATED = 1 << PG.isolated;

/**
 * balloon_page_alloc(): one page for the balloon of `dev`, or -1. A failure is normal
 * (counted by the allocator), never fatal.
 * @see mm/balloon_compaction.c balloon_page_alloc()
 */
export function balloonPageAlloc(dev: BalloonDevice): number {
  dev.k.mem.assertRunning();
  return allocPages(dev.k.mem, dev.rules.gfp, 0, { owner: dev.owner });
}

/** balloon_page_enqueue_one(); the list lock is held. */
function enqueueOne(dev: BalloonDevice, pfn: number): void {
  const { k } = dev;
  const mem = k.mem;
  if (dev.design === 'classic') {
    // We should be the only one holding a reference to the page; if not, memory
    // corruption is possible and we should stop.
    if (!trylockPage(mem, pfn)) bug(mem, 'kernel BUG: BUG_ON(!trylock_page(page))', pfn);
    balloonPageInsert(dev, pfn);
    unlockPage(k, pfn);
  } else {
    balloonPageInsert(dev, pfn);
    if (dev.adjustManagedPageCount) managedPagesAdd(mem, pfn, -1, dev.managedTaken);
  }
  mem.vmstat.count('balloon_inflate');
  if (dev.rules.nrBalloonPages) mem.vmstat.modNode('nr_balloon_pages', 1);
}

/**
 * balloon_page_enqueue(b, page): publish a page from balloonPageAlloc() under the list
 * lock; compaction can find it from then on.
 * @see mm/balloon_compaction.c balloon_page_enqueue()
 */
export function* balloonPageEnqueue(dev: BalloonDevice, pfn: number): KernelGen {
  checkNewPage(dev.k.mem, pfn, 'balloon_page_enqueue');
  yield* dev.pagesLock.lock();
  enqueueOne(dev, pfn);
  dev.pagesLock.unlock();
}

/**
 * balloon_page_list_enqueue(b, pages): enqueue every page of `pfns` under one lock hold;
 * returns the number enqueued.
 * @see mm/balloon_compaction.c balloon_page_list_enqueue()
 */
export function* balloonPageListEnqueue(
  dev: BalloonDevice,
  pfns: readonly number[],
): KernelGen<number> {
  if (!Array.isArray(pfns))
    throw new MopsError(
      'E_USAGE',
      `balloon_page_list_enqueue: pfns must be an array of pfns, got ${valueKind(pfns)}`,
      'pfns',
    );
  for (const pfn of pfns) checkNewPage(dev.k.mem, pfn, 'balloon_page_list_enqueue');
  if (new Set(pfns).size !== pfns.length)
    throw new MopsError('E_USAGE', 'balloon_page_list_enqueue: a page appears twice', 'pfns');
  yield* dev.pagesLock.lock();
  for (const pfn of pfns) enqueueOne(dev, pfn);
  dev.pagesLock.unlock();
  return pfns.length;
}

/**
 * balloon_page_list_dequeue(b, pages, n): up to `n` pages off the list of `dev`, the last
 * dequeued first (see {@link BalloonDevice.listDequeue}).
 * @see mm/balloon_compaction.c balloon_page_list_dequeue()
 */
export function* balloonPageListDequeue(dev: BalloonDevice, n: number): KernelGen<number[]> {
  if (!Number.isInteger(n) || n < 0)
    throw new MopsError(
      'E_USAGE',
      `balloon_page_list_dequeue: n must be a non-negative integer, got ${valueKind(n)}`,
      'n',
    );
  dev.k.mem.assertRunning();
  if (dev.mistakes.dequeueWaitsForPageLock && dev.design === 'classic' && n > 0)
    return yield* dequeueWaiting(dev);
  yield* dev.pagesLock.lock();
  const out = dequeueLocked(dev, n);
  dev.pagesLock.unlock();
  return out;
}

/** The {@link BalloonMistakes.dequeueWaitsForPageLock} dequeue of one page. */
function* dequeueWaiting(dev: BalloonDevice): KernelGen<number[]> {
  const { k } = dev;
  const mem = k.mem;
  yield* dev.pagesLock.lock();
  const pfn = mem.pages.lists.first(dev.pages);
  dev.pagesLock.unlock();
  if (pfn === -1) return [];
  yield* lockPage(k, pfn);
  yield* dev.pagesLock.lock();
  balloonPageDelete(mem, pfn);
  mem.vmstat.count('balloon_deflate');
  unlockPage(k, pfn);
  dev.pagesLock.unlock();
  return [pfn];
}

/** The walk of balloon_page_list_dequeue(), list lock held. */
function dequeueLocked(dev: BalloonDevice, n: number): number[] {
  const { k, rules } = dev;
  const mem = k.mem;
  const p = mem.pages;
  const lists = p.lists;
  const classic = dev.design === 'classic';
  const out: number[] = [];
  for (let pfn = lists.first(dev.pages); pfn !== -1 && out.length < n; ) {
    const next = lists.nextOf(pfn);
    if (classic) {
      if (!trylockPage(mem, pfn)) {
        pfn = next;
        continue;
      }
      if (rules.dequeueSkipsIsolated && p.flags[pfn] & ISOLATED) {
        // Raced with isolation.
        unlockPage(k, pfn);
        pfn = next;
        continue;
      }
    }
    if (rules.finalizeOnly) {
      lists.del(pfn);
      if (!classic && dev.adjustManagedPageCount) managedPagesAdd(mem, pfn, 1, dev.managedTaken);
      balloonPageFinalize(mem, pfn);
    } else balloonPageDelete(mem, pfn);
    mem.vmstat.count('balloon_deflate');
    out.push(pfn);
    if (classic) unlockPage(k, pfn);
    if (rules.nrBalloonPages) mem.vmstat.modNode('nr_balloon_pages', -1);
    pfn = next;
  }
  // list_add(&page->lru, pages): each page goes to the head of the caller's list.
  return out.reverse();
}

/**
 * balloon_page_dequeue(b): one page off the balloon of `dev`, or -1 (see
 * {@link BalloonDevice.dequeue}).
 * @see mm/balloon_compaction.c balloon_page_dequeue()
 */
export function* balloonPageDequeue(dev: BalloonDevice): KernelGen<number> {
  const got = yield* dev.listDequeue(1);
  if (got.length === 1) return got[0];
  yield* dev.pagesLock.lock();
  if (dev.k.mem.pages.lists.isEmpty(dev.pages) && dev.isolatedPages === 0)
    bug(
      dev.k.mem,
      'kernel BUG: balloon_page_dequeue: list empty and no page isolated, balloon pages are lost',
    );
  dev.pagesLock.unlock();
  dev.stats.dequeueEmpty++;
  return -1;
}
