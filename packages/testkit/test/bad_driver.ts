/**
 * A small driver for the kit's own tests: correct by default, with switches that each break
 * one rule of the movable_ops contract.
 */
import {
  __ClearPageMovable,
  __SetPageMovable,
  defineMovableOps,
  GFP,
  getPage,
  ISOLATED,
  type Machine,
  type MopsPlugin,
  type MovableOperations,
  makeAddressSpace,
  PAGE_SIZE,
  PGTY,
  putPage,
  SetPageMovableOps,
  setMovableOps,
  trylockPage,
  unlockPage,
} from '@mops/core';

/** The mistakes the driver can be told to make. */
export interface Bugs {
  /** migrate_page drops src and returns 0 without setting up dst (a live page's data lost). */
  dropData?: boolean;
  /** migrate_page sets up dst but never takes it into the driver's structures. */
  forgetDst?: boolean;
  /** migrate_page sets the isolated flag on dst. */
  isolatedOnDst?: boolean;
  /** Before v6.17: the driver's pages carry a page type it never clears before freeing. */
  typeNotCleared?: boolean;
  /** putback_page takes back only the first page it is given. */
  putbackOnlyFirst?: boolean;
  /** putback_page drops a reference instead of taking the page back. */
  putbackDropsRef?: boolean;
  /** migrate_page returns -EAGAIN on a page's first attempt, touching nothing (correct). */
  eagainOnce?: boolean;
  /** migrate_page returns -EAGAIN every time, touching nothing. */
  alwaysEagain?: boolean;
  /** migrate_page takes a reference on dst, then returns -EAGAIN on a page's first attempt. */
  eagainLeaksDst?: boolean;
  /** isolate_page unlocks the page. */
  unlockInIsolate?: boolean;
  /** isolate_page takes a reference of its own, which putback_page and migrate_page drop. */
  isolateTakesRef?: boolean;
  /** isolate_page refuses every odd pfn, though nothing keeps such a page from moving. */
  isolateRefusesOdd?: boolean;
  /**
   * v4.8–v6.3: release drops the driver's reference without __ClearPageMovable, so the VM
   * still takes the page for the driver's (in v6.17, where there is nothing to clear, the
   * release is the correct one).
   */
  releaseKeepsMovable?: boolean;
  /** release clears the isolated flag (the v3-draft rule of spec §4.2). */
  releaseClearsIsolated?: boolean;
  /** v6.17: putback_page takes back a page its owner gave up (the VM frees it right after). */
  putbackKeepsReleased?: boolean;
  /** release drops one reference too many: the VM's isolation reference as well as its own. */
  releaseDoublePut?: boolean;
  /** migrate_page returns 0 for every page, touching nothing (v6.17's fake success, misapplied). */
  fakeSuccessLive?: boolean;
  /** migrate_page returns 1 (neither 0 nor a negative errno) for every page, touching nothing. */
  migrateReturnsOne?: boolean;
  /** populate() makes the pages the driver's but never publishes them as movable. */
  unpublished?: boolean;
  /**
   * How the driver uses page contents: left out, where the machine has them (it fills and
   * copies them when there); `declared`, always (it fails without them), its manifest
   * saying `needsContents: true`; `undeclared`, always, its manifest not saying so.
   */
  contents?: 'declared' | 'undeclared';
  /** migrate_page moves the page without copying its contents. */
  noCopy?: boolean;
  /** With `contents`: populate leaves the contents alone; only migrate_page uses them. */
  copyOnly?: boolean;
}

interface State {
  pages: Set<number>;
  iso: Set<number>;
  tried: Set<number>;
  /** v6.17: pages given up while isolated; the callbacks fake success for them. */
  released: Set<number>;
  putbacks: number;
  ops: MovableOperations;
  space: ReturnType<typeof makeAddressSpace>;
}

export function badDriver(bugs: Bugs = {}, name = 'bad') {
  const states = new WeakMap<Machine, State>();
  const publish = (m: Machine, s: State, pfn: number) => {
    if (m.profile.movableMarker === 'page_type') {
      m.mem.pages.type[pfn] = PGTY.offline << 24;
      SetPageMovableOps(m.mem, pfn);
      return;
    }
    if (bugs.typeNotCleared) m.mem.pages.type[pfn] = PGTY.offline << 24;
    __SetPageMovable(m.mem, pfn, m.profile.movableMarker === 'address_space' ? s.space : s.ops);
  };
  const plugin: MopsPlugin & {
    populate(m: Machine, n: number): number[];
    release(m: Machine, pfn: number): number[];
  } = {
    manifest: {
      name,
      version: '1.0.0',
      profiles: ['v4.8', 'v6.0', 'v6.3', 'v6.17'],
      ...(bugs.contents === 'declared' ? { needsContents: true } : {}),
    },
    register(_c, m) {
      const s = {
        pages: new Set(),
        iso: new Set(),
        tried: new Set(),
        released: new Set(),
        putbacks: 0,
      } as State;
      states.set(m, s);
      const mem = m.mem;
      s.ops = defineMovableOps(name, {
        isolatePage(pfn: number) {
          if (bugs.isolateRefusesOdd && pfn % 2 === 1) return false;
          if (!s.pages.delete(pfn)) return false;
          s.iso.add(pfn);
          if (bugs.isolateTakesRef) getPage(mem, pfn);
          if (bugs.unlockInIsolate) unlockPage(m, pfn);
          return true;
        },
        migratePage(dst: number, src: number) {
          // v6.17: a page given up while isolated; nothing to move (spec §4.3).
          if (s.released.delete(src)) return 0;
          if (!s.iso.has(src)) return -22;
          if (bugs.migrateReturnsOne) return 1;
          if (bugs.fakeSuccessLive) return 0;
          if (bugs.alwaysEagain) return -11;
          if ((bugs.eagainOnce || bugs.eagainLeaksDst) && !s.tried.has(src)) {
            s.tried.add(src);
            if (bugs.eagainLeaksDst) getPage(mem, dst);
            return -11;
          }
          s.iso.delete(src);
          if (bugs.dropData) {
            putPage(mem, src);
            return 0;
          }
          if (bugs.contents !== undefined && !bugs.noCopy)
            mem.pages.pageData(dst).set(mem.pages.pageData(src));
          else if (!bugs.noCopy)
            mem.pages.contents?.copyWithin(dst * PAGE_SIZE, src * PAGE_SIZE, (src + 1) * PAGE_SIZE);
          publish(m, s, dst);
          getPage(mem, dst);
          if (!bugs.forgetDst) s.pages.add(dst);
          if (bugs.isolatedOnDst) mem.pages.flags[dst] |= ISOLATED;
          if (m.profile.driverClearsSrc) __ClearPageMovable(mem, src);
          if (bugs.isolateTakesRef) putPage(mem, src);
          putPage(mem, src);
          return 0;
        },
        putbackPage(pfn: number) {
          if (s.released.delete(pfn) && !bugs.putbackKeepsReleased) return;
          if (s.iso.delete(pfn) && bugs.isolateTakesRef) putPage(mem, pfn);
          s.putbacks++;
          if (bugs.putbackOnlyFirst && s.putbacks > 1) return;
          if (bugs.putbackDropsRef) {
            putPage(mem, pfn);
            return;
          }
          s.pages.add(pfn);
        },
      });
      s.space = makeAddressSpace(name, s.ops);
      // The driver's own check: every page it counts as its own is a live movable page.
      m.registerInvariantChecker(name, () =>
        [...s.pages]
          .filter((pfn) => mem.pages.refcount[pfn] === 0)
          .map((pfn) => `pfn ${pfn} is in the driver's structures but free`),
      );
      if (m.profile.movableMarker === 'page_type') setMovableOps(mem, s.ops, PGTY.offline);
    },
    populate(m: Machine, n: number) {
      const s = states.get(m) as State;
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const pfn = m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
        if (pfn < 0) break;
        const fill = (pfn * 7 + 1) & 0xff;
        if (bugs.contents !== undefined) {
          if (!bugs.copyOnly) m.mem.pages.pageData(pfn).fill(fill);
        } else m.mem.pages.contents?.fill(fill, pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE);
        trylockPage(m.mem, pfn);
        if (!bugs.unpublished) publish(m, s, pfn);
        unlockPage(m, pfn);
        s.pages.add(pfn);
        out.push(pfn);
      }
      return out;
    },
    /**
     * The owner gives up `pfn` (spec §4): v4.8–v6.3 under the page lock __ClearPageMovable,
     * then drop the reference; v6.17 keeps the page's movable_ops and has its callbacks
     * fake success for it.
     */
    release(m: Machine, pfn: number) {
      const s = states.get(m) as State;
      const mem = m.mem;
      const isolated = s.iso.delete(pfn);
      s.pages.delete(pfn);
      if (!trylockPage(mem, pfn)) throw new Error(`bad: release: pfn ${pfn} is locked`);
      if (m.profile.ownerMayRelease) {
        if (!bugs.releaseKeepsMovable) __ClearPageMovable(mem, pfn);
      } else if (isolated) s.released.add(pfn);
      if (bugs.releaseClearsIsolated) mem.pages.flags[pfn] &= ~ISOLATED;
      unlockPage(m, pfn);
      putPage(mem, pfn);
      if (isolated && bugs.isolateTakesRef) putPage(mem, pfn);
      if (bugs.releaseDoublePut) putPage(mem, pfn);
      return [pfn];
    },
  };
  return plugin;
}
