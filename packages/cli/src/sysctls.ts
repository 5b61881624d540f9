/**
 * The sysctls `--sysctl` sets (a module of its own: the command line's help lists them
 * without loading the machine).
 * @module
 */

/** Their names under /proc/sys/vm. */
export const SYSCTL_NAMES: readonly string[] = [
  'min_free_kbytes',
  'watermark_boost_factor',
  'defrag_mode',
  'compaction_proactiveness',
  'extfrag_threshold',
  'compact_unevictable_allowed',
];
