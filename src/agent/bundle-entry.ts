#!/usr/bin/env node
// The entry of the one-file tabby-node, dist/tabby-node.cjs (deploy/bundle.mjs bundles it with every
// module of tabby it reaches; npm packages stay in node_modules). Every launcher runs that file: one
// CommonJS script instead of ~170 ES modules saves each module's loader records and namespace, and node
// loads fewer of its own modules (no ES module jobs, translators, module map); test/bench/idle.ts
// measures it. Same start as main.ts: heap policy first, then the agent's process, loaded lazily.
import { startAgent } from './main.js';

startAgent();
