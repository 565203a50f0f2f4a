// What a running tabby-node loads when a feature is not configured: a 2-node lab (real tabby-node
// processes, a BGP session between them, a block each), node-1's agent traced by a preload
// (test/helpers/module-trace.ts) that lists every ES module and node built-in the process has loaded.
// Not configured → not loaded: yargs (flags are parsed with node:util; --help loads yargs), the
// Kubernetes API client and its users (no API server: neither a service account nor K8S_API_ENDPOINT),
// node:https/tls, and libnftables while the node has no endpoint (no pod: no policy table to program);
// and no Date formatted through V8 (the first such call makes ICU load its time-zone data, ~1 MB).
// Configured (K8S_API_ENDPOINT on node-2) → the Kubernetes modules are loaded; a pod on node-1 → the
// policy engine loads libnftables and programs the pod's endpoint (nft's own listing shows it).
// Idle memory: these modules cost ~4 MB of the idle RSS (see /work/notes, issue #16).
import t from 'tap';
import path from 'node:path';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { agentLab, labSkipReason, until, run } from './helpers.js';
import { readTrace } from '../../helpers/module-trace.js';
import { repoRoot } from '../../../src/lab/pods.js';

const skip = labSkipReason() ?? false;
// The modules, not the one-file build (dist/tabby-node.cjs has no module URLs to trace): see bundle.test.ts.
process.env.TABBY_AGENT_ENTRY = 'modules';
const preload = (file: string): Record<string, string> => ({
  NODE_OPTIONS: `--import ${path.join(repoRoot(), 'dist/test/helpers/module-trace.js')}`,
  MODULE_TRACE_FILE: file,
});

t.test('an agent loads the modules of what is configured only', { skip }, async (t) => {
  const lab = await agentLab(t, 'im', { nodes: 2, mode: 'routed', startAgents: false });
  const traces = { 'node-1': `/tmp/tb${run}im-trace-1.json`, 'node-2': `/tmp/tb${run}im-trace-2.json` };
  t.teardown(async () => {
    // the agents first: their preload writes the trace every 200 ms
    for (const n of ['node-1', 'node-2']) await lab.stopAgent(n).catch(() => undefined);
    for (const f of Object.values(traces)) for (const x of [f, `${f}.urls`, `${f}.tmp`]) fs.rmSync(x, { force: true });
  });
  await lab.startAgent('node-1', preload(traces['node-1']));
  // node-2 is pointed at an API server (nothing answers there: the watch retries, which is enough here)
  await lab.startAgent('node-2', { ...preload(traces['node-2']), K8S_API_ENDPOINT: 'http://127.0.0.1:9' });
  const up = await until(async () => {
    const s = await lab.agentStatus('node-1');
    return s?.peers.some((p) => p.state === 'Established') && s.blocks.some((b) => b.state === 'confirmed') ? s : undefined;
  }, 60_000);
  t.ok(up, 'node-1: BGP session with node-2 Established and a block confirmed');

  const idle = await until(() => {
    const tr = readTrace(traces['node-1']);
    return tr?.modules.some((u) => u.endsWith('/dist/src/agent/agent.js')) ? tr : undefined;
  }, 10_000);
  t.ok(idle, 'the trace of node-1 lists the agent (the preload works)');
  const mods = idle?.modules ?? [];
  const builtins = idle?.builtins ?? [];
  for (const [what, hit] of [
    ['yargs', (u: string) => /\/node_modules\/yargs(-parser)?\//.test(u)],
    ['the Kubernetes API client (common/k8s-api.js)', (u: string) => u.endsWith('/common/k8s-api.js')],
    ['the Service watch (agent/k8s-service-watch.js)', (u: string) => u.endsWith('/agent/k8s-service-watch.js')],
    ['the pod label sync (policy/k8s-sync.js)', (u: string) => u.endsWith('/policy/k8s-sync.js')],
  ] as const)
    t.notOk(mods.find(hit), `node-1 (nothing configured) has not loaded ${what}`);
  for (const b of ['https', 'tls']) t.notOk(builtins.includes(`NativeModule ${b}`), `node-1 has not loaded node:${b}`);
  // Started, published its status, answered /status: no Date formatted by V8 (that loads ICU's zone data).
  await lab.agentStatus('node-1');
  await new Promise((r) => setTimeout(r, 500)); // the preload writes every 200 ms
  // (tap's process-info preload, inherited through NODE_OPTIONS, stamps its start time: not the agent's)
  const dates = (readTrace(traces['node-1'])?.dates ?? ['(no trace)']).filter((d) => !d.includes('/node_modules/@tapjs/'));
  t.same(dates, [], 'node-1 has formatted no Date through V8 (ICU time-zone data not loaded)');

  const k8s = await until(() => {
    const tr = readTrace(traces['node-2']);
    return tr?.modules.some((u) => u.endsWith('/policy/k8s-sync.js')) ? tr : undefined;
  }, 30_000);
  t.ok(
    k8s?.modules.some((u) => u.endsWith('/agent/k8s-service-watch.js')),
    'node-2 (K8S_API_ENDPOINT) has loaded the Service watch',
  );
  t.ok(
    k8s?.modules.some((u) => u.endsWith('/policy/k8s-sync.js')),
    'node-2 has loaded the pod label sync',
  );

  // the policy engine: no endpoint on node-1 → libnftables not loaded; a pod → loaded, endpoint programmed
  const pid = lab.node('node-1').agent!.pid;
  const nftLoaded = (): boolean => fs.readFileSync(`/proc/${pid}/maps`, 'utf8').includes('libnftables');
  t.equal(nftLoaded(), false, 'node-1 without pods has not loaded libnftables');
  await lab.addPod('node-1', 'web');
  const toWl = (): string => {
    try {
      return execFileSync('ip', ['netns', 'exec', lab.node('node-1').netns, 'nft', 'list', 'map', 'inet', 'tabby-policy', 'to-wl'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      });
    } catch {
      return '';
    }
  };
  t.ok(
    await until(() => toWl().includes('"cali'), 30_000),
    `the pod's endpoint is programmed in node-1's policy table: ${toWl().trim().split('\n').slice(-3).join(' ')}`,
  );
  t.equal(nftLoaded(), true, 'node-1 has loaded libnftables for it');
});
