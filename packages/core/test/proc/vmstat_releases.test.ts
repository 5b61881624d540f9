import { describe, expect, it } from 'vitest';
import { checkerboard, compactMemory, createMachine, type Machine } from '../../src/index.js';
import { vmstat, vmstatEvents, vmstatLayout } from '../../src/proc/index.js';
import { PROFILE_NAMES, PROFILES, type ProfileName } from '../../src/profile.js';
import { EV, NS } from '../../src/vmstat/vmstat.js';
import { fixture } from './helpers.js';

const fresh = (profile: ProfileName): Machine =>
  createMachine({ memory: '8G', contents: false, profile });

/** `[name, value]` per line of /proc/vmstat. */
const rows = (m: Machine): [string, string][] =>
  vmstat(m)
    .trimEnd()
    .split('\n')
    .map((l) => {
      const f = l.split(' ');
      expect(f).toHaveLength(2);
      expect(f[1]).toMatch(/^\d+$/);
      return [f[0], f[1]];
    });
const names = (profile: ProfileName) => rows(fresh(profile)).map((r) => r[0]);
const words = (s: string) => s.trim().split(/\s+/);

/** `list` less `drop`, with each `[name, after]` of `insert` placed right after `after`. */
function edit(list: string[], drop: string[], insert: [string, string][] = []): string[] {
  const out = list.filter((n) => !drop.includes(n));
  for (const [name, after] of insert) {
    const at = out.indexOf(after);
    expect(at, `${after} in the list`).toBeGreaterThanOrEqual(0);
    out.splice(at + 1, 0, name);
  }
  return out;
}

/** The 6.18 sample's names. */
const SAMPLE = fixture('vmstat')
  .trimEnd()
  .split('\n')
  .map((l) => l.split(' ')[0]);

/** 6.17: the sample less the two items 6.18 added. */
const V6_17 = edit(SAMPLE, ['pgpromote_candidate_nrl', 'nr_kernel_file_pages']);

/** 6.3, from 6.17: the items 6.4–6.17 added or removed, and the events pgdemote_* were. */
const V6_3 = edit(
  V6_17,
  words(`
    nr_free_pages_blocks nr_iommu_pages pgdemote_kswapd pgdemote_direct pgdemote_khugepaged
    pgdemote_proactive nr_hugetlb nr_balloon_pages nr_memmap_pages nr_memmap_boot_pages
    pgsteal_proactive pgscan_proactive zone_reclaim_success thp_underused_split_page
    swpin_zero swpout_zero zswpwb direct_map_level2_collapses direct_map_level3_collapses`),
  [
    ['nr_bounce', 'nr_mlock'],
    ['nr_writeback_temp', 'nr_writeback'],
    ['pgdemote_khugepaged', 'pgsteal_khugepaged'],
    ['pgdemote_direct', 'pgsteal_khugepaged'],
    ['pgdemote_kswapd', 'pgsteal_khugepaged'],
  ],
);

/** 6.0, from 6.3: no `_device` columns, secondary page tables, promote candidates, khugepaged. */
const V6_0 = edit(
  V6_3,
  words(`
    pgalloc_device allocstall_device pgskip_device nr_sec_page_table_pages pgpromote_candidate
    pgsteal_khugepaged pgdemote_khugepaged pgscan_khugepaged`),
);

/** 4.8 (mm/vmstat.c vmstat_text with the configuration mops models). */
const V4_8 = words(`
  nr_free_pages nr_zone_inactive_anon nr_zone_active_anon nr_zone_inactive_file
  nr_zone_active_file nr_zone_unevictable nr_zone_write_pending nr_mlock nr_slab_reclaimable
  nr_slab_unreclaimable nr_page_table_pages nr_kernel_stack nr_bounce nr_zspages numa_hit
  numa_miss numa_foreign numa_interleave numa_local numa_other nr_free_cma
  nr_inactive_anon nr_active_anon nr_inactive_file nr_active_file nr_unevictable
  nr_isolated_anon nr_isolated_file nr_pages_scanned workingset_refault workingset_activate
  workingset_nodereclaim nr_anon_pages nr_mapped nr_file_pages nr_dirty nr_writeback
  nr_writeback_temp nr_shmem nr_shmem_hugepages nr_shmem_pmdmapped
  nr_anon_transparent_hugepages nr_unstable nr_vmscan_write nr_vmscan_immediate_reclaim
  nr_dirtied nr_written
  nr_dirty_threshold nr_dirty_background_threshold
  pgpgin pgpgout pswpin pswpout pgalloc_dma pgalloc_dma32 pgalloc_normal pgalloc_movable
  allocstall_dma allocstall_dma32 allocstall_normal allocstall_movable pgskip_dma pgskip_dma32
  pgskip_normal pgskip_movable pgfree pgactivate pgdeactivate pgfault pgmajfault pglazyfreed
  pgrefill pgsteal_kswapd pgsteal_direct pgscan_kswapd pgscan_direct pgscan_direct_throttle
  zone_reclaim_failed pginodesteal slabs_scanned kswapd_inodesteal
  kswapd_low_wmark_hit_quickly kswapd_high_wmark_hit_quickly pageoutrun pgrotated
  drop_pagecache drop_slab numa_pte_updates numa_huge_pte_updates numa_hint_faults
  numa_hint_faults_local numa_pages_migrated pgmigrate_success pgmigrate_fail
  compact_migrate_scanned compact_free_scanned compact_isolated compact_stall compact_fail
  compact_success compact_daemon_wake htlb_buddy_alloc_success htlb_buddy_alloc_fail
  unevictable_pgs_culled unevictable_pgs_scanned unevictable_pgs_rescued
  unevictable_pgs_mlocked unevictable_pgs_munlocked unevictable_pgs_cleared
  unevictable_pgs_stranded thp_fault_alloc thp_fault_fallback thp_collapse_alloc
  thp_collapse_alloc_failed thp_file_alloc thp_file_mapped thp_split_page
  thp_split_page_failed thp_deferred_split_page thp_split_pmd thp_zero_page_alloc
  thp_zero_page_alloc_failed balloon_inflate balloon_deflate balloon_migrate`);

const EXPECTED: Record<ProfileName, string[]> = {
  'v4.8': V4_8,
  'v6.0': V6_0,
  'v6.3': V6_3,
  'v6.17': V6_17,
};

describe('/proc/vmstat names by release', () => {
  it.each(PROFILE_NAMES)('%s prints its release’s names in the kernel’s order', (profile) => {
    expect(PROFILES[profile].vmstatNames).toBe(profile);
    expect(names(profile)).toEqual(EXPECTED[profile]);
    expect(vmstatLayout(profile).names).toEqual(EXPECTED[profile]);
  });

  it('v6.3: nr_bounce and nr_writeback_temp, pgdemote_* as events after pgsteal_khugepaged, none of the later items', () => {
    const n = names('v6.3');
    expect(n.slice(n.indexOf('nr_mlock'), n.indexOf('nr_mlock') + 3)).toEqual([
      'nr_mlock',
      'nr_bounce',
      'nr_zspages',
    ]);
    expect(n[n.indexOf('nr_writeback') + 1]).toBe('nr_writeback_temp');
    const at = n.indexOf('pgsteal_khugepaged');
    expect(n.slice(at, at + 5)).toEqual([
      'pgsteal_khugepaged',
      'pgdemote_kswapd',
      'pgdemote_direct',
      'pgdemote_khugepaged',
      'pgscan_kswapd',
    ]);
    expect(at).toBeGreaterThan(n.indexOf('pgpgin'));
    for (const later of words(`
      nr_iommu_pages pgpromote_candidate_nrl nr_hugetlb nr_kernel_file_pages nr_memmap_pages
      nr_memmap_boot_pages pgsteal_proactive pgscan_proactive zone_reclaim_success
      thp_underused_split_page swpin_zero swpout_zero zswpwb direct_map_level2_collapses
      direct_map_level3_collapses pgdemote_proactive nr_free_pages_blocks nr_balloon_pages`))
      expect(n).not.toContain(later);
    expect(n.slice(-2)).toEqual(['direct_map_level3_splits', 'nr_unstable']);
  });

  it('v6.0 and v6.3 differ; v6.0 has no khugepaged, _device, secondary page table or candidate items', () => {
    const v60 = names('v6.0');
    expect(v60).not.toEqual(names('v6.3'));
    const at = v60.indexOf('pgsteal_direct');
    expect(v60.slice(at, at + 4)).toEqual([
      'pgsteal_direct',
      'pgdemote_kswapd',
      'pgdemote_direct',
      'pgscan_kswapd',
    ]);
    expect(v60.filter((n) => /khugepaged|_device$|^nr_sec_|^pgpromote_candidate/.test(n))).toEqual(
      [],
    );
  });

  it('v4.8: its own node items, no later counters, no trailing nr_unstable', () => {
    const n = names('v4.8');
    for (const later of words(`
      workingset_refault_anon workingset_refault_file oom_kill pgreuse swap_ra zswpin
      nr_foll_pin_acquired nr_foll_pin_released pglazyfree compact_daemon_migrate_scanned
      compact_daemon_free_scanned thp_migration_success thp_migration_fail thp_migration_split`))
      expect(n).not.toContain(later);
    for (const own of words(
      'nr_pages_scanned workingset_refault workingset_activate nr_writeback_temp nr_bounce',
    ))
      expect(n).toContain(own);
    expect(n.filter((x) => x === 'nr_unstable')).toHaveLength(1);
    expect(n.indexOf('nr_unstable')).toBeLessThan(n.indexOf('nr_dirty_threshold'));
    expect(n.at(-1)).toBe('balloon_migrate');
  });

  it('v6.17: the sample less pgpromote_candidate_nrl and nr_kernel_file_pages (6.18)', () => {
    expect(SAMPLE).toContain('pgpromote_candidate_nrl');
    expect(SAMPLE).toContain('nr_kernel_file_pages');
    expect(names('v6.17')).toEqual(V6_17);
  });
});

describe('/proc/vmstat values under each release’s names', () => {
  it.each(PROFILE_NAMES)(
    '%s prints the counters mops keeps (allocation, compaction, migration)',
    (profile) => {
      const m = createMachine({ memory: '64M', profile });
      checkerboard(m, { movable: 'driver' });
      m.run(() => compactMemory(m));
      const v = new Map(rows(m).map(([k, n]) => [k, Number(n)]));
      const vm = m.mem.vmstat;
      expect(vm.get('pgalloc_normal') + vm.get('pgalloc_dma32')).toBeGreaterThan(0);
      expect(vm.get('compact_isolated')).toBeGreaterThan(0);
      expect(vm.get('pgmigrate_success')).toBeGreaterThan(0);
      // Every printed event or node counter is the value mops keeps under that name.
      for (const [name, value] of v) {
        if (EV[name] !== undefined) expect(value, name).toBe(Math.max(0, vm.events[EV[name]]));
        else if (NS[name] !== undefined) expect(value, name).toBe(Math.max(0, vm.node[NS[name]]));
      }
      for (const name of words('pgalloc_normal pgfree compact_isolated compact_migrate_scanned'))
        expect(v.has(name), name).toBe(true);
    },
  );

  it('a counter mops keeps that the release lacks is counted but not printed', () => {
    const m = fresh('v4.8');
    m.mem.vmstat.count('compact_daemon_migrate_scanned', 5);
    m.mem.vmstat.count('thp_migration_success', 2);
    const text = vmstat(m);
    expect(text).not.toContain('compact_daemon_migrate_scanned');
    expect(text).not.toContain('thp_migration_success');
    expect(m.mem.vmstat.get('compact_daemon_migrate_scanned')).toBe(5);
    const m17 = fresh('v6.17');
    m17.mem.vmstat.modNode('pgpromote_candidate_nrl', 3);
    expect(vmstat(m17)).not.toContain('pgpromote_candidate_nrl');
    expect(m17.mem.vmstat.get('pgpromote_candidate_nrl')).toBe(3);
  });

  it.each(PROFILE_NAMES)('%s: vmstatEvents is the event part of the file, by its names', (p) => {
    const m = fresh(p);
    m.mem.vmstat.count('compact_stall', 3);
    m.mem.vmstat.count('compact_daemon_migrate_scanned', 5);
    const ev = vmstatEvents(m);
    const printed = new Map(rows(m).map(([k, n]) => [k, Number(n)]));
    const names = [...ev.keys()];
    expect(names.length).toBeGreaterThan(50);
    for (const [k, v] of ev) expect(printed.get(k), k).toBe(v);
    // In the file's order: the events are one run of its lines.
    const lines = [...printed.keys()];
    const at = lines.indexOf(names[0]);
    expect(lines.slice(at, at + names.length)).toEqual(names);
    expect(ev.get('compact_stall')).toBe(3);
    expect(ev.has('compact_daemon_migrate_scanned')).toBe(p !== 'v4.8');
    expect(ev.has('nr_free_pages')).toBe(false);
  });

  it('v4.8 reads its renamed and per-zone items from the counters mops keeps', () => {
    const m = fresh('v4.8');
    m.mem.vmstat.modNode('workingset_refault_file', 7);
    m.mem.vmstat.modNode('workingset_activate_file', 4);
    m.mem.vmstat.modNode('nr_slab_reclaimable', 11);
    const v = new Map(rows(m).map(([k, n]) => [k, Number(n)]));
    expect(v.get('workingset_refault')).toBe(7);
    expect(v.get('workingset_activate')).toBe(4);
    expect(v.get('nr_slab_reclaimable')).toBe(11);
    for (const zero of words('nr_bounce nr_pages_scanned nr_writeback_temp nr_unstable'))
      expect(v.get(zero), zero).toBe(0);
  });
});
