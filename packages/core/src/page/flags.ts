/**
 * Page flags, page types and `mapping` tag bits (spec §1.2).
 *
 * Bit numbers follow include/linux/page-flags.h of the 6.x kernels. The top byte of the
 * flags word holds the page's owner id (the kernel keeps node/zone/section ids there).
 * @module
 */

/** Page flag bit numbers (`enum pageflags`). */
export const PG = {
  locked: 0,
  writeback: 1,
  referenced: 2,
  uptodate: 3,
  dirty: 4,
  lru: 5,
  head: 6,
  waiters: 7,
  active: 8,
  workingset: 9,
  owner_priv_1: 10,
  owner_2: 11,
  arch_1: 12,
  reserved: 13,
  private: 14,
  private_2: 15,
  reclaim: 16,
  swapbacked: 17,
  unevictable: 18,
  mlocked: 19,
  hwpoison: 20,
  slab: 21,
  /** Alias of PG_reclaim: the VM-owned isolated flag of movable pages (v4.8–v6.3). */
  isolated: 16,
  /** Alias of PG_uptodate: "this page has movable_ops" (v6.17). */
  movable_ops: 3,
  /** Alias of PG_reclaim: the VM-owned isolated flag (v6.17). */
  movable_ops_isolated: 16,
  /** Alias of PG_owner_priv_1. */
  swapcache: 10,
} as const;

/** The mask of PG_isolated (PG_movable_ops_isolated in v6.17). */
export const ISOLATED = 1 << PG.isolated;
/** The mask of PG_locked. */
export const LOCKED = 1 << PG.locked;

/** Number of real page-flag bits; bits above hold the owner id. */
export const NR_PAGEFLAGS = 22;
/** Mask of all page-flag bits. */
export const PAGEFLAGS_MASK = (1 << NR_PAGEFLAGS) - 1;
/** Shift of the owner id inside the flags word. */
export const OWNER_SHIFT = 24;

/** Names printed by dump_page, by bit (the canonical name of aliased bits). */
export const FLAG_NAMES: readonly string[] = [
  'locked',
  'writeback',
  'referenced',
  'uptodate',
  'dirty',
  'lru',
  'head',
  'waiters',
  'active',
  'workingset',
  'owner_priv_1',
  'owner_2',
  'arch_1',
  'reserved',
  'private',
  'private_2',
  'reclaim',
  'swapbacked',
  'unevictable',
  'mlocked',
  'hwpoison',
  'slab',
];

/**
 * Flags whose presence at free time makes a "bad page" (PAGE_FLAGS_CHECK_AT_FREE, v6.x;
 * spec compaction-by-profile T18).
 */
export const FLAGS_CHECK_AT_FREE =
  (1 << PG.locked) |
  (1 << PG.lru) |
  (1 << PG.active) |
  (1 << PG.private) |
  (1 << PG.private_2) |
  (1 << PG.writeback) |
  (1 << PG.reserved) |
  (1 << PG.unevictable) |
  (1 << PG.mlocked) |
  (1 << PG.slab);

/**
 * Page types stored in the top byte of the `_mapcount` / `page_type` word
 * (`enum pagetype`, include/linux/page-flags.h). A word whose top byte is below
 * {@link PAGE_TYPE_BASE} holds a mapcount (biased by -1) instead.
 */
export const PGTY = {
  buddy: 0xf0,
  offline: 0xf1,
  table: 0xf2,
  guard: 0xf3,
  hugetlb: 0xf4,
  slab: 0xf5,
  zsmalloc: 0xf6,
  unaccepted: 0xf7,
} as const;

/** Smallest top byte that means "page type" rather than mapcount. */
export const PAGE_TYPE_BASE = 0xf0;

/** Name of a page type byte, as dump_page prints it. */
export const PAGE_TYPE_NAMES: Readonly<Record<number, string>> = {
  240: 'buddy',
  241: 'offline',
  242: 'table',
  243: 'guard',
  244: 'hugetlb',
  245: 'slab',
  246: 'zsmalloc',
  247: 'unaccepted',
};

/**
 * The kernel's capitalised name of a page type byte, as in `PageOffline` or "page type
 * Zsmalloc"; an unknown byte in hex.
 */
export function pageTypeName(pgty: number): string {
  const n = PAGE_TYPE_NAMES[pgty];
  return n ? n[0].toUpperCase() + n.slice(1) : `0x${pgty.toString(16)}`;
}

/** `mapping` low tag bits (spec §1.2). */
export const PAGE_MAPPING_ANON = 0x1;
/** The "non-LRU movable" tag (v4.8–v6.3); 0x3 means KSM. */
export const PAGE_MAPPING_MOVABLE = 0x2;
/** Both tag bits. */
export const PAGE_MAPPING_FLAGS = 0x3;
