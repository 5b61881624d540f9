/** Prints the hunt. */
import { hunt, huntOwnRace } from './index.js';

const h = hunt();
console.log(h.bug.report);
console.log(`replaying ${h.bug.schedule}: ${h.replayFails ? 'fails again' : 'passes'}`);
console.log(
  `fixed variant: ${h.fixed.schedules} schedules, bound ${h.fixed.exhausted ? 'exhausted' : 'not exhausted'}, ${h.fixed.failed ? 'FAILED' : 'no failure'}`,
);

const own = huntOwnRace();
console.log(`\nyour own driver's race: ${own.bug.message}`);
console.log(own.bug.report);
// The CLI knows only its own scenarios: --load names the module that registers this one.
console.log(
  '(to replay it with mops, add --load ./examples/hunt-a-race/dist/own_race.js, the path from the repository root, after the scenario name)',
);
console.log(
  `released by the rule: ${own.fixed.schedules} schedules, bound ${own.fixed.exhausted ? 'exhausted' : 'not exhausted'}, ${own.fixed.failed ? 'FAILED' : 'no failure'}`,
);
