/**
 * The oracles a run checks after its steps (a new warning or lockdep report, the invariant
 * checker, the scenario's assertions), how a step that threw is classified, and what a
 * traced run notes between the points where the oracles run.
 * @module
 */

import {
  checkInvariants,
  Deadlock,
  type Machine,
  MmBug,
  MopsError,
  valueKind,
  warningHeadline,
} from '@mops/core';
import type { Failure } from './run_types.js';
import type { ScenarioInstance } from './scenario.js';

/** A node of the memo tree, as the oracles see it: whether its state passed the checker. */
interface CheckedNode {
  ok: boolean;
}

function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return i < 0 ? s : s.slice(0, i);
}

/**
 * The kind the core gives a protocol violation the VM itself made (spec §9a's isolation of
 * a page other than the one examined); a `protocol_violation` names a driver's mistake.
 */
export const VM_PROTOCOL_VIOLATION = 'vm_protocol_violation';

/** The first line of the detail of a failure led by {@link VM_PROTOCOL_VIOLATION}. */
const VM_VIOLATION_NOTE = 'the VM broke the protocol here, not a driver';

export function classify(e: unknown, step: number): Failure {
  if (e instanceof Deadlock)
    return { kind: 'deadlock', message: `Deadlock: ${e.reason}`, detail: e.dump, step };
  if (e instanceof MmBug) return { kind: 'mmbug', message: e.reason, detail: e.dump, step };
  if (e instanceof MopsError)
    return { kind: 'error', message: `${e.code}: ${e.message}`, detail: '', step };
  const err = e instanceof Error ? e : new Error(String(e));
  return { kind: 'error', message: firstLine(err.message), detail: err.stack ?? '', step };
}

/**
 * The failure of a step that threw `e`, with the warnings the run raised before it: a
 * deadlock follows them (the kernel prints a warning, lockdep's report of the lock
 * inversion above all, when it happens; a hung task only much later), so they lead and the
 * deadlock's listing follows in the detail; a BUG leads, the warnings follow it.
 */
export function stepThrew(
  m: Machine,
  inst: ScenarioInstance,
  warnBase: number,
  e: unknown,
  steps: number,
): Failure {
  const thrown = classify(e, steps);
  const warned = warningFailure(m, inst, warnBase, steps);
  if (warned === undefined) return thrown;
  if (thrown.kind === 'deadlock')
    return { ...warned, detail: [warned.detail, '', thrown.message, thrown.detail].join('\n') };
  const raised = m.mem.warnings.slice(warnBase).map((w) => `${w.kind}: ${w.text}`);
  return { ...thrown, detail: [thrown.detail, '', 'raised before:', ...raised].join('\n') };
}

/**
 * The failure the warnings raised since `warnBase` make, if any: every warning counts
 * (protocol_violation, VM_WARN_ON_ONCE, bad_page, lockdep, …). A driver's protocol
 * violation leads, even when the VM's own warning came first in the same step: it names
 * the driver's mistake that warning follows from. The others follow in the detail, each
 * with its kind. A lockdep report that leads makes a `lockdep` failure.
 */
export function warningFailure(
  m: Machine,
  inst: ScenarioInstance,
  warnBase: number,
  steps: number,
): Failure | undefined {
  const mem = m.mem;
  if (mem.warnings.length <= warnBase) return undefined;
  const raised = mem.warnings.slice(warnBase);
  const lead =
    raised.find((w) => w.kind === 'protocol_violation') ??
    raised.find((w) => w.kind === VM_PROTOCOL_VIOLATION) ??
    raised[0];
  const rest = raised.filter((w) => w !== lead).map((w) => `${w.kind}: ${w.text}`);
  const draft = lead.kind === 'protocol_violation' ? inst.draft : undefined;
  if (draft !== undefined) {
    // `DRIVER: what`: the driver did what the draft said.
    const line = firstLine(lead.text);
    const m = /^([^:\s]+): (.*)$/.exec(line);
    return {
      kind: 'warning',
      message: `draft protocol fault (${draft}): ${m ? m[2] : line}`,
      detail: [
        `${m ? m[1] : 'the driver'} did what the ${draft} says: the draft protocol is at fault here, not the driver (the core records it as the driver's protocol_violation)`,
        lead.text,
        ...rest,
      ].join('\n'),
      step: steps,
    };
  }
  if (lead.kind === 'lockdep') {
    const report = m.sched.lockdep.reports.find((r) => r.text === lead.text);
    const classes = report?.classes.length ? ` (${report.classes.join(' -> ')})` : '';
    return {
      kind: 'lockdep',
      message: `lockdep: ${warningHeadline(lead.text)}${classes}`,
      detail: [lead.text, ...rest].join('\n'),
      step: steps,
    };
  }
  return {
    kind: 'warning',
    message: `${lead.kind}: ${warningHeadline(lead.text)}`,
    detail: [
      ...(lead.kind === VM_PROTOCOL_VIOLATION ? [VM_VIOLATION_NOTE] : []),
      lead.text,
      ...rest,
    ].join('\n'),
    step: steps,
  };
}

/**
 * The oracles after a step: a new warning (a lockdep report included), the invariant checker (when
 * `full`, unless `node` says a previous run already checked this state) and the scenario's
 * assertions.
 */
export function oracles(
  m: Machine,
  inst: ScenarioInstance,
  warnBase: number,
  node: CheckedNode | undefined,
  full: boolean,
  steps: number,
): Failure | undefined {
  const warned = warningFailure(m, inst, warnBase, steps);
  if (warned) return warned;
  if (full && !(node?.ok ?? false)) {
    const inv = checkInvariants(m);
    if (!inv.ok)
      return {
        kind: 'invariant',
        message: `invariant: ${inv.violations[0]}`,
        detail: inv.violations.join('\n'),
        step: steps,
      };
    if (node) node.ok = true;
  }
  let bad: readonly string[] | undefined;
  try {
    bad = inst.check?.();
  } catch (e) {
    // A check that throws (an MmBug where it looks at the machine) fails the run there.
    return classify(e, steps);
  }
  return assertionFailure('check', bad, steps);
}

/**
 * The failure a scenario's `check` or `finish` reports: its first message, all of them as
 * the detail; none for an empty array or undefined. Anything else is the scenario's own
 * mistake: E_PLUGIN.
 */
export function assertionFailure(
  what: 'check' | 'finish',
  bad: unknown,
  step: number,
): Failure | undefined {
  if (bad === undefined) return undefined;
  if (!Array.isArray(bad))
    throw new MopsError(
      'E_PLUGIN',
      `a scenario's ${what}() must return an array of messages (empty when all is well), got ${valueKind(bad)}; fix the scenario`,
      what,
    );
  if (bad.length === 0) return undefined;
  return { kind: 'assertion', message: String(bad[0]), detail: bad.join('\n'), step };
}

/** A failure's oracle and message, as one key. */
function sign(f: Failure): string {
  return `${f.kind}\0${f.message}`;
}

/**
 * What a traced run notes at the points where an untraced run would not check the oracles
 * (a task running alone): the first step after which each kind of oracle would have fired
 * with each message. Only to tell where a failure arose: whether the run fails, and with
 * what, is decided as in an untraced run.
 */
export class EarlySigns {
  /** The first step after which each kind of oracle fired with each message, by both. */
  private readonly first = new Map<string, number>();

  constructor(
    private readonly m: Machine,
    private readonly inst: ScenarioInstance,
    private readonly warnBase: number,
  ) {}

  look(step: number): void {
    try {
      const f = oracles(this.m, this.inst, this.warnBase, undefined, true, step);
      if (f && !this.first.has(sign(f))) this.first.set(sign(f), step);
    } catch {
      // A check that cannot judge a state no untraced run checks tells nothing here.
    }
  }

  /** `f` with the step it arose at, when that came before the step it was seen at. */
  attribute(f: Failure): Failure {
    const early = this.first.get(sign(f));
    if (early === undefined || early >= f.step) return f;
    return { ...f, raisedAt: early };
  }
}
