/**
 * Schedule strings: `v1:SCENARIO:DECISIONS`, where DECISIONS lists, for every scheduling
 * decision (a point where more than one task could run), the id of the task chosen, one
 * base-36 digit each (`1`–`9`, `a`–`z`). Decisions past the end of the string continue the
 * task that ran last (no preemption), so trailing non-preempting choices are left out.
 *
 * One digit names task ids 1 to 35 ({@link MAX_TASK_ID}). A schedule that chooses a task of
 * a higher id (a scenario of more than 35 tasks) is written `v2:SCENARIO:DECISIONS`, the ids
 * in base 36 separated by dots (`v2:many:1.z.14.2`); every schedule of tasks 1–35 is still
 * written, and read, as v1.
 * @module
 */

import { MopsError, valueKind } from '@mops/core';
import { SCENARIO_NAME, SCENARIO_NAME_RE } from './names.js';

/** A schedule string: version, scenario name, decisions. */
const SCHEDULE_RE = new RegExp(`^v(\\d+):(${SCENARIO_NAME}):([0-9a-z.]*)$`);

/**
 * Version of the compact schedule encoding, one digit per decision: every schedule whose
 * task ids are 1–35 is written in it. Larger ids take version 2 (see the module comment).
 */
export const SCHEDULE_VERSION = 1;

/** Largest task id a version-1 schedule string can name (larger ones are written as v2). */
export const MAX_TASK_ID = 35;

/** The version of the dotted encoding of schedules with task ids above {@link MAX_TASK_ID}. */
const DOTTED_VERSION = 2;

/** A decoded schedule string. */
export interface DecodedSchedule {
  /** The scenario it belongs to. */
  readonly scenario: string;
  /** Task ids chosen at the successive decisions. */
  readonly decisions: readonly number[];
}

/** What the two encodings look like, for messages. */
const FORMS = `v${SCHEDULE_VERSION}:SCENARIO:TASKIDS (task ids 1-9, a-z) or v${DOTTED_VERSION}:SCENARIO:ID.ID… (ids in base 36)`;

/**
 * Encodes the decisions of a run of `scenario` as a schedule string: v1 when every task id
 * is at most {@link MAX_TASK_ID}, else v2. `MopsError('E_USAGE')` for a scenario name that is
 * not `[a-z0-9][a-z0-9-]*` (which no schedule string can carry) or decisions that are not an
 * array; `MopsError('E_RANGE')` for a task id that is not a positive safe integer.
 */
export function encodeSchedule(scenario: string, decisions: readonly number[]): string {
  if (typeof scenario !== 'string' || !SCENARIO_NAME_RE.test(scenario))
    throw new MopsError(
      'E_USAGE',
      `scenario name ${valueKind(scenario)} cannot be encoded in a schedule string: it must match ${SCENARIO_NAME}, as registered scenarios' names do`,
      'scenario',
    );
  if (!Array.isArray(decisions))
    throw new MopsError(
      'E_USAGE',
      `decisions must be an array of task ids, got ${valueKind(decisions)}`,
      'decisions',
    );
  const ids: string[] = [];
  let dotted = false;
  for (let i = 0; i < decisions.length; i++) {
    const id: unknown = decisions[i];
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1)
      throw new MopsError(
        'E_RANGE',
        `task id ${valueKind(id)} (decision ${i}) cannot be encoded: task ids are integers ≥ 1`,
        'decisions',
      );
    if (id > MAX_TASK_ID) dotted = true;
    ids.push(id.toString(36));
  }
  return dotted
    ? `v${DOTTED_VERSION}:${scenario}:${ids.join('.')}`
    : `v${SCHEDULE_VERSION}:${scenario}:${ids.join('')}`;
}

function malformed(text: string, why = ''): MopsError {
  return new MopsError(
    'E_USAGE',
    `malformed schedule '${text}'${why}: expected ${FORMS}`,
    'schedule',
  );
}

/** Base-36 digits of the largest safe integer (`2gosa7pa2gv`). */
const MAX_ID_DIGITS = Number.MAX_SAFE_INTEGER.toString(36).length;

/**
 * Decodes a schedule string (v1 or v2), checking that it is well formed, of an encoding
 * version this explorer reads and, when `scenario` is given, recorded for that scenario.
 * Anything else, a schedule that is not a string included, is `MopsError('E_USAGE')` with
 * one line naming the problem.
 */
export function decodeSchedule(text: string, scenario?: string): DecodedSchedule {
  if (typeof text !== 'string')
    throw new MopsError(
      'E_USAGE',
      `schedule must be a string ${FORMS}, got ${valueKind(text)}`,
      'schedule',
    );
  const m = SCHEDULE_RE.exec(text.trim());
  if (!m) throw malformed(text);
  const version = Number(m[1]);
  if (version !== SCHEDULE_VERSION && version !== DOTTED_VERSION)
    throw new MopsError(
      'E_USAGE',
      `schedule '${text}' has encoding version ${m[1]}; this explorer reads versions ${SCHEDULE_VERSION} and ${DOTTED_VERSION}`,
      'schedule',
    );
  if (scenario !== undefined && m[2] !== scenario)
    throw new MopsError(
      'E_USAGE',
      `schedule '${text}' was recorded for scenario ${m[2]}, not ${scenario}`,
      'schedule',
    );
  const decisions: number[] = [];
  if (version === SCHEDULE_VERSION) {
    if (!/^[1-9a-z]*$/.test(m[3])) throw malformed(text);
    for (const ch of m[3]) decisions.push(Number.parseInt(ch, 36));
  } else if (m[3] !== '') {
    for (const id of m[3].split('.')) {
      if (!/^[1-9a-z][0-9a-z]*$/.test(id))
        throw malformed(text, ` (task id '${id}': base-36 digits without a leading 0)`);
      const n = id.length <= MAX_ID_DIGITS ? Number.parseInt(id, 36) : Number.NaN;
      if (!Number.isSafeInteger(n))
        throw malformed(text, ` (task id '${id}' is larger than any task id)`);
      decisions.push(n);
    }
  }
  return { scenario: m[2], decisions };
}
