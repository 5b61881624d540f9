/**
 * The /proc/vmstat event counters a run changed, as `compact` and `demo` report them.
 * @module
 */

/**
 * The counters that moved between two readings of vmstatEvents, in the file's order, with
 * their change; `keep` chooses the names to consider (default: all).
 */
export function vmstatDeltas(
  before: ReadonlyMap<string, number>,
  after: ReadonlyMap<string, number>,
  keep: (name: string) => boolean = () => true,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, v] of after) {
    const d = v - (before.get(name) ?? 0);
    if (d !== 0 && keep(name)) out[name] = d;
  }
  return out;
}

/**
 * The report's deltas section: `heading`, then one `name change` line per counter; when no
 * counter changed, one line saying so in place of an empty list (`which` names the counters
 * considered, e.g. "compaction, migration or balloon").
 */
export function deltaLines(
  heading: string,
  deltas: Readonly<Record<string, number>>,
  which = '',
): string[] {
  const entries = Object.entries(deltas);
  if (entries.length === 0)
    return [`${heading}: no ${which === '' ? '' : `${which} `}event counter changed`];
  return [heading, ...entries.map(([k, v]) => `${k} ${v}`)];
}
