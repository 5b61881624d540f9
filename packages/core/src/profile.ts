/**
 * Protocol profiles (DESIGN decision 4, spec §0.2 and §5.2): each is one kernel release's
 * behaviour, held in one object. Code asks the profile; it never compares version strings.
 * @module
 */

import { MopsError } from './errors.js';

/** The releases mops emulates. */
export type ProfileName = 'v4.8' | 'v6.0' | 'v6.3' | 'v6.17';

/** Every profile name, oldest first. */
export const PROFILE_NAMES: readonly ProfileName[] = ['v4.8', 'v6.0', 'v6.3', 'v6.17'];

/** The default profile: the folio era, whose rules the seed threads discuss. */
export const DEFAULT_PROFILE: ProfileName = 'v6.3';

/**
 * The differences between releases that the memory layer needs (page primitives, freeing,
 * the buddy allocator). The migration layer extends this object with its own rows.
 */
export interface Profile {
  /** Release name. */
  readonly name: ProfileName;
  /**
   * free_pages_prepare and `mapping`: `'tag'` resets it when either tag bit (ANON or
   * MOVABLE) is set (v4.8–v6.3); `'anon'` only when the ANON bit is set (v6.17). Any other
   * non-NULL mapping at free makes a bad page.
   */
  readonly freeResetsMapping: 'tag' | 'anon';
  /** free_pages_prepare resets any page type (v6.17); older releases call a typed page bad. */
  readonly freeClearsPageType: boolean;
  /** PG_slab at free makes a bad page (≤ v6.3; slab became a page type later). */
  readonly slabFlagIsBad: boolean;
  /**
   * __rmqueue_fallback style (compaction-by-profile T16): `'v4.8'` largest order first, steal
   * when free ≥ half a block; `'v6.0'` largest first with ALLOC_NOFRAGMENT and the switch to
   * the smallest order for MOVABLE, claim when free + alike ≥ half a block; `'v6.17'` claim
   * (largest first) then steal (smallest first, one page, block keeps its type).
   */
  readonly fallback: 'v4.8' | 'v6.0' | 'v6.17';
  /** Merging two order ≥ pageblock_order blocks of different types rewrites the buddy's type. */
  readonly mergeRewritesBuddyType: boolean;
  /** Folio helpers exist (`folio_ref_freeze`); v4.8 only has `page_ref_freeze`. */
  readonly hasFolios: boolean;
  /** The speculative get used by isolation (spec §1.5, T18). */
  readonly isolationGet: 'get_page_unless_zero' | 'folio_get_nontail_page';
}

const base = {
  freeResetsMapping: 'tag',
  freeClearsPageType: false,
  slabFlagIsBad: true,
  fallback: 'v6.0',
  mergeRewritesBuddyType: false,
  hasFolios: true,
  isolationGet: 'get_page_unless_zero',
} as const;

/** The four profiles. */
export const PROFILES: Readonly<Record<ProfileName, Profile>> = {
  'v4.8': { ...base, name: 'v4.8', fallback: 'v4.8', hasFolios: false },
  'v6.0': { ...base, name: 'v6.0' },
  'v6.3': { ...base, name: 'v6.3', isolationGet: 'folio_get_nontail_page' },
  'v6.17': {
    ...base,
    name: 'v6.17',
    freeResetsMapping: 'anon',
    freeClearsPageType: true,
    slabFlagIsBad: false,
    fallback: 'v6.17',
    mergeRewritesBuddyType: true,
    isolationGet: 'folio_get_nontail_page',
  },
};

/** The profile called `name`; a MopsError naming the choices otherwise. */
export function getProfile(name: string): Profile {
  const p = PROFILES[name as ProfileName];
  if (!p)
    throw new MopsError(
      'E_CONFIG',
      `profile: unknown profile '${name}'; choose one of ${PROFILE_NAMES.join(', ')}`,
      'profile',
    );
  return p;
}
