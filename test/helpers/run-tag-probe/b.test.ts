// The second probe for test/unit/house/run-tags.test.ts: the same as a.test.ts, in its own process.
import './a.test.js';
