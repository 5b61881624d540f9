/**
 * What a plugin or scenario module spec names, and importing it: a path against the
 * working directory, or a package name from the user's project and then from mops's own
 * installation, as Node's `import()` would find it.
 * @module
 */

import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { MopsError } from './errors.js';

/**
 * What `import()` takes for `spec`: a path resolves against the first of `bases` (default:
 * the working directory), a package name from each of `bases` in turn (the user's project,
 * a command's own installation), else from this package. A path starts with `.` or `/`, or
 * names a file or directory that exists (`examples/my-driver`); a directory stands for the
 * package in it, its entry point read from its package.json (`exports`, then `main`).
 * @param spec a package name or a path
 * @param bases the directories to resolve from, in order
 * @returns a `file:` URL, or `spec` itself when no base resolves the name
 */
export function moduleTarget(spec: string, bases: readonly string[] = [process.cwd()]): string {
  const path = resolve(bases[0] ?? process.cwd(), spec);
  if (spec.startsWith('.') || isAbsolute(spec) || existsSync(path))
    return pathToFileURL(packageEntry(path) ?? path).href;
  for (const b of bases) {
    try {
      return pathToFileURL(createRequire(join(b, 'package.json')).resolve(spec)).href;
    } catch {
      // Not installed there, or an ES-module-only package: its `exports` may offer only an
      // `import` condition, which require.resolve() does not see.
      const [name, sub] = packageAndSubpath(spec);
      // From its real directory, as Node loads a package (pnpm links it in).
      const dir = installedPackageDir(name, b);
      const entry = dir && packageEntry(realpathSync(dir), sub);
      if (entry) return pathToFileURL(entry).href;
    }
  }
  return spec;
}

/** A package spec split into its package name and the subpath after it (`.` for none). */
function packageAndSubpath(spec: string): [string, string] {
  const parts = spec.split('/');
  const n = spec.startsWith('@') ? 2 : 1;
  const rest = parts.slice(n).join('/');
  return [parts.slice(0, n).join('/'), rest ? `./${rest}` : '.'];
}

/**
 * The directory of the package `name` (a package name without a subpath) in the
 * node_modules of `base` or of a directory above it, as Node looks it up.
 */
function installedPackageDir(name: string, base: string): string | undefined {
  if (!/^(@[^/@.][^/]*\/)?[^/@.][^/]*$/.test(name)) return undefined;
  for (let dir = resolve(base); ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * The entry point of the package in directory `dir` (undefined when `dir` is not one), or
 * of its subpath `sub` (`./sub`, from `exports`, or the file itself without `exports`).
 */
function packageEntry(dir: string, sub = '.'): string | undefined {
  let pkg: { exports?: unknown; main?: unknown };
  try {
    if (!statSync(dir).isDirectory()) return undefined;
    pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  } catch {
    return undefined;
  }
  if (pkg.exports === undefined)
    return resolve(dir, sub !== '.' ? sub : typeof pkg.main === 'string' ? pkg.main : 'index.js');
  const rel = exportsTarget(pkg.exports, sub);
  if (rel !== undefined) return resolve(dir, rel);
  return sub === '.' && typeof pkg.main === 'string' ? resolve(dir, pkg.main) : undefined;
}

/** The conditions an `import()` from Node matches, in an `exports` condition object. */
const IMPORT_CONDITIONS = new Set(['node', 'import', 'module-sync', 'default']);

/**
 * The target of an `exports` value for an `import()`: a string; the first of an array that
 * gives one; or, in a condition object, the first key in its own order that Node matches.
 */
function conditionTarget(t: unknown): string | undefined {
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    for (const x of t) {
      const r = conditionTarget(x);
      if (r !== undefined) return r;
    }
    return undefined;
  }
  if (t === null || typeof t !== 'object') return undefined;
  for (const [k, v] of Object.entries(t)) if (IMPORT_CONDITIONS.has(k)) return conditionTarget(v);
  return undefined;
}

/**
 * What a package's `exports` maps subpath `sub` (`.` or `./x`) to: the exact key, else the
 * pattern (one `*`) with the longest prefix that matches, its `*` replaced in the target.
 */
function exportsTarget(exports: unknown, sub: string): string | undefined {
  const map =
    exports !== null &&
    typeof exports === 'object' &&
    !Array.isArray(exports) &&
    Object.keys(exports).some((k) => k.startsWith('.'))
      ? (exports as Record<string, unknown>)
      : { '.': exports };
  if (sub in map) return conditionTarget(map[sub]);
  let best: { key: string; match: string } | undefined;
  for (const key of Object.keys(map)) {
    const star = key.indexOf('*');
    if (star < 0) continue;
    const [pre, post] = [key.slice(0, star), key.slice(star + 1)];
    if (sub.length < key.length - 1 || !sub.startsWith(pre) || !sub.endsWith(post)) continue;
    if (!best || pre.length > best.key.indexOf('*'))
      best = { key, match: sub.slice(pre.length, sub.length - post.length) };
  }
  const t = best && conditionTarget(map[best.key]);
  return best && t?.replaceAll('*', best.match);
}

/**
 * Imports the module `spec` names (see {@link moduleTarget}). When it cannot be loaded,
 * throws what `fail` makes of the first line of the reason.
 * @param spec a package name or a path
 * @param fail makes the error to throw from the reason the import failed
 * @param bases the directories to resolve from, in order
 * @returns the module's namespace
 */
export async function importModule(
  spec: string,
  fail: (reason: string) => MopsError,
  bases: readonly string[] = [process.cwd()],
): Promise<Record<string, unknown>> {
  try {
    return (await import(moduleTarget(spec, bases))) as Record<string, unknown>;
  } catch (e) {
    throw fail(e instanceof Error ? (e.message.split('\n')[0] ?? '') : String(e));
  }
}
