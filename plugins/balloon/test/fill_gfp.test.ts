import { __GFP, checkInvariants, GFP, traceRecorder } from '@mops/core';
import { describe, expect, it } from 'vitest';
import { BALLOON_GFP, balloonRules } from '../src/index.js';
import { withBalloon } from './helpers.js';

/**
 * The gfp_flags= field of mm_page_alloc for a balloon page, as each release prints it:
 * v4.8's balloon_page_enqueue() allocates with balloon_mapping_gfp_mask() | __GFP_NOMEMALLOC |
 * __GFP_NORETRY, balloon_page_alloc() (5.x on) adds __GFP_NOWARN. show_gfp_flags() matches
 * GFP_HIGHUSER_MOVABLE first, then the single bits in its table's order (NOWARN, the retry
 * bit, NOFAIL, NORETRY, COMP, ZERO, NOMEMALLOC before 6.15; ___GFP_*_BIT order after).
 */
const WANT = {
  'v4.8': 'GFP_HIGHUSER_MOVABLE|__GFP_NORETRY|__GFP_NOMEMALLOC',
  'v6.0': 'GFP_HIGHUSER_MOVABLE|__GFP_NOWARN|__GFP_NORETRY|__GFP_NOMEMALLOC',
  'v6.3': 'GFP_HIGHUSER_MOVABLE|__GFP_NOWARN|__GFP_NORETRY|__GFP_NOMEMALLOC',
  'v6.17': 'GFP_HIGHUSER_MOVABLE|__GFP_NOWARN|__GFP_NORETRY|__GFP_NOMEMALLOC',
} as const;

describe('balloon fill: the allocation mask in mm_page_alloc', () => {
  it.each(Object.keys(WANT) as (keyof typeof WANT)[])(
    '%s prints the kernel gfp_flags',
    (profile) => {
      const { m, vb } = withBalloon(profile);
      const rec = traceRecorder(m, { events: ['mm_page_alloc'] });
      expect(m.run(() => vb.fill(3))).toBe(3);
      rec.stop();
      expect(rec.lines).toHaveLength(3);
      for (const line of rec.lines) {
        expect(line).toMatch(/ order=0 /);
        expect(line.split(' gfp_flags=')[1]).toBe(WANT[profile]);
      }
      expect(checkInvariants(m).violations).toEqual([]);
    },
  );

  it('the masks: __GFP_NORETRY in every release, __GFP_NOWARN after v4.8', () => {
    const base = GFP.HIGHUSER_MOVABLE | __GFP.NOMEMALLOC | __GFP.NORETRY;
    expect(BALLOON_GFP & __GFP.NORETRY).toBe(__GFP.NORETRY);
    expect(BALLOON_GFP).toBe(base | __GFP.NOWARN);
    for (const profile of Object.keys(WANT) as (keyof typeof WANT)[]) {
      const { gfp } = balloonRules(withBalloon(profile).m.profile);
      expect(gfp & __GFP.NORETRY).toBe(__GFP.NORETRY);
      expect(gfp).toBe(profile === 'v4.8' ? base : base | __GFP.NOWARN);
    }
  });
});
