/**
 * A filter as the kernel reads it: bytes. tracefs gets the UTF-8 bytes written to the
 * `filter` file, and the parser walks them with the kernel's <linux/ctype.h>, whose table
 * (lib/ctype.c) classifies the Latin-1 range too: byte 0xA0 is a space, bytes 0xC0-0xFF
 * (but 0xD7 and 0xF7) are letters. Every offset the parser records, and so every caret, is
 * a byte offset.
 *
 * The parser works on a "byte string": a JS string with one character (code 0-255) per byte.
 * @module
 */

const UTF8 = new TextEncoder();
const UTF8_DECODER = new TextDecoder();

/** Whether `s` is all ASCII, where a character is a byte. */
const isAscii = (s: string): boolean => /^[\0-\x7f]*$/.test(s);

/** `text` as the bytes the kernel sees: its UTF-8 encoding, one character per byte. */
export function kernelBytes(text: string): string {
  if (isAscii(text)) return text;
  let out = '';
  for (const b of UTF8.encode(text)) out += String.fromCharCode(b);
  return out;
}

/**
 * What the kernel compares of a string value: its bytes up to the first NUL, as a C string
 * holds them (a `char[]` field, current->comm), one character per byte. An ASCII value with
 * no NUL, the usual case, is returned as it is, scanned once and never encoded.
 */
export function cStringBytes(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0) return s.slice(0, i);
    if (c > 0x7f) {
      const nul = s.indexOf('\0', i);
      return kernelBytes(nul < 0 ? s : s.slice(0, nul));
    }
  }
  return s;
}

/** The text a byte string holds, decoded as UTF-8 (a cut or bad sequence reads as U+FFFD). */
export function fromKernelBytes(bytes: string): string {
  if (isAscii(bytes)) return bytes;
  return UTF8_DECODER.decode(Uint8Array.from(bytes, (c) => c.charCodeAt(0)));
}

/** isspace(): `\t` to `\r`, the space, and Latin-1's no-break space (0xA0). */
export function isSpace(c: string | undefined): boolean {
  if (c === undefined) return false;
  const b = c.charCodeAt(0);
  return b === 0x20 || (b >= 0x09 && b <= 0x0d) || b === 0xa0;
}

/** isdigit(): `0` to `9`. */
export function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

/** isalnum(): ASCII letters and digits, and Latin-1's letters (0xC0-0xFF but 0xD7, 0xF7). */
export function isAlnum(c: string | undefined): boolean {
  if (c === undefined) return false;
  const b = c.charCodeAt(0);
  if (b >= 0xc0) return b !== 0xd7 && b !== 0xf7 && b <= 0xff;
  return isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
