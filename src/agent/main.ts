#!/usr/bin/env node
// tabby-node's entry point (package bin, systemd unit, container, lab, benchmarks): sets the V8 heap
// policy (heap-policy.ts), then loads the agent's process (run.ts). In that order because an ES
// module's static imports are all parsed before the first of them runs: parsing tabby-node's ~200
// modules allocates enough to grow the young generation to 2 × 4–8 MB before the policy could keep
// it at 2 × 1 MB, and V8 keeps a young generation at the largest size it reached.
// Installed, tabby-node runs as one file (dist/tabby-node.cjs, bundle-entry.ts); tests run these modules.
import './heap-policy.js';
import fs from 'node:fs';
import { tuneMalloc } from './memory-trim.js';

/** Run tabby-node with this process's arguments; exits the process with the agent's exit code. */
export function startAgent(): void {
  tuneMalloc(); // before the threads that allocate get arenas of their own (memory-trim.ts)
  import('./run.js')
    .then(({ main }) => main(process.argv.slice(2)))
    .then(
      (code) => process.exit(code),
      (err: unknown) => {
        process.stderr.write(`tabby-node: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(1);
      },
    );
}

// realpath: npm's bin link (node_modules/.bin/tabby-node) is a symlink to this file.
const invokedDirectly = ((): boolean => {
  try {
    return process.argv[1] !== undefined && fs.realpathSync(process.argv[1]) === fs.realpathSync(new URL(import.meta.url).pathname);
  } catch {
    return false;
  }
})();
if (invokedDirectly) startAgent();
