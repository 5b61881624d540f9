/**
 * movable_ops page migration: the driver contract, isolation, migration and putback.
 * @module
 */

export * from './callbacks.js';
export * from './callbacks_putback.js';
export * from './isolate.js';
export * from './migrate.js';
export * from './movable.js';
export * from './move.js';
export * from './point_names.js';
export * from './putback.js';
export * from './trace.js';
export * from './types.js';
