/**
 * dump_page() text in each release's layout (mm/debug.c): the first line, the compound
 * line, the flags and page_type lines, the hex dump, and the reason.
 */
import { describe, expect, it } from 'vitest';
import {
  __GFP,
  createMovableFiller,
  dumpPage,
  GFP,
  type Machine,
  PG,
  PROFILE_NAMES,
  type ProfileName,
} from '../../src/index.js';
import { smallMachine } from '../helpers.js';

function pages(profile: ProfileName): { m: Machine; filler: number; tail: number; free: number } {
  const m = smallMachine('16M', { profile });
  const [filler] = createMovableFiller(m).alloc(1);
  const head = m.allocPages(GFP.KERNEL | __GFP.COMP, 2);
  const free = m.allocPages(GFP.KERNEL, 0);
  m.putPage(free);
  return { m, filler, tail: head + 1, free };
}

describe('dump_page layouts', () => {
  it('v4.8: page:%p count:… mapping:<raw> index, compound_mapcount on the same line, flags names only, no hex dump', () => {
    const { m, filler, tail } = pages('v4.8');
    const d = dumpPage(m.mem, filler, 'VM_BUG_ON_PAGE(PageLRU(page))').split('\n');
    expect(d[0]).toMatch(
      /^page:ffffea[0-9a-f]{10} count:1 mapcount:0 mapping:ffff888[0-9a-f]{9} index:0x0$/,
    );
    expect(d[1]).toMatch(/^flags: 0x[0-9a-f]+\([a-z_|]*\)$/);
    expect(d.some((l) => l.startsWith('raw: '))).toBe(false);
    expect(d).toContain('page dumped because: VM_BUG_ON_PAGE(PageLRU(page))');
    expect(dumpPage(m.mem, tail).split('\n')[0]).toMatch(/ index:0x0 compound_mapcount: 0$/);
  });

  it('v4.8 has no PG_waiters (4.10): a locked page with sleepers shows only locked', () => {
    const { m, filler } = pages('v4.8');
    m.mem.pages.flags[filler] |= (1 << PG.locked) | (1 << PG.waiters);
    expect(dumpPage(m.mem, filler).split('\n')[1]).toBe('flags: 0x1(locked)');
    const v63 = pages('v6.3');
    v63.m.mem.pages.flags[v63.filler] |= (1 << PG.locked) | (1 << PG.waiters);
    expect(dumpPage(v63.m.mem, v63.filler)).toContain('(locked|waiters|');
  });

  it('v6.0: page:%p refcount:… pfn, head:%p with compound_mapcount, %pGp with node and zone, no page_type line', () => {
    const { m, tail, free } = pages('v6.0');
    const d = dumpPage(m.mem, tail).split('\n');
    expect(d[0]).toMatch(
      new RegExp(
        `^page:[0-9a-f]{16} refcount:1 mapcount:0 mapping:0{16} index:0x0 pfn:0x${tail.toString(16)}$`,
      ),
    );
    expect(d[1]).toMatch(/^head:[0-9a-f]{16} order:2 compound_mapcount:0 compound_pincount:0$/);
    expect(d[2]).toBe('flags: 0x40(head|node=0|zone=2)');
    expect(d.filter((l) => l.startsWith('head: '))).toHaveLength(2); // the head's struct page
    expect(dumpPage(m.mem, free)).not.toContain('page_type');
  });

  it('v6.3: the nr_pages_mapped head line and page_type: %pGt for every page', () => {
    const { m, filler, tail, free } = pages('v6.3');
    expect(dumpPage(m.mem, tail).split('\n')[1]).toMatch(
      /^head:[0-9a-f]{16} order:2 entire_mapcount:0 nr_pages_mapped:0 pincount:0$/,
    );
    expect(dumpPage(m.mem, free)).toContain('\npage_type: 0xffffff7f(buddy)\n');
    expect(dumpPage(m.mem, filler)).toContain('\npage_type: 0xffffffff()\n');
  });

  it('v6.17 (__dump_folio): folio refcount and index for a tail, the mapcount head line, page_type: %x(%s), two head struct pages', () => {
    const { m, tail, free } = pages('v6.17');
    const d = dumpPage(m.mem, tail).split('\n');
    expect(d[0]).toBe(
      `page: refcount:1 mapcount:0 mapping:0000000000000000 index:0x1 pfn:0x${tail.toString(16)}`,
    );
    expect(d[1]).toBe('head: order:2 mapcount:0 entire_mapcount:0 nr_pages_mapped:0 pincount:0');
    expect(d.filter((l) => l.startsWith('head: 0'))).toHaveLength(4);
    expect(dumpPage(m.mem, free)).toContain('\npage_type: f0(buddy)\n');
  });

  it.each(PROFILE_NAMES.filter((p) => p !== 'v4.8'))(
    '%s: a movable_ops page prints a NULL mapping on the first line (folio_mapping), the tagged word in the hex dump; raw: puts _refcount above _mapcount',
    (profile) => {
      const { m, filler } = pages(profile);
      const d = dumpPage(m.mem, filler).split('\n');
      expect(d[0]).toContain(' mapping:0000000000000000 ');
      const raw = d.filter((l) => l.startsWith('raw: '));
      expect(raw).toHaveLength(2);
      // refcount 1, _mapcount -1 (v6.17 movable_ops pages keep their page type there).
      expect(raw[1].split(' ')[3]).toMatch(/^00000001(ffffffff|f[0-9a-f]{7})$/);
    },
  );

  it.each(PROFILE_NAMES.filter((p) => p !== 'v4.8'))(
    '%s: the flags word of raw: is the value the flags: line prints',
    (profile) => {
      const { m, filler } = pages(profile);
      m.mem.pages.flags[filler] |= 1 << PG.locked;
      const d = dumpPage(m.mem, filler).split('\n');
      const shown = /^flags: 0x([0-9a-f]+)\(/.exec(d.find((l) => l.startsWith('flags: ')) ?? '');
      const raw = d.find((l) => l.startsWith('raw: '))?.split(' ')[1];
      expect(shown).not.toBeNull();
      expect(BigInt(`0x${raw}`)).toBe(BigInt(`0x${shown?.[1]}`));
      expect(m.mem.pages.ownerOf(filler)).not.toBe(0);
    },
  );

  it.each([
    ['v4.8', -127],
    ['v6.0', -128],
    ['v6.3', -128],
    ['v6.17', 0],
  ] as const)(
    '%s: a free (buddy) page prints mapcount %i: the type word plus one, or 0 once typed words are recognised',
    (profile, mapcount) => {
      const { m, free } = pages(profile);
      expect(dumpPage(m.mem, free).split('\n')[0]).toContain(` mapcount:${mapcount} `);
    },
  );

  it.each(PROFILE_NAMES)('%s: the owner mops recorded is a last line of its own', (profile) => {
    const { m, filler } = pages(profile);
    const d = dumpPage(m.mem, filler, 'VM_BUG_ON_PAGE(x)').split('\n');
    expect(d.at(-1)).toBe('page owner: filler');
    expect(d.at(-2)).toBe('page dumped because: VM_BUG_ON_PAGE(x)');
  });
});
