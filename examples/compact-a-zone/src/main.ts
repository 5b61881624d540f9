/** Prints what {@link compactAZone} did. */
import { compactAZone } from './index.js';

const r = compactAZone();
console.log(
  `/proc/buddyinfo before\n${r.buddyinfo.before}\n/proc/buddyinfo after\n${r.buddyinfo.after}`,
);
console.log(`compact_memory: ${r.results.join(', ')}; ${r.migrated} pages migrated`);
console.log(`fragmentation score: ${r.score.before} -> ${r.score.after}`);
