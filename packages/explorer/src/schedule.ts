/**
 * Schedule strings: `v1:SCENARIO:DECISIONS`, where DECISIONS lists, for every scheduling
 * decision (a point where more than one task could run), the id of the task chosen, one
 * base-36 digit each (`1`–`9`, `a`–`z`). Decisions past the end of the string continue the
 * task that ran last (no preemption), so trailing non-preempting choices are left out.
 * @module
 */

import { MopsError } from '@mops/core';

/** Version of the schedule encoding; part of every schedule string. */
export const SCHEDULE_VERSION = 1;

/** Largest task id a schedule string can name. */
export const MAX_TASK_ID = 35;

/** A decoded schedule string. */
export interface DecodedSchedule {
  /** The scenario it belongs to. */
  readonly scenario: string;
  /** Task ids chosen at the successive decisions. */
  readonly decisions: readonly number[];
}

/** Encodes the decisions of a run of `scenario` as a schedule string. */
export function encodeSchedule(scenario: string, decisions: readonly number[]): string {
  let body = '';
  for (const id of decisions) {
    if (!Number.isInteger(id) || id < 1 || id > MAX_TASK_ID)
      throw new MopsError('E_RANGE', `task id ${id} cannot be encoded (1..${MAX_TASK_ID})`);
    body += id.toString(36);
  }
  return `v${SCHEDULE_VERSION}:${scenario}:${body}`;
}

/**
 * Decodes a schedule string, checking that it is well formed, of this encoding version and,
 * when `scenario` is given, recorded for that scenario. Anything else is
 * `MopsError('E_USAGE')` with one line naming the problem.
 */
export function decodeSchedule(text: string, scenario?: string): DecodedSchedule {
  const m = /^v(\d+):([a-z0-9][a-z0-9-]*):([1-9a-z]*)$/.exec(text.trim());
  if (!m)
    throw new MopsError(
      'E_USAGE',
      `malformed schedule '${text}': expected v${SCHEDULE_VERSION}:SCENARIO:TASKIDS (task ids 1-9, a-z)`,
      'schedule',
    );
  if (Number(m[1]) !== SCHEDULE_VERSION)
    throw new MopsError(
      'E_USAGE',
      `schedule '${text}' has encoding version ${m[1]}; this explorer reads version ${SCHEDULE_VERSION}`,
      'schedule',
    );
  if (scenario !== undefined && m[2] !== scenario)
    throw new MopsError(
      'E_USAGE',
      `schedule '${text}' was recorded for scenario ${m[2]}, not ${scenario}`,
      'schedule',
    );
  const decisions: number[] = [];
  for (const ch of m[3]) decisions.push(Number.parseInt(ch, 36));
  return { scenario: m[2], decisions };
}
