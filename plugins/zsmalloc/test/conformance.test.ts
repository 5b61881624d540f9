import { describeDriverConformance } from '@mops/testkit';
import { conformance, plugin } from '../src/index.js';

describeDriverConformance({ name: '@mops/zsmalloc', plugin, populate: conformance.populate });
