/**
 * The run queue's order (task id) and the check that a task body is a generator function.
 * @module
 */

import { MopsError, valueKind } from '../errors.js';
import type { Task } from './task.js';

/** Inserts `t` into `runq`, kept ordered by task id. */
export function insertById(runq: Task[], t: Task): void {
  // Queues are short: shift by hand rather than splice (which allocates its result).
  let i = runq.length;
  runq.push(t);
  while (i > 0 && runq[i - 1].id > t.id) {
    runq[i] = runq[i - 1];
    i--;
  }
  runq[i] = t;
}

/** Removes `t` from `q`, keeping the order of the others. */
export function removeTask(q: Task[], t: Task): void {
  const i = q.indexOf(t);
  if (i < 0) return;
  for (let j = i + 1; j < q.length; j++) q[j - 1] = q[j];
  q.pop();
}

/** A task body that is not a generator function: E_USAGE saying what it gave. */
export function notAGenerator(name: string, body: unknown, gen: unknown): never {
  const got =
    typeof body !== 'function'
      ? `got ${valueKind(body)}`
      : gen instanceof Promise
        ? 'got an async function (kernel code runs as generator functions, not promises)'
        : `got a function returning ${valueKind(gen)}`;
  throw new MopsError(
    'E_USAGE',
    `task ${name}: its body must be a generator function (function* () { … }), ${got}`,
    'body',
  );
}
