/**
 * The differences between releases in how tracefs reads an event filter
 * (kernel/trace/trace_events_filter.c): what an empty filter gets, which field suffixes and
 * value forms parse_pred() knows, and how a subsystem's `filter` file applies a filter to
 * its events.
 * @module
 */

/** How a release's tracefs reads event filters: a profile's `traceFilter`. */
export interface TraceFilterProfile {
  /**
   * What writing an empty or all-space filter to an event's `filter` file gets (only `0`
   * clears a filter: apply_event_filter() compares the strstrip()ed text with `"0"`).
   * `'meaningless'` (v4.8): filter_parse() takes the empty text and replace_preds()'s
   * check_preds() refuses it, "Meaningless filter expression" at offset 0, -EINVAL.
   * `'errno'` (4.17 on): process_preds() finds no predicate (calc_stack()) and returns
   * -EINVAL without a parse error of its own, so `error_log` says "Error" at offset 0.
   */
  readonly emptyFilter: 'meaningless' | 'errno';
  /**
   * parse_pred() reads a `.ustring` suffix after the field name (5.17 on: v6.0 and later),
   * which makes a `char *` field be read from user memory. It changes nothing for any other
   * field, and mops has no `char *` field, so it is taken and ignored; without it the `.`
   * is an "Invalid operator".
   */
  readonly ustring: boolean;
  /**
   * parse_pred() reads a `.function` suffix after the field name (6.3 on), comparing a field
   * holding a kernel address with a function's extent (`call_site.function == kfree`).
   * mops models no kernel text: on a field that is not `long`-sized it is "Illegal
   * operation for field type", with another operator than `==` or `!=` "Invalid
   * operator", and any symbol or address "Function not found".
   */
  readonly functionSuffix: boolean;
  /**
   * parse_pred() reads a `CPUS{cpulist}` value (6.6 on: v6.17) for `cpu`/`CPU` and numeric
   * fields, with `==`, `!=` and `&`; before, `CPUS` is an "Invalid value (did you forget
   * quotes)?".
   */
  readonly cpus: boolean;
  /**
   * How a subsystem's `filter` file applies a filter to its events.
   * `'dry_run'` (v4.8, replace_system_preds()): the filter is parsed once (a syntax error is
   * reported as such), then tried on each event; the events it does not fit are left as
   * they were, and when it fits none the write fails with "Couldn't find or set field in one
   * of a subsystem's events" at offset 0.
   * `'per_event'` (4.17 on, process_system_preds()): the filter is parsed for each event;
   * an event it does not fit is left unfiltered and its error, whatever it was, is logged as
   * "Couldn't find or set field in one of a subsystem's events" at offset 0.
   */
  readonly subsystem: 'dry_run' | 'per_event';
}
