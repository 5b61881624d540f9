/** Prints the hunt. */
import { hunt } from './index.js';

const h = hunt();
console.log(h.bug.report);
console.log(`replaying ${h.bug.schedule}: ${h.replayFails ? 'fails again' : 'passes'}`);
console.log(
  `fixed variant: ${h.fixed.schedules} schedules, bound ${h.fixed.exhausted ? 'exhausted' : 'not exhausted'}, ${h.fixed.failed ? 'FAILED' : 'no failure'}`,
);
