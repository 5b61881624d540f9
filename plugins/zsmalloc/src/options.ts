/**
 * What zs_create_pool() is given: the pool's name, and (race scenarios only) the mistakes
 * to switch on. Checked before anything is made, so a bad option creates no pool.
 * @module
 */

import { checkOptionsObject, MopsError, printable, valueKind } from '@mops/core';

/**
 * Mistakes that can be switched on to reproduce the races the kernel's rules prevent (for
 * race scenarios; never set in normal runs).
 */
export interface ZsMistakes {
  /**
   * __free_zspage() resets the sub-pages without __ClearPageMovable (v4.8–v6.3): an
   * isolated sub-page keeps its movable_ops, so the VM cannot see that zsmalloc let it go
   * and calls back into zsmalloc for a page without zspage (spec §4.1, §7.5).
   */
  freeWithoutClearMovable?: boolean;
  /**
   * The v6.17 callbacks do not check `zpdesc->zspage == NULL`: zs_page_isolate accepts a
   * destroyed page and zs_page_migrate dereferences its NULL zspage (spec §4.3).
   */
  noZspageNullCheck?: boolean;
  /**
   * v6.0–v6.4 (spec §7.3, §9f): `zspage->isolated` shares one bit-field word with
   * `zspage->fullness`, but zs_page_isolate and zs_page_putback update it under the zspage
   * lock only, while zs_malloc's and zs_free's fix_fullness_group rewrite the word under
   * the class lock. Set, their stores of the group and the stores of the count are
   * read-modify-writes with a scheduling point between the load and the store, so one can
   * overwrite another: `'racy'` counts isolation under the zspage lock, and zs_page_migrate
   * uncounts after dropping the class lock, as 6.0–6.4 did; `'fixed'` counts under the
   * class lock, as the 2023 fix does. (zs_compact's stores are not split: in 6.0–6.4 it
   * held the zspage locks they would race with.) Only v6.0 and v6.3 count isolated
   * sub-pages this way; other profiles ignore the option.
   */
  sharedIsolationWord?: 'racy' | 'fixed';
}

/** Options of `createZsPool` and of the `ZsPool` constructor. */
export interface ZsPoolOptions {
  /** Pool name (zram uses the disk name); default `'zram0'`. */
  name?: string;
  /**
   * Mistakes to switch on (race scenarios only). They apply to the pool's free path and,
   * for the callbacks, to every pool of the machine.
   */
  mistakes?: ZsMistakes;
}

/** The options zs_create_pool takes. */
const OPTION_KEYS: readonly (keyof ZsPoolOptions)[] = ['name', 'mistakes'];

/** The values each mistake takes. */
const MISTAKES: Readonly<Record<keyof ZsMistakes, readonly unknown[]>> = {
  freeWithoutClearMovable: [true, false],
  noZspageNullCheck: [true, false],
  sharedIsolationWord: ['racy', 'fixed'],
};

const usage = (message: string, field: string) =>
  new MopsError('E_USAGE', `zs_create_pool: ${message}`, field);

/** `mistakes` is absent or an object of known mistakes with allowed values; else E_USAGE. */
function checkMistakes(mistakes: unknown): void {
  if (mistakes === undefined) return;
  const names = Object.keys(MISTAKES);
  if (typeof mistakes !== 'object' || mistakes === null || Array.isArray(mistakes))
    throw usage(
      `mistakes must be an object of ${names.join(', ')}, got ${valueKind(mistakes)}`,
      'mistakes',
    );
  for (const [k, v] of Object.entries(mistakes)) {
    const allowed = Object.hasOwn(MISTAKES, k) ? MISTAKES[k as keyof ZsMistakes] : undefined;
    if (!allowed) throw usage(`unknown mistake '${k}'; the mistakes are ${names.join(', ')}`, k);
    if (v !== undefined && !allowed.includes(v))
      throw usage(
        `mistake ${k} must be ${allowed.map((a) => printable(a)).join(' or ')}, got ${valueKind(v)}`,
        k,
      );
  }
}

/**
 * Checks the options of zs_create_pool, as core's entry points check theirs: an object
 * (`checkOptionsObject`), whose every key is an option (a misspelt one would silently leave
 * its default), with `name` a non-empty string and `mistakes` an object of known mistakes.
 * Each failure is a MopsError('E_USAGE') whose `field` names the option (or mistake) and
 * whose message names the kind of value given.
 */
export function checkPoolOptions(options: unknown): asserts options is ZsPoolOptions {
  checkOptionsObject(options, 'zs_create_pool', OPTION_KEYS);
  const { name, mistakes } = options as ZsPoolOptions;
  if (name !== undefined && (typeof name !== 'string' || name === ''))
    throw usage(`name must be a non-empty string, got ${valueKind(name)}`, 'name');
  checkMistakes(mistakes);
}
