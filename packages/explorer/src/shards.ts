/**
 * Splitting a random or PCT exploration's seeds: shards (`--shard i/n`), the seed of each run
 * (32-bit, wrapping), and merging the shards' results.
 * @module
 */

import { valueKind } from '@mops/core';
import type { ExploreResult } from './explore.js';
import { option, usage } from './usage.js';

/**
 * Parses `i/n` (1 ≤ i ≤ n ≤ `Number.MAX_SAFE_INTEGER`, where `s mod n` is exact);
 * `MopsError('E_USAGE')` otherwise.
 */
export function parseShard(shard: string): { index: number; count: number } {
  if (typeof shard !== 'string')
    throw usage(
      `${option('shard')} must be a string i/n, e.g. 1/4, got ${valueKind(shard)}`,
      'shard',
    );
  const m = /^(\d+)\/(\d+)$/.exec(shard.trim());
  const index = m ? Number(m[1]) : Number.NaN;
  const count = m ? Number(m[2]) : Number.NaN;
  if (!m || count < 1 || index < 1 || index > count)
    throw usage(`${option('shard')} ${shard}: expected i/n with 1 ≤ i ≤ n, e.g. 1/4`, 'shard');
  if (!Number.isSafeInteger(count))
    throw usage(
      `${option('shard')} ${shard}: n must be at most ${Number.MAX_SAFE_INTEGER} (2^53−1)`,
      'shard',
    );
  return { index, count };
}

/** Whether seed `s` belongs to shard `index`/`count` (s mod count = index − 1). */
export function inShard(s: number, index: number, count: number): boolean {
  // Exact for safe integers: the remainder is within (−count, count), and so is the sum.
  const r = s % count;
  return (r < 0 ? r + count : r) === index - 1;
}

/** Seeds are the PRNG's: 32-bit integers. */
const SEEDS = 2 ** 32;

/**
 * The seed of run `k` (0, 1, …) of a random or PCT exploration from seed `first`:
 * `first + k`, wrapped from 2^31−1 round to −2^31 as the PRNG reads a seed (a 32-bit
 * integer), so every seed a run takes, and a report names, is one the `seed` option takes
 * back. A range cut into pieces (`first`, then `nthSeed(first, n)` …) takes the same seeds.
 */
export function nthSeed(first: number, k: number): number {
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(k) || k < 0)
    throw usage(
      `nthSeed: takes a first seed and a run number k ≥ 0, both integers, got ${valueKind(first)} and ${valueKind(k)}`,
      'seed',
    );
  return (first + (k % SEEDS)) | 0;
}

/** How many runs after `first` the run of seed `s` comes (modulo the 2^32 seeds). */
function seedOffset(s: number, first: number): number {
  return (((s - first) % SEEDS) + SEEDS) % SEEDS;
}

/**
 * Combines the results of the shards `1/n … n/n` of one exploration (same scenario, variant,
 * profile, strategy, seed and runs) into the result of the whole seed range: the failure
 * whose seed comes first from the first seed wins — the one an unsharded run stops at; the
 * lowest seed, unless the range wraps past 2^31−1 (see {@link nthSeed}) — and `schedules` is
 * the total. `MopsError('E_USAGE')` when the results do not belong together, or when a shard
 * is missing: some of the shards say nothing of the seeds of the others, so their merge
 * would pass for the whole range's answer.
 */
export function mergeShardResults(results: readonly ExploreResult[]): ExploreResult {
  if (!Array.isArray(results))
    throw usage(
      `mergeShardResults takes an array of ExploreResult, got ${valueKind(results)}`,
      'results',
    );
  const bad = results.findIndex((r) => typeof r !== 'object' || r === null);
  if (bad >= 0)
    throw usage(
      `mergeShardResults takes an array of ExploreResult; item ${bad} is ${valueKind(results[bad])}`,
      'results',
    );
  if (results.length === 0) throw usage('no shard results to merge', 'shard');
  const [first] = results;
  for (const r of results)
    if (
      r.scenario !== first.scenario ||
      r.variant !== first.variant ||
      r.profile !== first.profile ||
      r.strategy !== first.strategy ||
      r.strategy === 'dfs'
    )
      throw usage(
        `shard results of ${r.scenario}/${r.variant}/${r.profile}/${r.strategy} and ${first.scenario}/${first.variant}/${first.profile}/${first.strategy} cannot be merged (random or pct runs of one exploration only)`,
        'shard',
      );
  // Shards of one split: the same N, each I once, the same PCT depth.
  const split = (r: ExploreResult) => (r.shard === undefined ? undefined : parseShard(r.shard));
  const n = split(first)?.count;
  const seen = new Set<number>();
  for (const r of results) {
    const s = split(r);
    if (
      !s ||
      s.count !== n ||
      seen.has(s.index) ||
      r.depth !== first.depth ||
      r.firstSeed !== first.firstSeed ||
      r.runs !== first.runs
    )
      throw usage(
        `shard ${r.shard ?? '(none)'} does not belong with shard ${first.shard ?? '(none)'}: merge the results of --shard 1/N … N/N of one exploration (same N, each shard once, the same --seed, --runs and --depth)`,
        'shard',
      );
    seen.add(s.index);
  }
  // Only every shard together covers the range: a part of them answers for its seeds only.
  const total = n ?? 1;
  if (seen.size !== total) {
    const missing: number[] = [];
    for (let i = 1; i <= total && missing.length < 5; i++) if (!seen.has(i)) missing.push(i);
    const more = total - seen.size > missing.length ? ', …' : '';
    throw usage(
      `${seen.size} of ${total} shards given: shard ${missing.map((i) => `${i}/${total}`).join(', ')}${more} missing; merge the results of --shard 1/${total} … ${total}/${total} of one exploration, each shard once`,
      'shard',
    );
  }
  const schedules = results.reduce((n, r) => n + r.schedules, 0);
  // The order the seeds ran in: from the first seed on (results that do not record it, from
  // an earlier explorer, by seed).
  const start = first.firstSeed;
  const order = (r: ExploreResult) =>
    start === undefined ? (r.seed ?? 0) : seedOffset(r.seed ?? 0, start);
  let best: ExploreResult | undefined;
  for (const r of results)
    if (r.failed && r.seed !== undefined && (best === undefined || order(r) < order(best)))
      best = r;
  const { shard: _shard, ...rest } = best ?? first;
  return best ? { ...rest, schedules } : { ...rest, failed: false, schedules };
}
