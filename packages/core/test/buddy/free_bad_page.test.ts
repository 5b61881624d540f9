import { describe, expect, it } from 'vitest';
import { freeTheBlock } from '../../src/buddy/free_page.js';
import { EV, GFP, type Machine, PG, PROFILE_NAMES } from '../../src/index.js';
import { smallMachine } from '../helpers.js';

/** The reason line of each bad_page report, in order. */
const reasons = (m: Machine) =>
  m.mem.warnings.filter((w) => w.kind === 'bad_page').map((w) => w.text.split('\n')[1]);

describe('free_pages_prepare(): the bad-page reason and the mm_page_free tracepoint', () => {
  // free_pages_check_bad() (v4.8) and page_bad_reason() (6.x) run every check, mapcount,
  // mapping, _refcount, flags, and the last match names the page.
  it.each(PROFILE_NAMES)('%s: the last failing check gives the reason', (p) => {
    const m = smallMachine('4M', { profile: p });
    const pages = m.mem.pages;
    const [a, b, c] = [0, 1, 2].map(() => m.allocPages(GFP.KERNEL, 0));
    // a: a foreign mapping and PG_locked; b: a mapcount and a foreign mapping.
    pages.mapping[a] = 0x1000;
    pages.flags[a] |= 1 << PG.locked;
    pages.mapping[b] = 0x1000;
    pages.type[b] = 0;
    m.putPage(a);
    m.putPage(b);
    // c: a foreign mapping and a reference still held, freed as a bulk free path would.
    pages.mapping[c] = 0x1000;
    freeTheBlock(m.mem, c, 0);
    expect(reasons(m)).toEqual([
      '(PAGE_FLAGS_CHECK_AT_FREE flag(s) set)',
      '(non-NULL mapping)',
      '(nonzero _refcount)',
    ]);
    expect([a, b, c].every((q) => m.mem.leaked.has(q))).toBe(true);
  });

  it('the report names the process that freed the page (current->comm): a task, a kernel thread’s work, or mops outside any task', () => {
    const m = smallMachine('4M');
    const [a, b, c] = [0, 1, 2].map(() => m.allocPages(GFP.KERNEL, 0));
    for (const q of [a, b, c]) m.mem.pages.mapping[q] = 0x1000;
    m.sched.runToEnd(
      m.sched.spawn('drv_free_a_long_name', function* () {
        yield { op: 'nop' };
        m.putPage(a);
      }),
    );
    m.sched.asKthread('kswapd0', () => m.putPage(b));
    m.putPage(c);
    const heads = m.mem.warnings
      .filter((w) => w.kind === 'bad_page')
      .map((w) => w.text.split('\n')[0]);
    const pfn = (q: number) => q.toString(16).padStart(5, '0');
    expect(heads).toEqual([
      `BUG: Bad page state in process drv_free_a_long  pfn:${pfn(a)}`,
      `BUG: Bad page state in process kswapd0  pfn:${pfn(b)}`,
      `BUG: Bad page state in process mops  pfn:${pfn(c)}`,
    ]);
  });

  it.each(PROFILE_NAMES)('%s: a bad page is traced first, then reported, and not counted', (p) => {
    const m = smallMachine('4M', { profile: p });
    const seen: string[] = [];
    m.trace.on('mm_page_free', (e) =>
      seen.push(`free ${e.pfn} ${e.order} reports=${reasons(m).length}`),
    );
    const bad = m.allocPages(GFP.KERNEL, 1);
    const good = m.allocPages(GFP.KERNEL, 0);
    const pgfree = m.mem.vmstat.events[EV.pgfree];
    m.mem.pages.mapping[bad + 1] = 0x1000;
    m.freePages(bad, 1);
    m.putPage(good);
    expect(seen).toEqual([`free ${bad} 1 reports=0`, `free ${good} 0 reports=1`]);
    expect(reasons(m)).toEqual(['(non-NULL mapping)']);
    // pgfree counts what reached the buddy allocator: the good page only.
    expect(m.mem.vmstat.events[EV.pgfree] - pgfree).toBe(1);
  });
});
