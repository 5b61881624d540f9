/**
 * `@mops/balloon`: a balloon-like driver plugin.
 * @module
 */

import type { MopsPlugin } from '@mops/core';

/** The plugin. */
export const plugin: MopsPlugin = {
  manifest: { name: '@mops/balloon', version: '0.1.0', profiles: ['v4.8', 'v6.0', 'v6.3', 'v6.17'] },
  register() {},
};
export default plugin;
