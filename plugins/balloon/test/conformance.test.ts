import { describeDriverConformance } from '@mops/testkit';
import { conformance, plugin } from '../src/index.js';

describeDriverConformance({ name: '@mops/balloon', plugin, populate: conformance.populate });
