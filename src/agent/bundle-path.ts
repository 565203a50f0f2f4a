// Which file runs tabby-node from a built tree (the lab, the benchmarks): the one-file build
// dist/tabby-node.cjs (deploy/bundle.mjs, `make build`) when it is there and none of the modules it was
// built from is newer — a `tsc` without the bundle step leaves it stale, and then the modules
// (dist/src/agent/main.js) run instead. TABBY_AGENT_ENTRY=modules picks the modules always (a test
// that traces which of tabby's modules the agent loads).
import fs from 'node:fs';
import path from 'node:path';

export const AGENT_BUNDLE = 'dist/tabby-node.cjs';
export const AGENT_MODULES_MAIN = 'dist/src/agent/main.js';

/** The agent's entry file in the built tree at `root`; undefined when tabby-node is not built there. */
export function agentEntryPath(root: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const bundle = path.join(root, AGENT_BUNDLE);
  if (env.TABBY_AGENT_ENTRY !== 'modules' && bundleFresh(root, bundle)) return bundle;
  const main = path.join(root, AGENT_MODULES_MAIN);
  return fs.existsSync(main) ? main : undefined;
}

/** The bundle exists and is not older than any module it lists as its input (a missing one: stale). */
function bundleFresh(root: string, bundle: string): boolean {
  try {
    const built = fs.statSync(bundle).mtimeMs;
    const inputs = JSON.parse(fs.readFileSync(`${bundle}.inputs.json`, 'utf8')) as string[];
    return inputs.length > 0 && inputs.every((f) => fs.statSync(path.join(root, f)).mtimeMs <= built);
  } catch {
    return false;
  }
}
