/**
 * The kernel selftest tools/testing/selftests/mm/compaction_test.c, its method and pass
 * criterion (spec §10), on an emulated machine, with movable filler pages standing for the
 * test's locked user pages.
 * @module
 */

import { __GFP, GFP } from '../buddy/gfp.js';
import type { Machine } from '../machine.js';
import { PAGE_SIZE, pageblock_order } from '../memory/constants.js';
import { createMovableFiller } from './movable_filler.js';

/** What {@link compactionTest} measured. */
export interface CompactionTestResult {
  /** MemFree at the start, in kB. */
  readonly memFreeKb: number;
  /** Hugepagesize, in kB (2048). */
  readonly hugepageKb: number;
  /** Huge pages requested: 80 % of MemFree / Hugepagesize / 2. */
  readonly requested: number;
  /** Huge pages the kernel managed to allocate. */
  readonly allocated: number;
  /**
   * The selftest's `int compaction_index`: 80 % of MemFree (truncated to whole kB, as the
   * test stores it in an unsigned long) divided by allocated · Hugepagesize in integer
   * arithmetic; Infinity when nothing was allocated.
   */
  readonly compactionIndex: number;
  /**
   * The selftest's verdict: at least one huge page and a compaction index of at most 3 (in
   * integer division: huge pages worth a quarter of 80 % of MemFree or less fail).
   */
  readonly passed: boolean;
  /**
   * The test's messages, one per ksft_print_msg(); a message of two lines (the "Less than
   * 1/N" error) holds a newline, and only its first line gets the `# ` prefix.
   */
  readonly log: string[];
}

/** Options of {@link compactionTest}. */
export interface CompactionTestOptions {
  /**
   * Interleave the pages of consecutive chunks page by page, as two tasks faulting at once
   * would (default false: each 100 MiB chunk is faulted in one go and lies mostly
   * contiguous, as in the selftest). Interleaving leaves a checkerboard of locked pages,
   * a much harder case for compaction.
   */
  readonly interleave?: boolean;
  /** Chunk size in pages (default 100 MiB, at most a tenth of what is filled). */
  readonly chunkPages?: number;
}

/** A chunk's size for the log: MiB, with a decimal when not whole. */
function chunkText(pages: number): string {
  const mib = (pages * PAGE_SIZE) / 2 ** 20;
  return Number.isInteger(mib) ? `${mib} MiB` : `${mib.toFixed(1)} MiB`;
}

/**
 * Fills 80 % of free memory with "locked" pages in chunks, frees every other chunk (the
 * last one filled, then every second one before it, as the selftest unmaps them), then
 * asks for half of 80 % of MemFree as huge pages (order-9 allocations, each free to use
 * direct compaction) and applies the selftest's criterion.
 * @param m the machine, best fresh from createMachine
 * @param opts chunk size, and whether to interleave the chunks
 * @returns what was measured, the verdict and the selftest's log
 * @throws {@link MopsError} `E_HALTED` on a halted machine
 */
export function compactionTest(m: Machine, opts: CompactionTestOptions = {}): CompactionTestResult {
  m.mem.assertRunning();
  const log: string[] = [];
  const freePages = m.mem.nrFreePages();
  const memFreeKb = (freePages * PAGE_SIZE) / 1024;
  const hugepageKb = (PAGE_SIZE << pageblock_order) / 1024;
  const filler = createMovableFiller(m);
  const target = Math.floor(freePages * 0.8);
  // Every other chunk (or, interleaved, every other page) is freed afterwards.
  const freed: number[] = [];
  let n = 0;
  // The selftest's 100 MiB chunks; on a machine where 80 % of free memory is under 1000 MiB,
  // a tenth of it, so that there still are chunks to free every other one of.
  const chunk = opts.chunkPages ?? Math.max(1, Math.min(25600, Math.floor(target / 10)));
  if (!opts.interleave) {
    const chunks: number[][] = [];
    while (n < target) {
      const got = filler.alloc(Math.min(chunk, target - n));
      if (got.length === 0) break;
      chunks.push(got);
      n += got.length;
    }
    // The selftest pushes each mapping onto the head of its list and unmaps from the head,
    // one entry unmapped, the next skipped: the last chunk mapped goes first, then every
    // other one going back (with an odd count, the first chunk too).
    for (let c = chunks.length - 1; c >= 0; c -= 2) for (const p of chunks[c]) freed.push(p);
  } else {
    for (; n < target; n++) {
      const got = filler.alloc(1);
      if (got.length === 0) break;
      if (n % 2 === 1) freed.push(got[0]);
    }
  }
  log.push(`MemFree: ${memFreeKb} kB, Hugepagesize: ${hugepageKb} kB`);
  log.push(
    `locked ${n} pages (${Math.floor((n * PAGE_SIZE) / 2 ** 20)} MiB) ${
      opts.interleave
        ? 'in chunks interleaved page by page, freeing every other page'
        : `in chunks of ${chunkText(chunk)}${chunk === 25600 || opts.chunkPages !== undefined ? '' : ' (the selftest maps 100 MiB; a tenth of the 80 % on this machine)'}, freeing every other chunk`
    }`,
  );
  for (const p of freed) filler.free(p);
  const memFreePrime = Math.floor(memFreeKb * 0.8);
  // On a machine too small for one huge page the selftest writes 0 and reads 0 back.
  const requested = Math.floor(memFreePrime / hugepageKb / 2);
  const huge: number[] = [];
  const gfp = GFP.HIGHUSER_MOVABLE | __GFP.COMP | __GFP.NOWARN;
  while (huge.length < requested) {
    const pfn = m.allocPages(gfp, pageblock_order);
    if (pfn < 0) break;
    huge.push(pfn);
  }
  const allocated = huge.length;
  const compactionIndex = allocated
    ? Math.floor(memFreePrime / (allocated * hugepageKb))
    : Number.POSITIVE_INFINITY;
  const passed = allocated >= 1 && compactionIndex <= 3;
  log.push(
    `requested ${requested} huge pages, allocated ${allocated}, compaction index ${compactionIndex === Number.POSITIVE_INFINITY ? 'inf' : compactionIndex}`,
  );
  if (allocated === 0) log.push('ERROR: No memory is available as huge pages');
  else {
    log.push(`Number of huge pages allocated = ${allocated}`);
    // ksft_print_msg() of "…is available\nas huge pages\n": the second line comes out bare.
    if (!passed)
      log.push(`ERROR: Less than 1/${compactionIndex} of memory is available\nas huge pages`);
  }
  for (const p of huge) m.putPage(p);
  filler.freeAll();
  return { memFreeKb, hugepageKb, requested, allocated, compactionIndex, passed, log };
}
