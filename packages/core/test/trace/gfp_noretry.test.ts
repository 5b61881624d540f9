import { describe, expect, it } from 'vitest';
import { __GFP, GFP } from '../../src/buddy/gfp.js';
import { checkInvariants, createMachine } from '../../src/machine.js';
import { PROFILE_NAMES, PROFILES } from '../../src/profile.js';
import {
  GFP_FLAG_NAMES,
  GFP_FLAG_NAMES_V4_8,
  GFP_FLAG_NAMES_V6_0,
  type GfpNameTable,
  gfpMaskV4_8,
  showGfpFlags,
  traceRecorder,
} from '../../src/trace/index.js';

/** The names of a table, in the order show_gfp_flags() tries them. */
const names = (t: GfpNameTable) => t.map(([, name]) => name);

describe('__GFP_NORETRY', () => {
  it("has 6.x's ___GFP_NORETRY value (0x10000) and v4.8's (0x1000) in v4.8's layout", () => {
    // include/linux/gfp_types.h: ___GFP_NORETRY_BIT is bit 16 (after WRITE, NOWARN,
    // RETRY_MAYFAIL, NOFAIL); v4.8's include/linux/gfp.h: ___GFP_NORETRY 0x1000u.
    expect(__GFP.NORETRY).toBe(0x10000);
    expect(gfpMaskV4_8(__GFP.NORETRY)).toBe(0x1000);
    // The balloon's v4.8 mask: GFP_HIGHUSER_MOVABLE (0x24200ca) | NORETRY | NOMEMALLOC (0x10000).
    expect(gfpMaskV4_8(GFP.HIGHUSER_MOVABLE | __GFP.NORETRY | __GFP.NOMEMALLOC).toString(16)).toBe(
      '24310ca',
    );
  });

  it.each([
    // __def_gfpflag_names: the retry bit's name, __GFP_NOFAIL, __GFP_NORETRY, then
    // __GFP_COMP (6.15+, TRACE_GFP_FLAGS in ___GFP_*_BIT order: __GFP_MEMALLOC before it).
    // mops models neither NOFAIL nor MEMALLOC.
    ['v4.8', '__GFP_REPEAT', GFP_FLAG_NAMES_V4_8],
    ['v6.0', '__GFP_RETRY_MAYFAIL', GFP_FLAG_NAMES_V6_0],
    ['v6.15', '__GFP_RETRY_MAYFAIL', GFP_FLAG_NAMES],
  ] as const)("%s's table names NORETRY between %s and __GFP_COMP", (_, retry, table) => {
    const list = names(table);
    const at = list.indexOf('__GFP_NORETRY');
    expect(at).toBeGreaterThan(0);
    expect(table[at][0]).toBe(__GFP.NORETRY);
    expect(list.slice(at - 1, at + 2)).toEqual([retry, '__GFP_NORETRY', '__GFP_COMP']);
  });

  it.each(PROFILE_NAMES)('%s: show_gfp_flags prints the bit by name, in table order', (name) => {
    const profile = PROFILES[name];
    expect(showGfpFlags(__GFP.NORETRY, profile)).toBe('__GFP_NORETRY');
    // GFP_HIGHUSER_MOVABLE is matched first; the single bits follow in the table's order.
    expect(
      showGfpFlags(GFP.HIGHUSER_MOVABLE | __GFP.NOMEMALLOC | __GFP.NORETRY | __GFP.NOWARN, profile),
    ).toBe('GFP_HIGHUSER_MOVABLE|__GFP_NOWARN|__GFP_NORETRY|__GFP_NOMEMALLOC');
    expect(
      showGfpFlags(GFP.KERNEL | __GFP.COMP | __GFP.NORETRY | __GFP.RETRY_MAYFAIL, profile),
    ).toBe(
      `GFP_KERNEL|${name === 'v4.8' ? '__GFP_REPEAT' : '__GFP_RETRY_MAYFAIL'}|__GFP_NORETRY|__GFP_COMP`,
    );
    // No combination holds NORETRY (GFP_TRANSHUGE lost it in 4.8): a THP mask with it
    // still prints as the combination plus the bit.
    const reclaim = __GFP.DIRECT_RECLAIM | __GFP.KSWAPD_RECLAIM;
    const thp = (GFP.HIGHUSER_MOVABLE | __GFP.COMP | __GFP.NOMEMALLOC | __GFP.NOWARN) & ~reclaim;
    expect(showGfpFlags(thp | __GFP.DIRECT_RECLAIM | __GFP.NORETRY, profile)).toBe(
      'GFP_TRANSHUGE|__GFP_NORETRY',
    );
  });

  it.each(PROFILE_NAMES)('%s: an allocation may pass it, and mm_page_alloc names it', (name) => {
    const m = createMachine({ memory: '16M', contents: false, profile: name });
    const rec = traceRecorder(m, { events: ['mm_page_alloc'] });
    const pfn = m.allocPages(GFP.KERNEL | __GFP.NORETRY, 0);
    rec.stop();
    expect(pfn).toBeGreaterThanOrEqual(0);
    expect(rec.lines).toHaveLength(1);
    expect(rec.lines[0].split('gfp_flags=')[1]).toBe('GFP_KERNEL|__GFP_NORETRY');
    expect(checkInvariants(m).violations).toEqual([]);
  });

  it("v4.8's try_to_compact_pages prints the raw v4.8 mask with 0x1000; 6.x names it", () => {
    for (const name of ['v4.8', 'v6.3'] as const) {
      const m = createMachine({ memory: '16M', contents: false, profile: name });
      const rec = traceRecorder(m, {
        events: ['mm_compaction_try_to_compact_pages'],
        filter: `gfp_mask & ${name === 'v4.8' ? '0x1000' : '0x10000'}`,
      });
      m.trace.fire('mm_compaction_try_to_compact_pages', {
        order: 2,
        gfp_mask: GFP.KERNEL | __GFP.NORETRY,
        prio: 1,
      });
      m.trace.fire('mm_compaction_try_to_compact_pages', {
        order: 2,
        gfp_mask: GFP.KERNEL,
        prio: 1,
      });
      rec.stop();
      expect(rec.lines).toHaveLength(1);
      expect(rec.lines[0].replace(/^.*order=/, 'order=')).toBe(
        name === 'v4.8'
          ? 'order=2 gfp_mask=0x24010c0 priority=0'
          : 'order=2 gfp_mask=GFP_KERNEL|__GFP_NORETRY priority=1',
      );
    }
  });
});
