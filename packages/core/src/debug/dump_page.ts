/**
 * dump_page() text (mm/debug.c) and the BUG helper that halts a machine.
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
} from '../page/flags.js';

const hex16 = (v: bigint): string => v.toString(16).padStart(16, '0');

/** A pfn (or another non-negative number) in hex, as messages print it: `0x1f`. */
export function hexPfn(pfn: number): string {
  return `0x${pfn.toString(16)}`;
}

/** A kernel-looking pointer value for a `mapping` word (handle, tag bits). */
export function mappingPointer(word: number): string {
  const handle = word >>> 2;
  const tags = BigInt(word & 3);
  if (handle === 0) return hex16(tags);
  return hex16(0xffff888000000000n + BigInt(handle) * 0x40n + tags);
}

/** `flags: 0x…(locked|uptodate)` with the canonical names of the set bits. */
export function formatFlags(flags: number): string {
  const f = flags & PAGEFLAGS_MASK;
  const names: string[] = [];
  for (let b = 0; b < NR_PAGEFLAGS; b++) if (f & (1 << b)) names.push(FLAG_NAMES[b]);
  return `flags: 0x${f.toString(16)}(${names.join('|')})`;
}

/** dump_page(page, reason) as text. */
export function dumpPage(mem: Memory, pfn: number, reason?: string): string {
  const p = mem.pages;
  if (pfn < 0 || pfn >= p.nr) return `page: pfn:0x${pfn.toString(16)} is outside the machine`;
  const word = p.type[pfn];
  const top = word >>> 24;
  const typed = top >= PAGE_TYPE_BASE && top < 0xff;
  const mapcount = typed ? 0 : word + 1;
  const lines = [
    `page: refcount:${p.refcount[pfn]} mapcount:${mapcount} mapping:${mappingPointer(p.mapping[pfn])} index:0x0 pfn:0x${pfn.toString(16)}`,
  ];
  const c = p.compound[pfn];
  if (c < 0) lines.push(`head: pfn:0x${(pfn + c).toString(16)} (tail page ${-c})`);
  else if (c > 0) lines.push(`head: order:${c}`);
  const owner = p.ownerOf(pfn);
  lines.push(formatFlags(p.flags[pfn]) + (owner ? ` owner:${mem.owners.name(owner)}` : ''));
  if (typed)
    lines.push(
      `page_type: 0x${((top === 0xf0 ? word & 0xff000000 : word) >>> 0).toString(16)}(${PAGE_TYPE_NAMES[top] ?? 'unknown'})`,
    );
  lines.push(
    `raw: ${hex16(BigInt(p.flags[pfn] >>> 0))} ${hex16(BigInt(p.lruNext[pfn] >>> 0))} ${hex16(BigInt(p.lruPrev[pfn] >>> 0))} ${mappingPointer(p.mapping[pfn])}`,
    `raw: ${hex16(0n)} ${hex16(BigInt(p.priv[pfn] >>> 0))} ${(p.type[pfn] >>> 0).toString(16).padStart(8, '0')}${(p.refcount[pfn] >>> 0).toString(16).padStart(8, '0')} ${hex16(0n)}`,
  );
  if (reason) lines.push(`page dumped because: ${reason}`);
  return lines.join('\n');
}

/**
 * VM_BUG_ON_PAGE / BUG: builds an MmBug with the page dump, halts the machine and throws.
 * Callers check before they change anything, so no structure is left half-updated.
 */
export function bug(mem: Memory, reason: string, pfn?: number): never {
  const e = new MmBug(
    reason,
    pfn === undefined ? '' : dumpPage(mem, pfn, reason.replace(/^VM_BUG_ON\w*\((.*)\)$/, '$1')),
  );
  mem.halted = e;
  throw e;
}
