// The one-file tabby-node (dist/tabby-node.cjs, deploy/bundle.mjs): which file the lab and benchmarks
// run (agent/bundle-path.ts), and that the built bundle starts the agent the way main.ts does — heap
// policy first, the Kubernetes modules (node:https) still loaded only when configured.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { agentEntryPath, AGENT_BUNDLE, AGENT_MODULES_MAIN } from '../../../src/agent/bundle-path.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '../../../..');

t.test('the lab runs the bundle only while it is current', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tabby-bundle-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const put = (f: string, mtimeS: number): void => {
    fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    fs.writeFileSync(path.join(root, f), '');
    fs.utimesSync(path.join(root, f), mtimeS, mtimeS);
  };
  t.equal(agentEntryPath(root, {}), undefined, 'nothing built: none');
  put(AGENT_MODULES_MAIN, 1000);
  put('dist/src/agent/run.js', 1000);
  t.equal(agentEntryPath(root, {}), path.join(root, AGENT_MODULES_MAIN), 'modules only: the modules');
  put(AGENT_BUNDLE, 2000);
  t.equal(agentEntryPath(root, {}), path.join(root, AGENT_MODULES_MAIN), 'a bundle without its list of inputs: the modules');
  fs.writeFileSync(path.join(root, `${AGENT_BUNDLE}.inputs.json`), JSON.stringify([AGENT_MODULES_MAIN, 'dist/src/agent/run.js']));
  t.equal(agentEntryPath(root, {}), path.join(root, AGENT_BUNDLE), 'a bundle newer than its inputs: the bundle');
  t.equal(agentEntryPath(root, { TABBY_AGENT_ENTRY: 'modules' }), path.join(root, AGENT_MODULES_MAIN), 'TABBY_AGENT_ENTRY=modules');
  put('dist/src/agent/run.js', 3000);
  t.equal(agentEntryPath(root, {}), path.join(root, AGENT_MODULES_MAIN), 'a module rebuilt after the bundle (tsc alone): the modules');
  put(AGENT_BUNDLE, 4000);
  fs.rmSync(path.join(root, 'dist/src/agent/run.js'));
  t.equal(agentEntryPath(root, {}), path.join(root, AGENT_MODULES_MAIN), 'an input gone: the modules');
});

const bundle = path.join(ROOT, AGENT_BUNDLE);
const current = agentEntryPath(ROOT, {}) === bundle;
t.test(
  'the built bundle starts tabby-node: heap policy first, Kubernetes modules not loaded',
  { skip: current ? false : `${AGENT_BUNDLE} is not built or older than dist/src (make build builds it)` },
  async (t) => {
    const report = `data:text/javascript,${encodeURIComponent(`import v8 from 'node:v8';
process.on('exit', () => process.stderr.write('NEW ' + v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size + '\\nLOADED ' + JSON.stringify(process.moduleLoadList) + '\\n'));`)}`;
    // through env -u: tap puts its own preload into every child's NODE_OPTIONS
    const r = spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, '--import', report, bundle, '--version'], { encoding: 'utf8' });
    t.match(r.stdout, /^tabby-node v\d/, 'the bundle ran (--version)');
    const young = Number(/NEW (\d+)/.exec(r.stderr)?.[1]);
    t.ok(young > 0 && young <= 2.2 * 2 ** 20, `new space ${(young / 2 ** 20).toFixed(1)} MB after loading the bundle (≤ 2.2 MB)`);
    const loaded = JSON.parse(/LOADED (.*)/.exec(r.stderr)?.[1] ?? '[]') as string[];
    t.ok(loaded.includes('NativeModule http'), 'the agent was loaded (node:http, for its status server)');
    t.notOk(loaded.includes('NativeModule https'), 'node:https is not loaded (the Kubernetes modules stay lazy in the bundle)');
    const help = spawnSync(process.execPath, [bundle, '--help'], { encoding: 'utf8' });
    t.match(help.stdout, /^tabby-node \[flags\]/, '--help (a lazily loaded module) works');
  },
);
