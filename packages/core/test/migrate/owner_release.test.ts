/**
 * §2.5 / §4.1: an owner releases an isolated page only by __ClearPageMovable under the page
 * lock, then dropping its references. One that drops them and leaves the page PageMovable
 * gets the VM to call it back for a page it gave up; the kernel cannot tell, mops reports
 * the driver's protocol violation wherever the VM meets such a page, and goes on as the
 * kernel does.
 */
import { describe, expect, it } from 'vitest';
import { checkInvariants, Errno, type ProfileName, putPage } from '../../src/index.js';
import { expectInvariants } from '../helpers.js';
import { isolate, migrate, putback, type Rig, rig } from './harness.js';

/** The first lines of the protocol violations `r`'s machine recorded. */
function violations(r: Rig): string[] {
  return r.m.mem.warnings
    .filter((w) => w.kind === 'protocol_violation')
    .map((w) => w.text.split('\n')[0]);
}

const dropped = (step: string) =>
  `testdrv: the owner dropped its references to an isolated page but left it PageMovable (only the VM's isolation reference is left at ${step}); release under the page lock with __ClearPageMovable first, then drop the references`;

/** The profile's name for the refcount==1 shortcut's step and the move step. */
function steps(profile: ProfileName): { shortcut: string; move: string } {
  if (profile === 'v6.3') return { shortcut: 'migrate_folio_unmap', move: 'move_to_new_folio' };
  return {
    shortcut: 'unmap_and_move',
    move: profile === 'v4.8' ? 'move_to_new_page' : 'move_to_new_folio',
  };
}

describe.each(['v4.8', 'v6.0', 'v6.3'] as const)(
  'an owner that drops its reference to an isolated page without __ClearPageMovable — %s',
  (profile) => {
    it('putback: reported, and putback_page is still called, as the kernel would', () => {
      const r = rig(profile);
      const [q] = r.drv.alloc(1);
      isolate(r, q);
      putPage(r.m.mem, q); // the owner's reference, the page left PageMovable
      putback(r);
      expect(violations(r)).toEqual([dropped('putback_movable_pages')]);
      expect(r.m.mem.warnings[0].pfn).toBe(q);
      expect(r.drv.callsOf('putback').map((c) => c.pfn)).toEqual([q]);
      expect(r.m.mem.pages.refcount[q]).toBe(0);
      // The harm: the driver took back a page the VM then freed.
      expect(checkInvariants(r.m).violations).toEqual([
        `testdrv: pfn ${q}: owned page has refcount 0`,
      ]);
    });

    it('migration: reported at the refcount==1 shortcut, which frees the page without the driver', () => {
      const r = rig(profile);
      const [q] = r.drv.alloc(1);
      isolate(r, q);
      putPage(r.m.mem, q);
      const res = migrate(r, 0);
      expect(res).toEqual({ rc: 0, nrSucceeded: 1, nrFailedPages: 0 });
      expect(violations(r)).toEqual([dropped(steps(profile).shortcut)]);
      expect(r.drv.callsOf('migrate')).toEqual([]);
      expect(r.m.mem.pages.refcount[q]).toBe(0);
      expectInvariants(r.m);
    });

    it('migration: reported at the move step when the last other reference goes after the unmap step', () => {
      const r = rig(profile);
      const [q] = r.drv.alloc(1);
      isolate(r, q);
      // A third party's transient reference defeats the shortcut; the owner drops its own,
      // and the third party lets go while the VM locks the target.
      r.m.mem.pages.refcount[q]++;
      putPage(r.m.mem, q);
      // A driver that finds a page it no longer knows refuses it (its own put would free the
      // page under the VM).
      r.drv.migrateRc = Errno.EBUSY;
      let dropAt = -1;
      r.m.sched.manual = true;
      r.m.sched.onStep = (_t, pt) => {
        if (dropAt === -1 && pt.pfn !== q && /trylock/.test(pt.op)) {
          dropAt = pt.pfn ?? -2;
          putPage(r.m.mem, q);
        }
      };
      const res = migrate(r, 0);
      expect(dropAt).toBe(r.targets[0]);
      // v4.8 puts a page that failed for good back in unmap_and_move, and meets it again.
      expect(violations(r)).toEqual(
        profile === 'v4.8'
          ? [dropped(steps(profile).move), dropped('unmap_and_move')]
          : [dropped(steps(profile).move)],
      );
      // The kernel calls the driver all the same.
      expect(r.drv.callsOf('migrate').map((c) => c.pfn)).toEqual([q]);
      expect(res.rc).toBe(1);
    });

    it('a release by the rule is not reported', () => {
      const r = rig(profile);
      const [q] = r.drv.alloc(1);
      isolate(r, q);
      r.m.run(() => r.drv.release(q));
      expect(migrate(r, 0).rc).toBe(0);
      expect(r.m.mem.warnings).toEqual([]);
    });
  },
);

describe('v6.17: the owner may drop its reference (a fake success), nothing is reported', () => {
  it('the refcount==1 shortcut and putback stay silent', () => {
    for (const step of ['migrate', 'putback'] as const) {
      const r = rig('v6.17');
      const [q] = r.drv.alloc(1);
      isolate(r, q);
      putPage(r.m.mem, q);
      if (step === 'migrate') migrate(r, 0);
      else putback(r);
      expect(violations(r), step).toEqual([]);
    }
  });
});
