/**
 * Which `--sysctl` settings a command's run can read: a setting nothing in the run reads
 * gets a warning on standard error, saying what would read it, rather than leaving a
 * command's output unchanged without a word.
 *
 * Who reads each (mm/page_alloc.c, mm/compaction.c):
 * - `min_free_kbytes`: the watermarks, of every allocation and every compaction for an order.
 * - `watermark_boost_factor`: an allocation that falls back to another migratetype's
 *   pageblock boosts the zone's watermarks (boost_watermark()); kswapd takes the boost back
 *   and wakes kcompactd for pageblock_order. compact_memory reads no watermark.
 * - `defrag_mode`: allocations avoid falling back (ALLOC_NOFRAGMENT); kcompactd and any
 *   compaction for an order but direct compaction work to the high watermark in whole free
 *   pageblocks. compact_memory reads neither.
 * - `compaction_proactiveness`: kcompactd's proactive checks, and nothing else.
 * - `extfrag_threshold`: compaction_suitable() for an order above PAGE_ALLOC_COSTLY_ORDER
 *   (v4.8: any order), through fragmentation_index(); never for compact_memory.
 * - `compact_unevictable_allowed`: whether compaction isolates unevictable LRU pages; the
 *   pages of mops are movable_ops pages, isolated either way (isolate_migratepages_block()
 *   takes them before its LRU checks). compaction_test checks it as its prerequisite.
 * @module
 */

import { type Machine, PAGE_ALLOC_COSTLY_ORDER, suitabilityReadsExtfrag } from '@mops/core';

/** What a command's run does that may read a sysctl. */
export interface SysctlReaders {
  /** The command, as the warnings name it. */
  readonly command: 'compact' | 'proc' | 'compaction-test';
  /** The order of a compaction run for an order (-1: compact_memory), when one runs. */
  readonly order?: number;
  /** The order of high-order allocations that may enter direct compaction, when some are made. */
  readonly allocOrder?: number;
  /** Whether kcompactd runs. */
  readonly kcompactd?: boolean;
}

/** The sysctl names `specs` (`vm.name=value`, the `vm.` optional) set, in order, once each. */
function names(specs: readonly string[]): string[] {
  return [...new Set(specs.map((s) => s.trim().replace(/^vm\./, '').split('=')[0]))];
}

/**
 * A warning for each sysctl of `specs` the run `r` describes cannot read, saying what
 * would; none for a sysctl it reads. Call it with the machine built (`specs` checked).
 */
export function inertSysctlWarnings(
  m: Machine,
  specs: readonly string[],
  r: SysctlReaders,
): string[] {
  const era = m.profile.compaction.suitability;
  // Whether compaction for an order whose suitability reads the fragmentation index runs:
  // --order N, the allocations' direct compaction, or kcompactd's work for pageblock_order.
  const suitableOrder = (o: number | undefined) =>
    o !== undefined && o > 0 && suitabilityReadsExtfrag(era, o);
  const readsExtfrag = suitableOrder(r.order) || suitableOrder(r.allocOrder) || r.kcompactd;
  // Whether anything but the workload's allocations reads the watermarks or defrag_mode:
  // compaction for an order, high-order allocations, kcompactd.
  const onlyCompactMemory =
    r.command === 'compact' && r.order === -1 && r.allocOrder === undefined && !r.kcompactd;
  const onlyWhere =
    r.command === 'compact'
      ? 'compact --kcompactd SECONDS runs them'
      : `${r.command} runs no kcompactd; compact --kcompactd SECONDS does`;
  const out: string[] = [];
  for (const name of names(specs)) {
    const vm = `--sysctl vm.${name}`;
    switch (name) {
      case 'compaction_proactiveness':
        if (m.profile.compaction.proactive === 'none')
          out.push(`${vm} has no effect in ${m.profile.name}, which has no proactive compaction`);
        else if (!r.kcompactd)
          out.push(
            `${vm} has no effect in ${r.command}${r.command === 'compact' ? ' without --kcompactd' : ''}: only kcompactd's proactive checks read it; ${onlyWhere}`,
          );
        break;
      case 'extfrag_threshold':
        if (!readsExtfrag)
          out.push(
            `${vm} has no effect in ${r.command}${r.command === 'compact' ? ` ${r.order === -1 ? 'with compact_memory (--order -1)' : `--order ${r.order}`}` : ''}: only compaction for an order above ${PAGE_ALLOC_COSTLY_ORDER}${era === 'v4.8' ? ' (in v4.8, any order above 0)' : ''} reads it (compaction_suitable()'s fragmentation index): compact --order N, --alloc ORDERxN or --kcompactd SECONDS`,
          );
        break;
      case 'compact_unevictable_allowed':
        if (r.command !== 'compaction-test')
          out.push(
            `${vm} has no effect in ${r.command}: it decides whether compaction isolates unevictable (mlocked) LRU pages, and the pages here are movable_ops pages, which compaction isolates either way; compaction-test checks it as its prerequisite`,
          );
        break;
      case 'watermark_boost_factor':
        if (onlyCompactMemory)
          out.push(
            `${vm} does not act on compact_memory (--order -1), which reads no watermark: here it only boosts the watermarks when the workload's allocations fall back; --kcompactd SECONDS (kswapd takes a boost back and wakes kcompactd), --alloc ORDERxN and --order N compact with it`,
          );
        break;
      case 'defrag_mode':
        if (onlyCompactMemory)
          out.push(
            `${vm} does not act on compact_memory (--order -1): here it only keeps the workload's allocations from falling back; --kcompactd SECONDS and --order N (which then work to the high watermark in whole free pageblocks) and --alloc ORDERxN compact with it`,
          );
        break;
    }
  }
  return out;
}
