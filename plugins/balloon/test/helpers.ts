import {
  allocPages,
  checkInvariants,
  createMachine,
  folioPut,
  GFP,
  isolatedOk,
  isolateMovablePage,
  type KernelGen,
  type ListId,
  type Machine,
  type MachineConfig,
  type MigrateResult,
  MopsError,
  migratePages,
  PF_MEMALLOC,
  PROFILE_NAMES,
  type ProfileName,
  putbackMovablePages,
} from '@mops/core';
import { expect } from 'vitest';
import {
  type BalloonDevice,
  balloonInvariants,
  VirtioBalloon,
  type VirtioBalloonOptions,
} from '../src/index.js';

export const PROFILES = PROFILE_NAMES;

/** A small machine: one Normal zone, no watermarks in the way. */
export function machine(profile: ProfileName, extra: Partial<MachineConfig> = {}): Machine {
  return createMachine({ memory: '4M', zones: 'normal-only', minFreeKbytes: 0, profile, ...extra });
}

/** A machine with a virtio balloon holding `n` pages (filled by a lone task). */
export function withBalloon(
  profile: ProfileName,
  n = 0,
  opts: VirtioBalloonOptions = {},
  extra: Partial<MachineConfig> = {},
): { m: Machine; vb: VirtioBalloon; dev: BalloonDevice } {
  const m = machine(profile, extra);
  const vb = new VirtioBalloon(m, opts);
  m.registerInvariantChecker('balloon', () => balloonInvariants(vb));
  if (n > 0) {
    const got = m.run(() => vb.fill(n));
    if (got !== n) throw new Error(`fill got ${got} of ${n}`);
  }
  return { m, vb, dev: vb.dev };
}

/** Migration targets and the pages handed back, for one compactor. */
export interface Targets {
  handed: number[];
  returned: number[];
  gfp: number;
}

export function targets(gfp: number = GFP.HIGHUSER_MOVABLE): Targets {
  return { handed: [], returned: [], gfp };
}

export function getNew(m: Machine, t: Targets) {
  return (): number => {
    const pfn = allocPages(m.mem, t.gfp, 0);
    if (pfn >= 0) t.handed.push(pfn);
    return pfn;
  };
}

export function putNew(m: Machine, t: Targets) {
  return (dst: number): void => {
    t.returned.push(dst);
    folioPut(m.mem, dst);
  };
}

/** isolate_movable_page as a lone task; links the page on `list` when isolated. */
export function isolate(m: Machine, list: ListId, pfn: number): boolean {
  const ok = isolatedOk(m.run(() => isolateMovablePage(m, pfn, 0)));
  if (ok) m.mem.pages.lists.addTail(list, pfn);
  return ok;
}

/** migrate_pages over `list` as a lone task. */
export function migrate(
  m: Machine,
  list: ListId,
  mode: number,
  t: Targets = targets(),
  memalloc = false,
): MigrateResult {
  const task = m.sched.spawn(
    'compactor',
    () => migratePages(m, list, getNew(m, t), putNew(m, t), mode, 0),
    {
      flags: memalloc ? PF_MEMALLOC : 0,
    },
  );
  m.sched.runAll();
  if (task.state === 'failed') throw task.error;
  return task.result as MigrateResult;
}

export function putback(m: Machine, list: ListId): void {
  m.run(() => putbackMovablePages(m, list));
}

/** Runs a generator body as a lone task. */
export function run<T>(m: Machine, body: () => KernelGen<T>): T {
  return m.run(body);
}

export function expectClean(m: Machine): void {
  const r = checkInvariants(m);
  if (!r.ok) throw new Error(`invariants violated:\n${r.violations.join('\n')}`);
}

/**
 * `f` throws a MopsError with `code` and `field` whose message matches `text`. With
 * `state`, what it returns is equal before and after the call: the refusal changed nothing.
 */
export function expectRefused(
  f: () => unknown,
  code: string,
  field: string,
  text: RegExp = /./,
  state?: () => unknown,
): void {
  const before = state?.();
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(MopsError);
  expect((err as MopsError).code).toBe(code);
  expect((err as MopsError).field).toBe(field);
  expect((err as MopsError).message).toMatch(text);
  if (state) expect(state()).toEqual(before);
}

/** Warnings other than the given kinds. */
export function warningsOf(m: Machine, kind: string): string[] {
  return m.mem.warnings.filter((w) => w.kind === kind).map((w) => w.text);
}
