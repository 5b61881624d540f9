/**
 * The kernel selftest compaction_test.c (tools/testing/selftests/vm/ up to v6.2,
 * tools/testing/selftests/mm/ from v6.3) on an emulated machine: its method, its pass
 * criterion (spec §10) and its output, in the form the profile's release ships
 * (`profile.compactionSelftest`), with movable filler pages standing for the test's locked
 * user pages. The test runs as one task, `compaction_test` on CPU 0, as the selftest's
 * process does: its page faults, its unmaps, its write to nr_hugepages and the direct
 * compaction each huge-page allocation does in the allocator's slow path all happen (and
 * trace) in that task.
 * @module
 */

import { __GFP, GFP } from '../buddy/gfp.js';
import type { SlowpathHook } from '../buddy/page_alloc.js';
import { allocPagesSlowpathCompact } from '../compaction/entry.js';
import { compactionState } from '../compaction/node_state.js';
import { MopsError, valueKind } from '../errors.js';
import type { Machine } from '../machine.js';
import { PAGE_SIZE, pageblock_order } from '../memory/constants.js';
import type { Profile } from '../profile.js';
import type { KernelGen } from '../sched/types.js';
import { createMovableFiller } from './movable_filler.js';

/** What {@link compactionTest} measured and what the release's selftest printed. */
export interface CompactionTestResult {
  /** MemFree at the start, in kB. */
  readonly memFreeKb: number;
  /** Hugepagesize, in kB (2048). */
  readonly hugepageKb: number;
  /**
   * What the test wrote to nr_hugepages: 100000 (the `'v4.8'` and `'v6.0'` forms: the
   * kernel allocates until its first failure), or half of 80 % of MemFree in huge pages
   * (`'v6.17'`). 0 when the test was skipped.
   */
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
   * The test did not run: its prerequisite, vm.compact_unevictable_allowed = 1, is not met.
   */
  readonly skipped: boolean;
  /**
   * The test's messages, in the order it prints them and worded as the release words them,
   * without TAP's `# ` prefix and without their final newline. The printf forms:
   * `No of huge pages allocated = N`, then on a failure `ERROR: Less that 1/N of memory is
   * available\nas huge pages` (on stderr) and `Not OK. Compaction test failed.`; the TAP
   * form: its ksft_print_msg() messages (`Number of huge pages allocated = N`, the
   * errors). A message of two lines holds a newline: ksft_print_msg() prefixes only the
   * first.
   */
  readonly log: string[];
  /** What the release's selftest writes to stdout, byte for byte. */
  readonly stdout: string;
  /** What it writes to stderr (the printf forms' error message), byte for byte. */
  readonly stderr: string;
  /**
   * Its exit status as a shell reports it: 0 for a pass; for a failure 1 (KSFT_FAIL, the
   * TAP form) or 255 (the printf forms return -1 from main()), and 136 (128 + SIGFPE) when
   * the printf forms divide by zero huge pages; for a skip KSFT_SKIP (4), or 0 in the
   * `'v4.8'` form.
   */
  readonly exitStatus: number;
  /**
   * mops's own lines, not the selftest's (print them apart from its output, e.g. on stderr
   * as `mops: …`): MemFree and Hugepagesize, how the memory was locked (and where that
   * departs from the selftest: a chunk smaller than its mapping on a small machine, the
   * interleaved mode), what was requested and the index, and why a printf form died.
   */
  readonly notes: string[];
}

/** Options of {@link compactionTest}. */
export interface CompactionTestOptions {
  /**
   * Interleave the pages of consecutive chunks page by page, as two tasks faulting at once
   * would (default false: each chunk is faulted in one go and lies mostly contiguous, as in
   * the selftest). Interleaving leaves a checkerboard of locked pages, a much harder case
   * for compaction.
   */
  readonly interleave?: boolean;
  /**
   * Chunk size in pages (default 100 MiB, at most a tenth of what is filled; the notes say
   * where that departs from the release's selftest).
   */
  readonly chunkPages?: number;
}

/** The selftest's process name, as trace lines show it (15 characters: all of it fits). */
const COMM = 'compaction_test';

/** kselftest.h's exit codes, and what a shell reports for `return -1` and for SIGFPE. */
const KSFT_PASS = 0;
const KSFT_FAIL = 1;
const KSFT_SKIP = 4;
const MAIN_RETURNS_MINUS_1 = 255;
const KILLED_BY_SIGFPE = 128 + 8;

/** What each form of the selftest does differently. */
interface SelftestForm {
  /** MAP_SIZE of the fill loop, in MiB (for the notes: mops fills 100 MiB chunks). */
  readonly mapMib: number;
  /** The count written to nr_hugepages; undefined: half of 80 % of MemFree in huge pages. */
  readonly request: number | undefined;
  /** Reports in TAP (ksft_*) rather than with printf(). */
  readonly tap: boolean;
  /** Exit status of a skipped run. */
  readonly skipStatus: number;
}

const FORMS: Readonly<Record<Profile['compactionSelftest'], SelftestForm>> = {
  'v4.8': { mapMib: 1, request: 100000, tap: false, skipStatus: KSFT_PASS },
  'v6.0': { mapMib: 100, request: 100000, tap: false, skipStatus: KSFT_SKIP },
  'v6.17': { mapMib: 100, request: undefined, tap: true, skipStatus: KSFT_SKIP },
};

/**
 * The gfp mask of a hugetlb pool allocation (alloc_fresh_huge_page_node() in v4.8,
 * alloc_pool_huge_page() and alloc_buddy_huge_page() in 6.x): htlb_alloc_mask()
 * (GFP_HIGHUSER_MOVABLE: x86's 2 MiB pages can migrate), __GFP_COMP, __GFP_NOWARN,
 * __GFP_THISNODE and __GFP_RETRY_MAYFAIL (__GFP_REPEAT in v4.8). With one node the fourth
 * changes nothing, and the fifth only lets the slow path retry after direct reclaim, which
 * mops does not model: the allocation tries direct compaction at ASYNC, then SYNC_LIGHT,
 * and fails.
 */
const HUGETLB_GFP =
  GFP.HIGHUSER_MOVABLE | __GFP.COMP | __GFP.NOWARN | __GFP.RETRY_MAYFAIL | __GFP.THISNODE;

/** The chunk mops fills in by default, in pages: 100 MiB. */
const CHUNK_PAGES = (100 * 2 ** 20) / PAGE_SIZE;

/**
 * Where the default chunk departs from the release's mapping, for the notes: a tenth of the
 * 80 % on a small machine; and in the `'v4.8'` form (1 MiB mappings) always, as mops lays a
 * chunk's pages out back to back: 1 MiB chunks would leave free blocks of exactly half a
 * pageblock, whose fragmentation index for a huge page (500 − 1000 / their number) is
 * always under vm.extfrag_threshold (500), so compaction_suitable() would never let
 * compaction run.
 */
function chunkDeparture(form: SelftestForm, chunk: number): string {
  const tenth = chunk !== CHUNK_PAGES ? '; a tenth of the 80 % on this machine' : '';
  if (form.mapMib !== 100)
    return ` (the selftest maps ${form.mapMib} MiB, which back to back would leave holes of half a pageblock that compaction_suitable() rejects${tenth})`;
  return tenth ? ` (the selftest maps 100 MiB${tenth})` : '';
}

/** A chunk's size for the notes: MiB, with a decimal when not whole. */
function chunkText(pages: number): string {
  const mib = (pages * PAGE_SIZE) / 2 ** 20;
  return Number.isInteger(mib) ? `${mib} MiB` : `${mib.toFixed(1)} MiB`;
}

/**
 * Fills 80 % of free memory with "locked" pages in chunks, frees every other chunk (the
 * last one filled, then every second one before it, as the selftest unmaps them), then
 * asks for huge pages (order-9 allocations, each free to use direct compaction), applies
 * the selftest's criterion and prints its verdict as the profile's release does. It runs
 * as the task `compaction_test` on CPU 0; direct compaction runs in that task, as it does
 * in the allocating process, when the machine's allocator has slow-path steps
 * (createMachine installs direct compaction; with `m.mem.slowpath` emptied the huge pages
 * come from the free lists alone).
 * @param m the machine, best fresh from createMachine
 * @param opts chunk size, and whether to interleave the chunks
 * @returns what was measured, the verdict, the selftest's output and mops's notes
 * @throws {@link MopsError} `E_HALTED` on a halted machine; `E_RANGE` naming `chunkPages`
 *   for a chunk that is not an integer ≥ 1; `E_STATE` when called from inside a task or
 *   with tasks live (the test needs the scheduler to itself)
 */
export function compactionTest(m: Machine, opts: CompactionTestOptions = {}): CompactionTestResult {
  m.mem.assertRunning();
  const chunkPages = opts?.chunkPages;
  if (chunkPages !== undefined && (!Number.isSafeInteger(chunkPages) || chunkPages < 1))
    throw new MopsError(
      'E_RANGE',
      `compaction_test: chunkPages must be an integer >= 1, got ${valueKind(chunkPages)}`,
      'chunkPages',
    );
  const s = m.sched;
  if (s.current !== undefined || s.tasks.length > 0)
    throw new MopsError(
      'E_STATE',
      `compaction_test runs as its own task and needs the scheduler to itself: call it from outside tasks with none live (${s.current ? `called from ${s.current.label}` : `${s.tasks.length} live`})`,
    );
  const task = s.spawn(COMM, () => selftest(m, opts), { cpu: 0 });
  return s.runToEnd(task);
}

/** The selftest's process: main() and check_compaction(). */
function* selftest(m: Machine, opts: CompactionTestOptions): KernelGen<CompactionTestResult> {
  const form = FORMS[m.profile.compactionSelftest];
  const freePages = m.mem.nrFreePages();
  const memFreeKb = (freePages * PAGE_SIZE) / 1024;
  const hugepageKb = (PAGE_SIZE << pageblock_order) / 1024;
  const notes = [`MemFree: ${memFreeKb} kB, Hugepagesize: ${hugepageKb} kB`];
  if (compactionState(m).sysctl.compactUnevictableAllowed !== 1)
    return skipReport(form, { memFreeKb, hugepageKb, notes });
  const filler = createMovableFiller(m);
  const target = Math.floor(freePages * 0.8);
  // Every other chunk (or, interleaved, every other page) is freed afterwards.
  const freed: number[] = [];
  let n = 0;
  // 100 MiB chunks; on a machine where that is more than a tenth of 80 % of free memory, a
  // tenth of it, so that there still are chunks to free every other one of.
  const chunk = opts.chunkPages ?? Math.max(1, Math.min(CHUNK_PAGES, Math.floor(target / 10)));
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
  const scaled = opts.chunkPages === undefined ? chunkDeparture(form, chunk) : '';
  notes.push(
    `locked ${n} pages (${Math.floor((n * PAGE_SIZE) / 2 ** 20)} MiB) ${
      opts.interleave
        ? 'in chunks interleaved page by page, freeing every other page'
        : `in chunks of ${chunkText(chunk)}${scaled}, freeing every other chunk`
    }`,
  );
  for (const p of freed) filler.free(p);
  // The process returns to user space between its system calls.
  if (m.sched.preemptible) yield { op: 'write_nr_hugepages' };
  const memFreePrime = Math.floor(memFreeKb * 0.8);
  // On a machine too small for one huge page the 6.15 form writes 0 and reads 0 back.
  const requested = form.request ?? Math.floor(memFreePrime / hugepageKb / 2);
  const huge = allocHugePages(m, requested);
  const allocated = huge.length;
  const compactionIndex = allocated
    ? Math.floor(memFreePrime / (allocated * hugepageKb))
    : Number.POSITIVE_INFINITY;
  const passed = allocated >= 1 && compactionIndex <= 3;
  notes.push(
    `requested ${requested} huge pages, allocated ${allocated}, compaction index ${compactionIndex === Number.POSITIVE_INFINITY ? 'inf' : compactionIndex}`,
  );
  for (const p of huge) m.putPage(p);
  filler.freeAll();
  const measured = { memFreeKb, hugepageKb, requested, allocated, compactionIndex, passed };
  return form.tap ? tapReport(measured, notes) : printfReport(measured, notes);
}

/**
 * Writing `count` to nr_hugepages: set_max_huge_pages() allocates one pool page after the
 * other and stops at the first failure. The slow path's direct compaction runs in the
 * calling task (see {@link directCompactInTask}) while the write lasts.
 */
function allocHugePages(m: Machine, count: number): number[] {
  const hooks = m.mem.slowpath;
  const hook = hooks.length > 0 ? directCompactInTask(m) : undefined;
  if (hook) hooks.unshift(hook);
  const huge: number[] = [];
  try {
    while (huge.length < count) {
      const pfn = m.allocPages(HUGETLB_GFP, pageblock_order);
      if (pfn < 0) break;
      huge.push(pfn);
    }
  } finally {
    const i = hook ? hooks.indexOf(hook) : -1;
    if (i >= 0) hooks.splice(i, 1);
  }
  return huge;
}

/**
 * The slow path's direct compactions ({@link allocPagesSlowpathCompact}) in the task that
 * allocates (PF_MEMALLOC set while each pass compacts): for the selftest's huge pages
 * (costly, __GFP_RETRY_MAYFAIL) ASYNC, then SYNC_LIGHT. The task runs alone, so the
 * compaction never has to wait for another task; it would be a lockup if it did.
 */
function directCompactInTask(m: Machine): SlowpathHook {
  return (gfp, order, allocFlags) => {
    const task = m.sched.current;
    if (task === undefined) return -1;
    const gen = allocPagesSlowpathCompact(m, { gfp, order, allocFlags });
    let r = gen.next();
    // Points come only when stepping by hand (sched.manual): the task goes straight on.
    for (; r.done !== true; r = gen.next())
      if (r.value.op === 'block') {
        // Ends the generator: its finally blocks run (PF_MEMALLOC is given back).
        gen.return(-1);
        throw new MopsError(
          'E_STATE',
          `compaction_test: direct compaction in ${task.label} blocked on ${(r.value as { what?: string }).what}, and no other task runs to wake it`,
        );
      }
    return r.value;
  };
}

/** The numbers every outcome reports. */
type Measured = Pick<
  CompactionTestResult,
  'memFreeKb' | 'hugepageKb' | 'requested' | 'allocated' | 'compactionIndex' | 'passed'
>;

/**
 * The printf forms (up to 6.7): `No of huge pages allocated = N` on stdout; on a failure
 * the error on stderr, `Not OK. Compaction test failed.` (no newline) and exit status 255.
 * With no huge page the index divides by zero first: SIGFPE, nothing printed.
 */
function printfReport(r: Measured, notes: string[]): CompactionTestResult {
  if (r.allocated === 0) {
    notes.push(
      'no huge page was allocated: the selftest divides by zero huge pages and SIGFPE kills it before it prints anything',
    );
    return report(r, notes, { log: [], stdout: '', stderr: '', exitStatus: KILLED_BY_SIGFPE });
  }
  const count = `No of huge pages allocated = ${r.allocated}`;
  if (r.passed) return report(r, notes, { log: [count], stdout: `${count}\n`, exitStatus: 0 });
  const error = `ERROR: Less that 1/${r.compactionIndex} of memory is available\nas huge pages`;
  const failed = 'Not OK. Compaction test failed.';
  return report(r, notes, {
    log: [count, error, failed],
    stdout: `${count}\n${failed}`,
    stderr: `${error}\n`,
    exitStatus: MAIN_RETURNS_MINUS_1,
  });
}

/**
 * The TAP form (6.8 on, with the messages of 6.10): header, plan, the ksft_print_msg()
 * messages, `ok 1 check_compaction` or `not ok 1 check_compaction`, the totals; exit
 * KSFT_PASS or KSFT_FAIL.
 */
function tapReport(r: Measured, notes: string[]): CompactionTestResult {
  const log =
    r.allocated === 0
      ? ['ERROR: No memory is available as huge pages']
      : [`Number of huge pages allocated = ${r.allocated}`];
  if (r.allocated > 0 && !r.passed)
    log.push(`ERROR: Less than 1/${r.compactionIndex} of memory is available\nas huge pages`);
  const ok = r.passed ? 1 : 0;
  const stdout =
    'TAP version 13\n1..1\n' +
    log.map((l) => `# ${l}\n`).join('') +
    `${r.passed ? 'ok' : 'not ok'} 1 check_compaction\n` +
    `# Totals: pass:${ok} fail:${1 - ok} xfail:0 xpass:0 skip:0 error:0\n`;
  return report(r, notes, { log, stdout, exitStatus: r.passed ? KSFT_PASS : KSFT_FAIL });
}

/** A skipped run: prereq() failed before anything was measured or locked. */
function skipReport(
  form: SelftestForm,
  r: { memFreeKb: number; hugepageKb: number; notes: string[] },
): CompactionTestResult {
  const measured = {
    memFreeKb: r.memFreeKb,
    hugepageKb: r.hugepageKb,
    requested: 0,
    allocated: 0,
    compactionIndex: Number.POSITIVE_INFINITY,
    passed: false,
  };
  r.notes.push('vm.compact_unevictable_allowed is not 1: the selftest skips');
  const out = form.tap
    ? {
        log: ["Compaction isn't allowed"],
        stdout:
          "TAP version 13\n# Compaction isn't allowed\n1..0 # SKIP Prerequisites unsatisfied\n",
      }
    : {
        log: [
          "Either the sysctl compact_unevictable_allowed is not\nset to 1 or couldn't read the proc file.\nSkipping the test",
        ],
        stdout:
          "Either the sysctl compact_unevictable_allowed is not\nset to 1 or couldn't read the proc file.\nSkipping the test\n",
      };
  return report(measured, r.notes, { ...out, exitStatus: form.skipStatus }, true);
}

/** The result: the numbers, the selftest's output and exit status, mops's notes. */
function report(
  r: Measured,
  notes: string[],
  out: { log: string[]; stdout: string; stderr?: string; exitStatus: number },
  skipped = false,
): CompactionTestResult {
  return {
    ...r,
    skipped,
    log: out.log,
    stdout: out.stdout,
    stderr: out.stderr ?? '',
    exitStatus: out.exitStatus,
    notes,
  };
}
