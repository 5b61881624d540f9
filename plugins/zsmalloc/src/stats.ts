/**
 * Text views: the debugfs `classes` file of a pool and zram's `mm_stat`, in each
 * profile's layout (zsmalloc-by-profile §6).
 * @module
 */

import { PAGE_SIZE } from '@mops/core';
import { FULLNESS_NAMES, NR_FULLNESS_GROUPS, ZS_INUSE_RATIO_10 } from './classes.js';
import { zsCanCompact } from './compaction.js';
import type { ZsPool } from './pool.js';
import type { SizeClass, Zspage } from './zspage.js';

const pad = (v: string | number, w: number): string => String(v).padStart(w);

function zspagesOf(pool: ZsPool, cls: SizeClass): Zspage[] {
  const out: Zspage[] = [];
  for (const zs of pool.registry.zspages)
    if (zs && zs.cls === cls && zs.pool === pool) out.push(zs);
  return out;
}

/**
 * The v4.8–v6.3 almost_full / almost_empty split of a zspage: ALMOST_EMPTY when in use
 * ≤ 3/4 of its objects, ALMOST_FULL above, neither when empty or full.
 * @see mm/zsmalloc.c (4.8) get_fullness_group()
 */
function almost(zs: Zspage): 'full' | 'empty' | undefined {
  const objs = zs.cls.objsPerZspage;
  if (zs.inuse === 0 || zs.inuse === objs) return undefined;
  return zs.inuse <= Math.floor((3 * objs) / 4) ? 'empty' : 'full';
}

/**
 * zs_stats_size_show(): the debugfs `classes` file, one row per distinct class, a blank
 * line and a Total row. v6.17 shows the in-use ratio groups 10 %..100 %; v4.8–v6.3 show
 * almost_full and almost_empty, counting the listed zspages in the old 3/4 split.
 * @see mm/zsmalloc.c zs_stats_size_show()
 */
export function classesView(pool: ZsPool): string {
  const lines: string[] = [];
  let tObjs = 0;
  let tUsed = 0;
  let tPages = 0;
  let tFree = 0;
  const old = pool.rules.classesAlmost;
  const totals = new Array<number>(NR_FULLNESS_GROUPS).fill(0);
  let tAf = 0;
  let tAe = 0;
  if (old)
    lines.push(
      ` ${pad('class', 5)} ${pad('size', 5)} ${pad('almost_full', 11)} ${pad('almost_empty', 12)} ${pad('obj_allocated', 13)} ${pad('obj_used', 10)} ${pad('pages_used', 10)} ${pad('pages_per_zspage', 16)} ${pad('freeable', 8)}`,
    );
  else {
    const groups = FULLNESS_NAMES.slice(1);
    lines.push(
      ` ${pad('class', 5)} ${pad('size', 5)} ${groups.map((g) => pad(g, 9)).join(' ')} ${pad('obj_allocated', 13)} ${pad('obj_used', 10)} ${pad('pages_used', 10)} ${pad('pages_per_zspage', 16)} ${pad('freeable', 8)}`,
    );
  }
  for (const cls of pool.classes) {
    const objAllocated = cls.objAllocated;
    const pagesUsed = Math.floor(objAllocated / cls.objsPerZspage) * cls.pagesPerZspage;
    const freeable = zsCanCompact(cls);
    tObjs += objAllocated;
    tUsed += cls.objUsed;
    tPages += pagesUsed;
    tFree += freeable;
    const tail = `${pad(objAllocated, 13)} ${pad(cls.objUsed, 10)} ${pad(pagesUsed, 10)} ${pad(cls.pagesPerZspage, 16)} ${pad(freeable, 8)}`;
    if (old) {
      let af = 0;
      let ae = 0;
      for (const zs of zspagesOf(pool, cls)) {
        if (zs.listed < 0) continue;
        const a = almost(zs);
        if (a === 'full') af++;
        else if (a === 'empty') ae++;
      }
      tAf += af;
      tAe += ae;
      lines.push(` ${pad(cls.index, 5)} ${pad(cls.size, 5)} ${pad(af, 11)} ${pad(ae, 12)} ${tail}`);
    } else {
      let row = ` ${pad(cls.index, 5)} ${pad(cls.size, 5)} `;
      for (let fg = ZS_INUSE_RATIO_10; fg < NR_FULLNESS_GROUPS; fg++) {
        totals[fg] += cls.groupCount[fg];
        row += `${pad(cls.groupCount[fg], 9)} `;
      }
      lines.push(row + tail);
    }
  }
  lines.push('');
  if (old)
    lines.push(
      ` ${pad('Total', 5)} ${pad('', 5)} ${pad(tAf, 11)} ${pad(tAe, 12)} ${pad(tObjs, 13)} ${pad(tUsed, 10)} ${pad(tPages, 10)} ${pad('', 16)} ${pad(tFree, 8)}`,
    );
  else {
    let row = ` ${pad('Total', 5)} ${pad('', 5)} `;
    for (let fg = ZS_INUSE_RATIO_10; fg < NR_FULLNESS_GROUPS; fg++) row += `${pad(totals[fg], 9)} `;
    lines.push(
      `${row}${pad(tObjs, 13)} ${pad(tUsed, 10)} ${pad(tPages, 10)} ${pad('', 16)} ${pad(tFree, 8)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/**
 * zram's `mm_stat`, the pool standing in for the zram device (one object per stored
 * page): orig_data_size (live objects × PAGE_SIZE), compr_data_size (bytes given to
 * zs_malloc), mem_used_total, mem_limit (0: none), mem_used_max, same_pages / zero_pages
 * (0), pages_compacted; from v6.0 also huge_pages and huge_pages_since. v4.8 prints 7
 * fields, later releases 9, each `%8` wide.
 * @see drivers/block/zram/zram_drv.c mm_stat_show()
 */
export function mmStatView(pool: ZsPool): string {
  const f = [
    pool.classes.reduce((n, c) => n + c.objUsed, 0) * PAGE_SIZE,
    pool.comprDataSize,
    pool.pagesAllocated * PAGE_SIZE,
    0,
    pool.maxPagesAllocated * PAGE_SIZE,
    0,
    pool.pagesCompacted,
  ];
  if (!pool.rules.mmStat7) f.push(pool.hugeObjects, pool.hugeObjectsSince);
  return `${f.map((v) => pad(v, 8)).join(' ')}\n`;
}
