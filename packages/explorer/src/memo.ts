/**
 * The memo of an exploration: the tree of the step sequences its runs took, which says
 * whether the state a sequence leads to already passed the invariant checker and, for a
 * sequence a run ended with, what that run changed (for partial restores). One per scenario,
 * variant and profile.
 * @module
 */

import type { Scenario } from './scenario.js';
import type { GraphSnapshot } from './snapshot.js';

/**
 * A node of the tree of step sequences: whether the state it leads to passed the invariant
 * checker and, for a sequence a run ended with, what that run changed: the recorded
 * objects, and the words of the machine's larger buffers (page metadata, zone counters,
 * list heads).
 */
export interface CheckedNode {
  /** The node after each next step, by the id of the task that ran it. */
  readonly kids: (CheckedNode | undefined)[];
  ok: boolean;
  /** Runs that ended here so far, counted up to 3 (from then on restores are partial). */
  ends: number;
  /**
   * The words of the snapshot's larger buffers that a run ending here leaves different
   * from the snapshot ({@link GraphSnapshot.changedRuns}), from the second such run on:
   * the next restore writes back only those.
   */
  changed: Int32Array | undefined;
  /** Likewise the snapshot's other objects ({@link GraphSnapshot.changedSlots}). */
  slots: Int32Array | undefined;
}

export function newNode(): CheckedNode {
  return { kids: [], ok: false, ends: 0, changed: undefined, slots: undefined };
}

const MEMO_LIMIT = 200_000;

let lastKey = { variant: '', profile: '', key: '\0' };

/** `variant\0profile`, cached for the common case of many runs of the same pair. */
export function memoKeyOf(variant: string, profile: string): string {
  const k = lastKey;
  if (k.variant === variant && k.profile === profile) return k.key;
  lastKey = { variant, profile, key: `${variant}\0${profile}` };
  return lastKey.key;
}
const memos = new WeakMap<Scenario, Map<string, Memo>>();

export interface Memo {
  root: CheckedNode;
  size: number;
}

/** The memo of the last scenario and key asked for: runs of one exploration share it. */
let lastMemo: { scenario: Scenario | undefined; key: string; memo: Memo | undefined } = {
  scenario: undefined,
  key: '',
  memo: undefined,
};

export function memoFor(scenario: Scenario, key: string): Memo {
  const c = lastMemo;
  if (c.scenario === scenario && c.key === key && c.memo && c.memo.size <= MEMO_LIMIT)
    return c.memo;
  const memo = findMemo(scenario, key);
  lastMemo = { scenario, key, memo };
  return memo;
}

function findMemo(scenario: Scenario, key: string): Memo {
  let byKey = memos.get(scenario);
  if (!byKey) {
    byKey = new Map();
    memos.set(scenario, byKey);
  }
  let memo = byKey.get(key);
  if (!memo || memo.size > MEMO_LIMIT) {
    memo = { root: { ...newNode(), ok: true }, size: 0 };
    byKey.set(key, memo);
  }
  return memo;
}
