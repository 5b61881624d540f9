/**
 * How a `struct page *` prints with `%p`: its vmemmap address, raw or hashed.
 * @module
 */

/** How `%p` of a `struct page *` is printed. */
export type PointerStyle = 'raw' | 'hashed';

/** x86-64 `vmemmap_base` without KASLR: where `struct page` of pfn 0 lives. */
const VMEMMAP_BASE = 0xffffea0000000000n;
/** sizeof(struct page) on x86-64. */
const STRUCT_PAGE_SIZE = 64n;

/**
 * `%p` of `pfn_to_page(pfn)`: the struct page address in the vmemmap (`'raw'`, what the
 * `hash-ptr` trace option off prints), or a stable 32-bit hash of it zero-padded to 16
 * digits (`'hashed'`, the shape the kernel prints by default; the kernel's hash is keyed
 * by a boot-time random number, so the digits differ). A negative pfn is a NULL page.
 */
export function pagePointer(pfn: number, style: PointerStyle = 'raw'): string {
  if (pfn < 0) return '0000000000000000';
  const addr = VMEMMAP_BASE + BigInt(pfn) * STRUCT_PAGE_SIZE;
  if (style === 'raw') return addr.toString(16).padStart(16, '0');
  return hashedPointer(addr);
}

/**
 * `%p` of a non-NULL kernel address as printed by default: a stable 32-bit hash zero-padded
 * to 16 digits (FNV-1a over the address bytes, so runs stay byte-for-byte repeatable).
 */
export function hashedPointer(addr: bigint): string {
  let h = 0x811c9dc5;
  let a = addr;
  for (let i = 0; i < 8; i++) {
    h ^= Number(a & 0xffn);
    h = Math.imul(h, 0x01000193) >>> 0;
    a >>= 8n;
  }
  return h.toString(16).padStart(16, '0');
}
