// The manifests' settings run for real: the route-reflector Deployment's environment and the tabby-node
// DaemonSet's environment (rendered from deploy/kubernetes/route-reflectors) start real tabby-node
// processes in two network namespaces joined by a veth; the datastore holds tabby-resources'
// bgpconfiguration-rr.yaml and bgppeer-route-reflectors.yaml. Then: the probes' paths answer on the
// probes' address, the node's session to the reflector comes up through the BGPPeer's selector (so the
// node turns ready), the reflector's Node carries the cluster ID, /metrics answers on the metrics port,
// and SIGTERM (what tini forwards, what systemd sends) ends both with exit 0 well inside the 30 s grace.
// Only what a cluster would supply differently is replaced: file datastore in a temp dir (instead of
// etcd), NODENAME (spec.nodeName), the state dir, and IPIP off (this kernel may lack ipip).
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { renderKustomization, readYamlDocs } from '../../unit/deploy/fixtures/kustomize.js';
import { containers } from '../../unit/deploy/fixtures/manifest-check.js';
import { openDatastore } from '../../../src/datastore/index.js';
import { ResourceStore, type Resource } from '../../../src/datastore/resources.js';
import { kernelHasIpip } from '../../../src/dataplane/index.js';
import { runId } from '../../helpers/run-tag.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const AGENT = path.join(ROOT, 'dist/src/agent/main.js');
const run = runId();
const skip =
  process.getuid?.() !== 0
    ? 'needs root (network namespaces)'
    : !fs.existsSync(AGENT)
      ? 'tabby-node is not built (dist/src/agent/main.js)'
      : false;

/** GET http://HOST:PORT/PATH from inside a netns: {status, body}. */
function getIn(netns: string, url: string): { status: number; body: string } {
  const js = `fetch(${JSON.stringify(url)}).then(async r => { process.stdout.write(JSON.stringify({status: r.status, body: await r.text()})); }).catch(e => { process.stdout.write(JSON.stringify({status: 0, body: String(e)})); })`;
  const out = spawnSync('ip', ['netns', 'exec', netns, process.execPath, '-e', js], { encoding: 'utf8', timeout: 10_000 });
  try {
    return JSON.parse(out.stdout) as { status: number; body: string };
  } catch {
    return { status: 0, body: out.stderr };
  }
}

async function until<T>(fn: () => T | undefined | false, timeoutMs: number): Promise<T | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) return undefined;
    await new Promise((r) => setTimeout(r, 250));
  }
}

t.test('manifest environments run: probes, RR peering by selector, metrics, SIGTERM', { skip, timeout: 240_000 }, async (t) => {
  const tag = `tb${run}dp`;
  const nsRr = `${tag}R`,
    nsNode = `${tag}N`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-`));
  const procs: ChildProcess[] = [];
  const cleanup = (): void => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const ns of [nsRr, nsNode]) spawnSync('ip', ['netns', 'del', ns]);
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  cleanup();
  fs.mkdirSync(tmp, { recursive: true });
  t.teardown(cleanup);

  // Two "hosts": 10.199.0.1 (reflector) and 10.199.0.2 (node) on one link.
  const ip = (...a: string[]): void => {
    execFileSync('ip', a, { stdio: 'pipe' });
  };
  ip('netns', 'add', nsRr);
  ip('netns', 'add', nsNode);
  ip('link', 'add', `${tag}a`, 'type', 'veth', 'peer', 'name', `${tag}b`);
  ip('link', 'set', `${tag}a`, 'netns', nsRr);
  ip('link', 'set', `${tag}b`, 'netns', nsNode);
  for (const [ns, dev, addr] of [
    [nsRr, `${tag}a`, '10.199.0.1/24'],
    [nsNode, `${tag}b`, '10.199.0.2/24'],
  ] as const) {
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'link', 'set', dev, 'name', 'eth0');
    ip('-n', ns, 'addr', 'add', addr, 'dev', 'eth0');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
  }

  // The datastore: mesh off, every node peers with the reflectors (the files the README applies).
  const dsDir = path.join(tmp, 'datastore');
  const ds = await openDatastore({ type: 'file', dir: dsDir });
  const store = new ResourceStore(ds);
  for (const f of ['bgpconfiguration-rr.yaml', 'bgppeer-route-reflectors.yaml']) {
    for (const doc of readYamlDocs(path.join(ROOT, 'deploy/kubernetes/tabby-resources', f))) await store.apply(doc as Resource);
  }

  const refs = containers(renderKustomization(path.join(ROOT, 'deploy/kubernetes/route-reflectors'))).refs;
  const envOf = (container: string, nodeName: string): Record<string, string> => {
    const r = refs.find((x) => x.container === container);
    if (!r) throw new Error(`no container ${container}`);
    const env: Record<string, string> = { ...r.env };
    for (const k of Object.keys(env)) if (k.startsWith('ETCD_')) delete env[k];
    return {
      ...env,
      DATASTORE_TYPE: 'file',
      TABBY_DATASTORE_DIR: dsDir,
      NODENAME: nodeName,
      TABBY_STATE_DIR: path.join(tmp, `state-${nodeName}`),
    };
  };
  const rrEnv = envOf('route-reflector', 'rr-1');
  const nodeEnv = envOf('tabby-node', 'node-1');
  t.equal(rrEnv.TABBY_MODE, 'route-reflector', "the Deployment's mode");
  t.equal(nodeEnv.IP_AUTODETECTION_METHOD, 'first-found', "the DaemonSet's detection");

  const logs: Record<string, string> = {};
  const start = (ns: string, name: string, env: Record<string, string>): ChildProcess => {
    const p = spawn('ip', ['netns', 'exec', ns, process.execPath, AGENT], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    logs[name] = '';
    p.stderr!.on('data', (d: Buffer) => {
      logs[name] = (logs[name]! + d.toString()).slice(-4000);
    });
    procs.push(p);
    return p;
  };
  const rr = start(nsRr, 'rr-1', rrEnv);
  const node = start(nsNode, 'node-1', nodeEnv);

  // Probes exactly as the manifests declare them (host, port, path).
  const probe = (container: string, kind: 'livenessProbe' | 'readinessProbe'): string => {
    const g = (refs.find((x) => x.container === container)!.spec[kind] as { httpGet: { host: string; port: number; path: string } })
      .httpGet;
    return `http://${g.host}:${g.port}${g.path}`;
  };
  for (const [ns, c, who] of [
    [nsRr, 'route-reflector', 'rr-1'],
    [nsNode, 'tabby-node', 'node-1'],
  ] as const) {
    const live = await until(() => getIn(ns, probe(c, 'livenessProbe')).status === 200, 60_000);
    t.ok(live, `${who}: liveness probe ${probe(c, 'livenessProbe')} answers 200`, { log: live ? '' : logs[who] });
  }
  // The node is ready only with its session to the reflector up: the BGPPeer's peerSelector found it.
  const ready = await until(() => getIn(nsNode, probe('tabby-node', 'readinessProbe')).status === 200, 90_000);
  t.ok(ready, 'node-1: readiness 200 (session to the reflector Established)', {
    log: ready ? '' : `${getIn(nsNode, 'http://127.0.0.1:9099/status').body.slice(0, 600)}\n${logs['node-1']}`,
  });
  const status = JSON.parse(getIn(nsNode, 'http://127.0.0.1:9099/status').body) as { peers: { address: string; state: string }[] };
  t.same(
    status.peers.map((p) => [p.address, p.state]),
    [['10.199.0.1', 'Established']],
    'one peer: the reflector (mesh off)',
  );
  t.equal(getIn(nsRr, probe('route-reflector', 'readinessProbe')).status, 200, 'rr-1: readiness 200');
  t.equal(
    getIn(nsNode, 'http://127.0.0.1:9099/healthz').status,
    404,
    'a path the agent does not serve is 404 (the probe paths are not just any path)',
  );
  const metrics = getIn(nsNode, 'http://127.0.0.1:9091/metrics');
  t.equal(metrics.status, 200, 'metrics on the metrics port');
  t.match(metrics.body, /^# TYPE /m);

  // The pool the node created from the DaemonSet's defaults fits this kernel (IPIP only where it has ipip).
  const pool = await store.get('IPPool', 'default-ipv4-ippool');
  t.same(
    [pool?.spec.ipipMode, pool?.spec.vxlanMode],
    kernelHasIpip() ? ['Always', 'Never'] : ['Never', 'Always'],
    `default pool: ${kernelHasIpip() ? 'IPIP' : 'VXLAN (no ipip in this kernel)'}`,
  );
  // The reflector's Node: cluster ID and the label the BGPPeer selects.
  const rrNode = await store.get('Node', 'rr-1');
  t.match(rrNode, {
    metadata: { labels: { 'route-reflector': 'true' } },
    spec: { bgp: { routeReflectorClusterID: '244.0.0.1', ipv4Address: '10.199.0.1/24' } },
  });
  await ds.close();

  // SIGTERM: both stop gracefully, exit 0, well inside terminationGracePeriodSeconds / TimeoutStopSec (30 s).
  for (const [p, who] of [
    [node, 'node-1'],
    [rr, 'rr-1'],
  ] as const) {
    const t0 = Date.now();
    const exited = new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)));
    p.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      exited,
      new Promise<string>((r) => {
        timer = setTimeout(() => r('timeout'), 25_000);
      }),
    ]);
    clearTimeout(timer);
    t.equal(code, 0, `${who}: exit 0 on SIGTERM`, { log: code === 0 ? '' : logs[who] });
    t.comment(`${who} stopped ${Date.now() - t0} ms after SIGTERM`);
  }
});

t.test(
  'the systemd env file runs: tabby-node with deploy/systemd/tabby-node.env answers its health address and stops on SIGTERM',
  { skip, timeout: 150_000 },
  async (t) => {
    const { parseEnvFile } = await import('../../unit/deploy/fixtures/kustomize.js');
    const ns = `tb${run}dpS`;
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `tb${run}dps-`));
    let proc: ChildProcess | undefined;
    t.teardown(() => {
      if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      spawnSync('ip', ['netns', 'del', ns]);
      fs.rmSync(tmp, { recursive: true, force: true });
    });
    spawnSync('ip', ['netns', 'del', ns]);
    execFileSync('ip', ['netns', 'add', ns]);
    for (const a of [
      ['link', 'set', 'lo', 'up'],
      ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1'],
      ['addr', 'add', '10.198.0.1/24', 'dev', 'eth0'],
      ['link', 'set', 'eth1', 'up'],
      ['link', 'set', 'eth0', 'up'],
    ]) {
      execFileSync('ip', ['-n', ns, ...a]);
    }
    // As systemd would start it, with StateDirectory/RuntimeDirectory moved into the temp dir.
    const env: Record<string, string> = {
      ...parseEnvFile(path.join(ROOT, 'deploy/systemd/tabby-node.env')),
      NODENAME: 'host-1',
      TABBY_DATASTORE_DIR: path.join(tmp, 'datastore'),
      TABBY_STATE_DIR: path.join(tmp, 'run'),
    };
    const unit = fs.readFileSync(path.join(ROOT, 'deploy/systemd/tabby-node.service'), 'utf8');
    const main = /^ExecStart=\S+ (\S+)$/m.exec(unit)![1]!.replace('/opt/tabby/app', ROOT);
    let log = '';
    proc = spawn('ip', ['netns', 'exec', ns, process.execPath, main], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    proc.stderr!.on('data', (d: Buffer) => {
      log = (log + d.toString()).slice(-4000);
    });
    const live = await until(() => getIn(ns, `http://${env.TABBY_HEALTH_ADDR!}/liveness`).status === 200, 60_000);
    t.ok(live, `liveness on TABBY_HEALTH_ADDR=${env.TABBY_HEALTH_ADDR!}`, { log: live ? '' : log });
    t.ok(fs.existsSync(path.join(tmp, 'run/tabby.sock')), 'status socket in the runtime directory');
    t.equal(fs.readFileSync(path.join(tmp, 'run/nodename'), 'utf8').trim(), 'host-1', 'nodename file for the CNI plugin');
    const p = proc;
    const exited = new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)));
    p.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      exited,
      new Promise<string>((r) => {
        timer = setTimeout(() => r('timeout'), 25_000);
      }),
    ]);
    clearTimeout(timer);
    t.equal(code, 0, 'exit 0 on SIGTERM (KillSignal=SIGTERM, TimeoutStopSec=30)', { log: code === 0 ? '' : log });
  },
);
