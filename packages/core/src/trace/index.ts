/**
 * Tracepoints: the typed bus, ftrace text rendering, a line recorder and tracefs filters.
 * @module
 */

export {
  type ListenerTable,
  type MmCompactionBegin,
  type MmCompactionDefer,
  type MmCompactionEnd,
  type MmCompactionIsolate,
  type MmCompactionKcompactdSleep,
  type MmCompactionMigratepages,
  type MmCompactionSuitable,
  type MmCompactionTryToCompactPages,
  type MmCompactionWakeupKcompactd,
  type MmMigratePages,
  type MmMigratePagesStart,
  type MmPageAlloc,
  type MmPageAllocExtfrag,
  type MmPageAllocZoneLocked,
  type MmPageFree,
  TRACE_EVENT_NAMES,
  TraceBus,
  type TraceEventName,
  type TraceEventPayload,
  type TraceEvents,
} from './bus.js';
export {
  compileTraceFilter,
  type FilterFieldType,
  type FilterFn,
  type FilterNode,
  type FilterOp,
  type FilterSchema,
  filterFields,
  parseTraceFilter,
  TraceFilterError,
} from './filter.js';
export type { TraceFilterProfile } from './filter_profile.js';
export {
  type FtraceEventFormat,
  type FtraceFieldSet,
  ftraceEventNames,
  ftraceFields,
  ftraceFormat,
  type PointerStyle,
  pagePointer,
  registerFtraceFormat,
} from './formats.js';
export {
  COMMON_FILTER_FIELDS,
  type FtraceContext,
  ftraceBody,
  ftraceFilterFields,
  ftraceHeader,
  ftraceLine,
  ftraceTimestamp,
  profileHasEvent,
  type TraceRecorder,
  type TraceRecorderOptions,
  traceRecorder,
} from './ftrace.js';
export {
  GFP_FLAG_NAMES,
  GFP_FLAG_NAMES_V4_8,
  GFP_FLAG_NAMES_V6_0,
  type GfpNameTable,
  gfpMaskV4_8,
  showGfpFlags,
} from './gfp_names.js';
export { globToRegExp } from './glob.js';
