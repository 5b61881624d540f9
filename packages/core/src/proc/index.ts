/**
 * /proc views in the kernel's exact layouts (buddyinfo, pagetypeinfo, vmstat, zoneinfo), a
 * per-machine view registry, and rebuilding a machine from a real machine's /proc files.
 * @module
 */

export { buddyinfo } from './buddyinfo.js';
export {
  type FromProcOptions,
  IMPORTED_OWNER,
  machineFromProc,
  type ProcTexts,
} from './from_proc.js';
export {
  FREECOUNT_CAP,
  machineHasCma,
  pagetypeinfo,
  zoneBlockCounts,
} from './pagetypeinfo.js';
export {
  type FreeCount,
  type ParsedPagetypeinfo,
  type ParsedZoneinfo,
  type ParsedZoneinfoZone,
  parseBuddyinfo,
  parsePagetypeinfo,
  parseVmstat,
  parseZoneinfo,
  procParseError,
} from './parse.js';
export {
  BUILTIN_PROC_VIEWS,
  type ProcViewFn,
  procView,
  procViewNames,
  registerProcView,
} from './registry.js';
export { takeAllFree } from './take_all.js';
export {
  DIRTY_BACKGROUND_RATIO,
  dirtyThresholds,
  memmapBootPages,
  PAGES_PER_SECTION,
  totalreservePages,
  VM_DIRTY_RATIO,
  type VmstatLayout,
  vmstat,
  vmstatEvents,
  vmstatLayout,
  zoneStatValue,
} from './vmstat.js';
export { type PagesetParams, pagesetParams, ZONEINFO_CPUS, zoneinfo } from './zoneinfo.js';
