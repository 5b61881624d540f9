/**
 * dump_page() text (mm/debug.c) in each release's layout, and the BUG helper that halts a
 * machine.
 * @module
 */

import { MmBug } from '../errors.js';
import type { Memory } from '../memory/mem.js';
import {
  FLAG_NAMES,
  NR_PAGEFLAGS,
  PAGE_TYPE_BASE,
  PAGE_TYPE_NAMES,
  PAGEFLAGS_MASK,
  PG,
  PGTY,
} from '../page/flags.js';
import { hashedPointer, pagePointer } from '../trace/pointer.js';

const hex16 = (v: bigint): string => v.toString(16).padStart(16, '0');
const hex8 = (v: number): string => (v >>> 0).toString(16).padStart(8, '0');

/**
 * A pfn (or another non-negative number) in hex, as messages print it: `0x1f`.
 * @param pfn the number
 * @returns `0x` and its lowercase hex digits
 */
export function hexPfn(pfn: number): string {
  return `0x${pfn.toString(16)}`;
}

/** The kernel-looking address of a `mapping` word (handle, tag bits). */
function mappingAddress(word: number): bigint {
  const handle = word >>> 2;
  const tags = BigInt(word & 3);
  return handle === 0 ? tags : 0xffff888000000000n + BigInt(handle) * 0x40n + tags;
}

/** A kernel-looking pointer value for a `mapping` word (handle, tag bits). */
export function mappingPointer(word: number): string {
  return hex16(mappingAddress(word));
}

/**
 * `%p` of the mapping dump_page prints on its first line: v4.8 the raw `page->mapping`;
 * later page_mapping() / folio_mapping(), NULL for a mapping with tag bits (anon, KSM, a
 * movable_ops page), hashed otherwise.
 */
function firstLineMapping(mem: Memory, word: number): string {
  if (mem.profile.dumpPageLayout === 'v4.8') return mappingPointer(word);
  if (word === 0 || (word & 3) !== 0) return hex16(0n);
  return hashedPointer(mappingAddress(word));
}

/**
 * The page-flag names of `flags` joined by `|` (%pGp's names), e.g. `locked|uptodate`.
 */
function flagNames(flags: number): string {
  const f = flags & PAGEFLAGS_MASK;
  const names: string[] = [];
  for (let b = 0; b < NR_PAGEFLAGS; b++) if (f & (1 << b)) names.push(FLAG_NAMES[b]);
  return names.join('|');
}

/**
 * `flags: 0x…(locked|uptodate)` as v4.8 prints it (`%#lx(%pGp)`, names only). PG_waiters
 * came in 4.10: the bit the page lock keeps for its sleepers is not shown.
 */
export function formatFlags(flags: number): string {
  const f = flags & PAGEFLAGS_MASK & ~(1 << PG.waiters);
  return `flags: 0x${f.toString(16)}(${flagNames(f)})`;
}

/**
 * `flags: %pGp` since 5.14: the flags word, then the names and the node and zone fields,
 * e.g. `flags: 0x4(referenced|node=0|zone=1)`.
 */
function formatFlagsFields(mem: Memory, pfn: number, flags: number): string {
  const f = flags & PAGEFLAGS_MASK;
  const names = flagNames(f);
  const fields = `node=0|zone=${mem.zoneOf(pfn).idx}`;
  return `flags: 0x${f.toString(16)}(${names ? `${names}|` : ''}${fields})`;
}

/** v6.3's page_type bits (PG_buddy …), inverted in the word as that release stores them. */
const PG_TYPE_BITS_V6_3: Readonly<Record<number, readonly [number, string]>> = {
  [PGTY.buddy]: [0x80, 'buddy'],
  [PGTY.offline]: [0x100, 'offline'],
  [PGTY.table]: [0x200, 'table'],
  [PGTY.guard]: [0x400, 'guard'],
};

/**
 * The page_type line: v6.3 `page_type: %pGt` for every page (`0xffffff7f(buddy)`, and the
 * raw mapcount word with `()` for an untyped page); v6.17 `page_type: %x(%s)` for a typed
 * page (`f0(buddy)`; a type without a name in page_type_names[], zsmalloc's, prints
 * `(null)`). v4.8 and v6.0 print none.
 */
function pageTypeLine(mem: Memory, word: number): string | undefined {
  const top = word >>> 24;
  const typed = top >= PAGE_TYPE_BASE && top < 0xff;
  const layout = mem.profile.dumpPageLayout;
  if (layout === 'v6.17') {
    if (!typed) return undefined;
    const name = top === PGTY.zsmalloc ? '(null)' : (PAGE_TYPE_NAMES[top] ?? 'unknown');
    return `page_type: ${top.toString(16)}(${name})`;
  }
  if (layout !== 'v6.3') return undefined;
  const bit = typed ? PG_TYPE_BITS_V6_3[top] : undefined;
  if (bit) return `page_type: 0x${(~bit[0] >>> 0).toString(16)}(${bit[1]})`;
  return `page_type: 0x${((typed ? -1 : word) >>> 0).toString(16)}()`;
}

/**
 * mapcount as dump_page prints it: the `_mapcount` word plus one. A typed page shares that
 * word: v6.17 prints 0 for it (page_mapcount_is_type); earlier releases print the word
 * itself plus one, the page type's value in that release (v6.0/v6.3: `0xffffff7f` for a
 * buddy page, so -128; v4.8: PAGE_BUDDY_MAPCOUNT_VALUE -128, so -127, and the balloon's
 * -256). A type the release did not have prints 0.
 */
function mapcountOf(mem: Memory, word: number): number {
  const top = word >>> 24;
  if (!(top >= PAGE_TYPE_BASE && top < 0xff)) return word + 1;
  const layout = mem.profile.dumpPageLayout;
  if (layout === 'v6.17') return 0;
  if (layout === 'v4.8') return top === PGTY.buddy ? -127 : top === PGTY.offline ? -255 : 0;
  const bit = PG_TYPE_BITS_V6_3[top];
  return bit ? (~bit[0] | 0) + 1 : 0;
}

/**
 * The two `raw:` lines of print_hex_dump() over one struct page (8-byte words). The flags
 * word is the value the `flags:` line prints, as in the kernel, where both show the whole
 * word. mops lays no node, zone or section fields out in its upper bits (the `flags:` line
 * names node and zone instead), and the owner id it keeps there is left out of both.
 */
function rawLines(mem: Memory, pfn: number, prefix: string): string[] {
  const p = mem.pages;
  return [
    `${prefix}${hex16(BigInt((p.flags[pfn] & PAGEFLAGS_MASK) >>> 0))} ${hex16(BigInt(p.lruNext[pfn] >>> 0))} ${hex16(BigInt(p.lruPrev[pfn] >>> 0))} ${mappingPointer(p.mapping[pfn])}`,
    // index, private, then _mapcount (offset 48) and _refcount (52) read as one
    // little-endian word: the refcount is the high half.
    `${prefix}${hex16(0n)} ${hex16(BigInt(p.priv[pfn] >>> 0))} ${hex8(p.refcount[pfn])}${hex8(p.type[pfn])} ${hex16(0n)}`,
  ];
}

/**
 * dump_page(page, reason) as text, in the layout of the machine's release:
 * - v4.8: `page:%p count:%d mapcount:%d mapping:%p index:%#lx` (with ` compound_mapcount:`
 *   for a compound page), `flags: %#lx(%pGp)`, no hex dump;
 * - v6.0, v6.3: `page:%p refcount:… pfn:%#lx`, the head line of a compound page
 *   (`head:%p order:%u …`), `flags: %pGp` with node and zone, v6.3's page_type line, the
 *   `raw:` hex dump of the page and, for a tail page, the `head:` dump of its head;
 * - v6.17 (__dump_folio): `page: refcount:…` with the folio's refcount and the index within
 *   it, `head: order:%u mapcount:%d entire_mapcount:%d nr_pages_mapped:%d pincount:%d` for
 *   a large folio, `flags: %pGp` of the folio, the page_type line of a typed page, `raw:`,
 *   and `head:` over the folio's first two struct pages.
 *
 * Then `page dumped because: <reason>`. The owner mops recorded for the page (the driver
 * or workload that allocated it) follows on a last line of its own, `page owner: <name>`.
 */
export function dumpPage(mem: Memory, pfn: number, reason?: string): string {
  const p = mem.pages;
  if (pfn < 0 || pfn >= p.nr) return `page: pfn:0x${pfn.toString(16)} is outside the machine`;
  const layout = mem.profile.dumpPageLayout;
  const c = p.compound[pfn];
  const head = c < 0 ? pfn + c : pfn;
  const order = Math.max(p.compound[head], 0);
  const compound = c !== 0;
  const word = p.type[pfn];
  const mapcount = mapcountOf(mem, word);
  const mapping = firstLineMapping(mem, p.mapping[pfn]);
  const lines: string[] = [];
  if (layout === 'v4.8') {
    lines.push(
      `page:${pagePointer(pfn, 'raw')} count:${p.refcount[pfn]} mapcount:${mapcount} mapping:${mapping} index:0x0${compound ? ' compound_mapcount: 0' : ''}`,
      formatFlags(p.flags[pfn]),
    );
  } else if (layout === 'v6.17') {
    lines.push(
      `page: refcount:${p.refcount[head]} mapcount:${mapcount} mapping:${mapping} index:0x${(pfn - head).toString(16)} pfn:0x${pfn.toString(16)}`,
    );
    if (order > 0)
      lines.push(`head: order:${order} mapcount:0 entire_mapcount:0 nr_pages_mapped:0 pincount:0`);
    lines.push(formatFlagsFields(mem, head, p.flags[head]));
    const type = pageTypeLine(mem, p.type[head]);
    if (type) lines.push(type);
    lines.push(...rawLines(mem, pfn, 'raw: '));
    if (order > 0)
      lines.push(...rawLines(mem, head, 'head: '), ...rawLines(mem, head + 1, 'head: '));
  } else {
    lines.push(
      `page:${pagePointer(pfn, 'hashed')} refcount:${p.refcount[head]} mapcount:${mapcount} mapping:${mapping} index:0x0 pfn:0x${pfn.toString(16)}`,
    );
    if (compound)
      lines.push(
        layout === 'v6.0'
          ? `head:${pagePointer(head, 'hashed')} order:${order} compound_mapcount:0 compound_pincount:0`
          : `head:${pagePointer(head, 'hashed')} order:${order} entire_mapcount:0 nr_pages_mapped:0 pincount:0`,
      );
    lines.push(formatFlagsFields(mem, head, p.flags[head]));
    const type = pageTypeLine(mem, p.type[head]);
    if (type) lines.push(type);
    lines.push(...rawLines(mem, pfn, 'raw: '));
    if (head !== pfn) lines.push(...rawLines(mem, head, 'head: '));
  }
  if (reason) lines.push(`page dumped because: ${reason}`);
  const owner = p.ownerOf(pfn);
  if (owner) lines.push(`page owner: ${mem.owners.name(owner)}`);
  return lines.join('\n');
}

/**
 * An assertion's text as the profile's release wrote it: `folio` since the folio
 * conversions of the functions concerned, `page` in v4.8 (Profile.folioAsserts).
 */
export function assertText(mem: Memory, folio: string, page: string): string {
  return mem.profile.folioAsserts ? folio : page;
}

/**
 * VM_BUG_ON_PAGE / BUG: builds an MmBug with the page dump, halts the machine and throws.
 * Callers check before they change anything, so no structure is left half-updated. The
 * dump's reason is the assertion as the macro stringifies it, `VM_BUG_ON_PAGE(cond)`. A
 * driver calls it where the kernel's driver has a BUG_ON / VM_BUG_ON_PAGE.
 * @param mem the machine's memory, halted by the call
 * @param reason the assertion, e.g. `VM_BUG_ON_PAGE(!PageLocked(page))`
 * @param pfn the page to dump, if one is concerned
 * @throws {@link MmBug} always
 */
export function bug(mem: Memory, reason: string, pfn?: number): never {
  const e = new MmBug(reason, pfn === undefined ? '' : dumpPage(mem, pfn, reason));
  mem.halted = e;
  throw e;
}
