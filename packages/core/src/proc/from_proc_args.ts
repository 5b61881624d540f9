/**
 * The arguments of {@link machineFromProc}: where the /proc texts come from (a directory or
 * the texts themselves) and its options, checked before anything is read, so a misuse says
 * so (E_USAGE, or E_CONFIG for an option as createMachine says it) rather than failing deep
 * inside as a TypeError or reading somewhere else.
 * @module
 */

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { checkOptionsObject, MopsError, valueKind } from '../errors.js';
import type { ProfileName } from '../profile.js';

/** The /proc files {@link machineFromProc} reads, as text. */
export interface ProcTexts {
  /** /proc/buddyinfo (required). */
  readonly buddyinfo: string;
  /** /proc/pagetypeinfo (required). */
  readonly pagetypeinfo: string;
  /** /proc/zoneinfo: zone starts, spans, managed pages, watermarks and zone counters. */
  readonly zoneinfo?: string;
  /** /proc/vmstat: event and node counters. */
  readonly vmstat?: string;
}

/** Options of {@link machineFromProc}. */
export interface FromProcOptions {
  /** Protocol profile of the machine (default `'v6.3'`). */
  profile?: ProfileName;
  /** Seed of the machine (default 1). */
  seed?: number;
  /**
   * vm.min_free_kbytes. Default: the value that reproduces zoneinfo's `min` watermarks when
   * zoneinfo is given, else the kernel's default for the machine's size.
   */
  minFreeKbytes?: number;
  /**
   * Copy the counters of vmstat (events, node stats) and zoneinfo (zone stats, per-node
   * stats) into the machine (default true).
   */
  counters?: boolean;
  /**
   * Keep page contents (default false: metadata only). Needed by plugins that store data in
   * pages, such as zsmalloc.
   */
  contents?: boolean;
  /**
   * Import the allocated pages of MIGRATE_MOVABLE pageblocks as movable pages compaction can
   * migrate: order-0 pages of the built-in filler driver (owner `'filler'`, see
   * createMovableFiller), the allocated pages of every other pageblock staying unmovable
   * (owner `'imported'`). The free blocks and pageblock types are the same either way, so
   * buddyinfo and pagetypeinfo still print the sample back. Default false: every allocated
   * page is unmovable, as /proc cannot tell what a page holds, and machines built before
   * this option keep their results (owners, what compaction migrates, its counters and
   * events). In v6.17 the filler holds page type Offline's movable_ops, which the balloon
   * plugin also needs: the two cannot share a machine.
   */
  movable?: boolean;
  /**
   * Receives, one line each, what the machine prints back differently from the sample: a
   * zone whose `present` differs from zoneinfo's, zoneinfo zone counters and vmstat
   * counters the release does not print (not imported), vmstat counters printed with other
   * values (those mops computes, such as `nr_dirty_threshold`, or keeps without the state
   * behind them). Nothing is called when the files print back as they are.
   */
  onNote?: (note: string) => void;
}

const FILES = ['buddyinfo', 'pagetypeinfo', 'zoneinfo', 'vmstat'] as const;
const REQUIRED: readonly string[] = ['buddyinfo', 'pagetypeinfo'];

/** The fields of {@link FromProcOptions}. */
const OPTION_KEYS: readonly string[] = [
  'profile',
  'seed',
  'minFreeKbytes',
  'counters',
  'contents',
  'movable',
  'onNote',
];

const usage = (message: string, field: string) =>
  new MopsError('E_USAGE', `machineFromProc: ${message}`, field);

/**
 * Checks the options of {@link machineFromProc}: an object (E_USAGE), whose keys are
 * options (E_CONFIG: a misspelt one would silently leave its default, as createMachine
 * says), with `counters`, `contents` and `movable` true, false or undefined (E_CONFIG).
 * `profile`, `seed` and `minFreeKbytes` are checked by createMachine, with its messages.
 */
export function checkFromProcOptions(options: unknown): asserts options is FromProcOptions {
  checkOptionsObject(options, 'machineFromProc');
  for (const key of Object.keys(options as object))
    if (!OPTION_KEYS.includes(key))
      throw new MopsError(
        'E_CONFIG',
        `machineFromProc: unknown option '${key}'; the options are ${OPTION_KEYS.join(', ')}`,
        key,
      );
  for (const key of ['counters', 'contents', 'movable'] as const) {
    const v = (options as FromProcOptions)[key];
    if (v !== undefined && typeof v !== 'boolean')
      throw new MopsError('E_CONFIG', `${key}: must be true or false, got ${valueKind(v)}`, key);
  }
  const onNote = (options as FromProcOptions).onNote;
  if (onNote !== undefined && typeof onNote !== 'function')
    throw new MopsError(
      'E_CONFIG',
      `onNote: must be a function (note: string) => void, got ${valueKind(onNote)}`,
      'onNote',
    );
}

/**
 * The texts `src` names: a directory (a path or a file: URL) holding `buddyinfo` and
 * `pagetypeinfo` (and optionally `zoneinfo` and `vmstat`), or the texts themselves. Anything
 * else is E_USAGE naming what was given; a missing or unreadable required file is
 * E_PROC_PARSE naming it.
 */
export function loadTexts(src: unknown): ProcTexts {
  if (typeof src === 'string') {
    // '' would read /buddyinfo at the filesystem root.
    if (src === '') throw usage('the directory path is empty', 'src');
    return readDir(src);
  }
  if (src instanceof URL) {
    if (src.protocol !== 'file:')
      throw usage(`a URL must be a file: URL, got ${valueKind(src.href)}`, 'src');
    let dir: string;
    try {
      dir = fileURLToPath(src);
    } catch (e) {
      throw usage(`cannot read ${valueKind(src.href)} as a path (${(e as Error).message})`, 'src');
    }
    return readDir(dir);
  }
  if (typeof src !== 'object' || src === null || Array.isArray(src))
    throw usage(
      `the first argument must be a directory (a path or a file: URL) or the texts { buddyinfo, pagetypeinfo, zoneinfo?, vmstat? }, got ${valueKind(src)}`,
      'src',
    );
  const texts = src as Record<string, unknown>;
  // A misspelt name would silently leave that file out.
  for (const key of Object.keys(texts))
    if (!(FILES as readonly string[]).includes(key))
      throw usage(`texts: unknown file '${key}'; the files are ${FILES.join(', ')}`, key);
  for (const f of FILES) {
    const v = texts[f];
    if (typeof v === 'string' || (v === undefined && !REQUIRED.includes(f))) continue;
    throw usage(
      `texts.${f} must be a string (the text of /proc/${f}${REQUIRED.includes(f) ? '' : ', or left out'}), got ${valueKind(v)}`,
      f,
    );
  }
  return texts as unknown as ProcTexts;
}

/** Reads the files of a directory; buddyinfo and pagetypeinfo must be there. */
function readDir(dir: string): ProcTexts {
  const out: Record<string, string> = {};
  for (const f of FILES) {
    const path = `${dir.replace(/\/+$/, '')}/${f}`;
    if (!existsSync(path)) {
      if (REQUIRED.includes(f))
        throw new MopsError(
          'E_PROC_PARSE',
          `${path}: no such file (buddyinfo and pagetypeinfo are required)`,
          f,
        );
      continue;
    }
    try {
      out[f] = readFileSync(path, 'utf8');
    } catch (e) {
      throw new MopsError('E_PROC_PARSE', `${path}: cannot read it (${(e as Error).message})`, f);
    }
  }
  return out as unknown as ProcTexts;
}
