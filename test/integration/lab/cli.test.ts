// `tabbyctl lab up|status|exec|down` as a user runs them (the `make lab` path), each in its own
// process: up prints node status and the ping matrix, exec runs inside a node's namespace, status reads
// the state written by up, down leaves nothing behind.
import t from 'tap';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { agentMainPath, destroyLab } from '../../../src/lab/lab.js';
import { listNetns } from '../../../src/lab/netns.js';
import { repoRoot } from '../../../src/lab/pods.js';
import { runId } from '../../helpers/run-tag.js';

const run = runId();
const prefix = `tb${run}lx`;
const stateDir = `/tmp/${prefix}-state`;
const skip =
  process.getuid?.() !== 0
    ? 'needs root (network namespaces)'
    : !agentMainPath()
      ? 'needs tabby-node (dist/src/agent/main.js)'
      : !fs.existsSync(`${repoRoot()}/dist/src/cni/main.js`)
        ? 'needs the tabby CNI plugin (dist/src/cni/main.js)'
        : false;

const tabbyctl = (sub: string, ...args: string[]): { code: number | null; out: string } => {
  // options before the arguments: everything after `--` belongs to the command run by `lab exec`
  const r = spawnSync(
    process.execPath,
    [`${repoRoot()}/dist/src/cli/main.js`, 'lab', sub, '--prefix', prefix, '--state-dir', stateDir, ...args],
    { encoding: 'utf8', timeout: 150_000 },
  );
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
};

t.test('tabbyctl lab up / status / exec / down', { skip, timeout: 200_000 }, async (t) => {
  await destroyLab({ prefix, stateDir });
  t.teardown(() => destroyLab({ prefix, stateDir }));

  const up = tabbyctl('up', '--nodes', '2', '--mode', 'routed', '--timeout', '60');
  t.equal(up.code, 0, 'lab up succeeds');
  t.match(up.out, /encapsulation: routed \(requested with --mode\)/);
  t.match(
    up.out,
    /converged after [\d.]+ s: 2\/2 nodes converged, BGP sessions 2\/2 Established, block routes 2\/2 in kernels/,
    'waits for the cluster check, not only for sessions',
  );
  t.ok(up.out.indexOf('converged after') < up.out.indexOf('pod-to-pod ping matrix'), 'before the ping matrix');
  t.match(up.out, /== node-1: tabbyctl node status\ntabby-node process is running\.\n\nIPv4 BGP status\n/);
  t.match(up.out, /\| 172\.31\.1\.12 +\| node-to-node mesh \| up +\|.*\| Established \|/);
  t.match(up.out, /\| pod-1 +\| - +\| ok +\|/);
  t.match(up.out, /2\/2 pod pairs reach each other/);

  const route = tabbyctl('exec', 'node-1', '--', 'ip', 'route');
  t.equal(route.code, 0);
  t.match(
    route.out,
    /10\.244\.\d+\.\d+\/26 via 172\.31\.1\.12 dev eth0 proto 81/,
    "node-1 routes node-2's block via node-2 (plain routing)",
  );
  const ns = tabbyctl('exec', 'node-2', '--', 'node', `${repoRoot()}/dist/src/cli/main.js`, 'node', 'status');
  t.match(ns.out, /tabby-node process is running\./, 'tabbyctl node status inside the node finds its agent (TABBY_STATE_DIR set)');
  t.equal(tabbyctl('exec', 'node-1', '--', 'sh', '-c', 'exit 7').code, 7, 'exit status passed through');
  // `tabbyctl` inside a node: the lab's datastore (not an empty default store) and that node's agent.
  const ipam = tabbyctl('exec', 'node-1', '--', 'tabbyctl', 'ipam', 'show', '--show-blocks');
  t.equal(ipam.code, 0, ipam.out);
  t.match(ipam.out, /node-1/, "ipam show inside node-1 reads the lab's store");
  t.match(ipam.out, /node-2/);
  const env = tabbyctl('env', 'node-2');
  t.match(env.out, new RegExp(`^export DATASTORE_TYPE=file\nexport TABBY_DATASTORE_DIR=${stateDir}/datastore\n`, 'm'));
  t.match(env.out, new RegExp(`export TABBY_STATE_DIR=${stateDir}/nodes/node-2\n`));
  const viaEnv = spawnSync(
    'bash',
    [
      '-c',
      `eval "$(${process.execPath} ${repoRoot()}/dist/src/cli/main.js lab env node-2 --state-dir ${stateDir})"; shopt -s expand_aliases 2>/dev/null; ${process.execPath} ${repoRoot()}/dist/src/cli/main.js node status`,
    ],
    { encoding: 'utf8' },
  );
  t.match(
    viaEnv.stdout,
    /tabby-node process is running\./,
    'the host shell reaches node-2\'s agent after eval "$(tabbyctl lab env node-2)"',
  );

  const st = tabbyctl('status', '-o', 'json');
  const json = JSON.parse(st.out) as {
    nodes: { name: string }[];
    pods: { name: string; ip: string }[];
    agentStatus: Record<string, { peers: { state: string }[] } | null>;
  };
  t.same(
    json.nodes.map((n) => n.name),
    ['node-1', 'node-2'],
  );
  t.equal(json.pods.length, 2);
  t.same(
    json.agentStatus['node-1']?.peers.map((p) => p.state),
    ['Established'],
  );

  const down = tabbyctl('down');
  t.equal(down.code, 0);
  t.match(down.out, /lab down: stopped 2 process\(es\), deleted 6 namespace\(s\)/);
  t.same(listNetns(`${prefix}-`), []);
  t.notOk(fs.existsSync(stateDir));
  t.match(tabbyctl('status').out, /no lab in/);
});
