export { plugin as zsmallocPluginForTest, ZS_POOL, type ZsPool } from '../src/index.js';
