import {
  allocPages,
  folioPut,
  GFP,
  isolatedOk,
  isolateMovablePage,
  type KernelGen,
  type ListId,
  type Machine,
  type MigrateResult,
  migratePages,
  PF_MEMALLOC,
  type ProfileName,
  putbackMovablePages,
  trylockPage,
  unlockPage,
} from '../../src/index.js';
import { TestDriver } from '../driver.js';
import { smallMachine } from '../helpers.js';

/** A machine with a test driver and a migration list. */
export interface Rig {
  m: Machine;
  drv: TestDriver;
  list: ListId;
  /** Targets handed out by getNew, in order. */
  targets: number[];
  /** Targets given back through putNew, in order. */
  returned: number[];
  /** Set to make getNew fail (compaction_alloc finding nothing). */
  noTargets: boolean;
}

export function rig(profile: ProfileName, memory = '4M'): Rig {
  const m = smallMachine(memory, { profile });
  const drv = new TestDriver(m);
  m.registerInvariantChecker('testdrv', () => drv.check());
  return { m, drv, list: m.mem.pages.lists.newList(), targets: [], returned: [], noTargets: false };
}

/** isolate_movable_page as a lone task; links the page on the rig's list when isolated. */
export function isolate(r: Rig, pfn: number, mode = 0): boolean | number {
  const res = r.m.run(() => isolateMovablePage(r.m, pfn, mode));
  if (isolatedOk(res)) r.m.mem.pages.lists.addTail(r.list, pfn);
  return res;
}

export function getNew(r: Rig) {
  return (_src: number): number => {
    if (r.noTargets) return -1;
    const pfn = allocPages(r.m.mem, GFP.HIGHUSER_MOVABLE, 0);
    if (pfn >= 0) r.targets.push(pfn);
    return pfn;
  };
}

export function putNew(r: Rig) {
  return (dst: number): void => {
    r.returned.push(dst);
    folioPut(r.m.mem, dst);
  };
}

/** migrate_pages body over the rig's list. */
export function migrateBody(r: Rig, mode: number): () => KernelGen<MigrateResult> {
  return () => migratePages(r.m, r.list, getNew(r), putNew(r), mode, 0);
}

/**
 * One isolated driver page whose lock another task holds while a migration task in `mode`
 * runs until it blocks or ends: the page, the holder (which unlocks when next stepped) and
 * the migration task.
 */
export function migrateLockedSrc(r: Rig, mode: number) {
  const [a] = r.drv.alloc(1);
  isolate(r, a);
  const s = r.m.sched;
  const holder = s.spawn('holder', function* (): KernelGen {
    trylockPage(r.m.mem, a);
    yield { op: 'hold', pfn: a };
    unlockPage(r.m, a);
  });
  const mig = s.spawn('migrate', migrateBody(r, mode));
  s.step(holder); // holds the lock
  while (mig.state === 'runnable') s.step(mig);
  return { a, holder, mig };
}

/** migrate_pages as a lone task (optionally PF_MEMALLOC). */
export function migrate(r: Rig, mode: number, memalloc = false): MigrateResult {
  const t = r.m.sched.spawn('migrate', migrateBody(r, mode), { flags: memalloc ? PF_MEMALLOC : 0 });
  r.m.sched.runAll();
  if (t.state === 'failed') throw t.error;
  return t.result as MigrateResult;
}

export function putback(r: Rig): void {
  r.m.run(() => putbackMovablePages(r.m, r.list));
}

export function ev(r: Rig, name: string): number {
  return r.m.mem.vmstat.get(name);
}

export function onList(r: Rig): number[] {
  return r.m.mem.pages.lists.toArray(r.list);
}
