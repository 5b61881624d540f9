/**
 * A filter written to a subsystem's `filter` file (apply_subsystem_event_filter(),
 * kernel/trace/trace_events_filter.c), which sets the filter of each of the subsystem's
 * events. The recorder treats one expression for all its events so.
 * @module
 */

import type { Profile } from '../profile.js';
import type { FilterNode } from './filter.js';
import { readFilterText } from './filter.js';
import { parseFilterExpression, TraceFilterError } from './filter_parse.js';

/** FILT_ERR_BAD_SUBSYS_FILTER's text. */
const BAD_SUBSYS_FILTER = "Couldn't find or set field in one of a subsystem's events";

/**
 * The filter of each event in `names` for a subsystem filter `expression`, as `profile`'s
 * release sets them: `compile(name)` builds an event's filter and throws a
 * {@link TraceFilterError} where the expression does not fit that event, which is then left
 * unfiltered. `0` clears every filter (none is returned). In both releases' ways (the
 * profile's `traceFilter.subsystem`), an expression that fits no event, an empty one
 * included, is "Couldn't find or set field in one of a subsystem's events" at offset 0: v4.8
 * (`'dry_run'`, replace_system_preds()) refuses the write so; 4.17 on (`'per_event'`,
 * process_system_preds()) takes it but leaves every event unfiltered and logs that error
 * for each, which mops reports as an error rather than recording everything unfiltered. A
 * syntax error is its own message in v4.8, which parses the expression once before trying
 * the events (create_filter_start()); in 4.17 on, which parses it for each event and logs
 * FILT_ERR_BAD_SUBSYS_FILTER in place of the error found, it is the subsystem's message. The
 * error's last line says why: the syntax error, or the first event refused and its error.
 * `check` runs on the parsed expression before any event is tried (mops's own refusals);
 * `nrCpus` is nr_cpu_ids for its `CPUS{…}` cpulists (default `TRACE_NR_CPUS`).
 */
export function applySubsystemFilter<T>(
  names: readonly string[],
  expression: string,
  profile: Pick<Profile, 'traceFilter'>,
  compile: (name: string) => T,
  check?: (tree: FilterNode) => void,
  nrCpus?: number,
): Map<string, T> {
  const rules = profile.traceFilter;
  const out = new Map<string, T>();
  const text = readFilterText(expression);
  if (text.clear) return out;
  const refused = (why: string) => new TraceFilterError(BAD_SUBSYS_FILTER, text.shown, 0, why);
  if (text.blank) throw refused('(an empty filter: no predicate; 0 clears a filter)');
  let tree: FilterNode;
  try {
    tree = parseFilterExpression(text.bytes, text.shown, rules, undefined, nrCpus);
  } catch (e) {
    if (rules.subsystem === 'dry_run' || !(e instanceof TraceFilterError)) throw e;
    throw refused(`(it does not parse: ${e.reason}, at byte ${e.position})`);
  }
  check?.(tree);
  let first: string | undefined;
  for (const name of names) {
    try {
      out.set(name, compile(name));
    } catch (e) {
      if (!(e instanceof TraceFilterError)) throw e;
      first ??= `(first refused by ${name}: ${e.reason}, at byte ${e.position})`;
    }
  }
  if (first !== undefined && out.size === 0) throw refused(first);
  return out;
}
