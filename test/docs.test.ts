/**
 * The documentation's references: every § section the sources cite (the API docs are made
 * from their comments) is one docs/protocol.md lists, directly or in a range.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

/** The sections docs/protocol.md lists: each `§x.y` it names, and each of a range `§a – §b`. */
function listed(text: string): Set<string> {
  const out = new Set(text.match(/§\d+(\.\d+)?[a-f]?/g) ?? []);
  for (const [, a, b] of text.matchAll(/§(\d+(?:\.\d+)?[a-f]?) – §(\d+(?:\.\d+)?[a-f]?)/g)) {
    const [pa, na] = [a.replace(/[\d]+$|[a-f]$/, ''), a.slice(-1)];
    const last = b.slice(-1);
    if (/[a-f]/.test(na))
      for (let c = na.charCodeAt(0); c <= last.charCodeAt(0); c++)
        out.add(`§${pa}${String.fromCharCode(c)}`);
    else
      for (let n = Number(a.split('.')[1]); n <= Number(b.split('.')[1]); n++)
        out.add(`§${a.split('.')[0]}.${n}`);
  }
  return out;
}

describe('section references', () => {
  it('every § the sources cite is listed in docs/protocol.md', () => {
    const docs = listed(readFileSync(join(root, 'docs/protocol.md'), 'utf8'));
    const dirs = ['packages', 'plugins'].flatMap((d) =>
      readdirSync(join(root, d)).map((p) => join(root, d, p, 'src')),
    );
    const missing = new Map<string, string>();
    for (const file of dirs.flatMap(sources))
      for (const ref of readFileSync(file, 'utf8').match(/§\d+(\.\d+)?[a-f]?/g) ?? [])
        if (!docs.has(ref)) missing.set(ref, file.slice(root.length));
    expect(Object.fromEntries(missing)).toEqual({});
  });
});
