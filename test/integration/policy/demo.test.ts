// `tabbyctl lab up --policy-demo` as a user runs it: labelled pods in namespace demo and one policy;
// explain says ALLOW for client → web and DENY for other → web, and real pings agree (the command
// exits non-zero when they do not). Then `tabbyctl delete networkpolicy` and other → web answers again.
import t from 'tap';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { Lab, agentMainPath, destroyLab } from '../../../src/lab/lab.js';
import { repoRoot } from '../../../src/lab/pods.js';
import { runId } from '../../helpers/run-tag.js';

const run = runId();
const prefix = `tb${run}pd`;
const stateDir = `/tmp/${prefix}-state`;
const skip =
  process.getuid?.() !== 0
    ? 'needs root (network namespaces)'
    : !agentMainPath()
      ? 'needs tabby-node (dist/src/agent/main.js)'
      : !fs.existsSync(`${repoRoot()}/dist/src/cni/main.js`)
        ? 'needs the tabby CNI plugin (dist/src/cni/main.js)'
        : false;

const tabbyctl = (...args: string[]) => {
  const r = spawnSync(process.execPath, [`${repoRoot()}/dist/src/cli/main.js`, ...args], {
    encoding: 'utf8',
    timeout: 200_000,
    env: { ...process.env, DATASTORE_TYPE: 'file', TABBY_DATASTORE_DIR: `${stateDir}/datastore` },
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
};

t.test('tabbyctl lab up --policy-demo', { skip, timeout: 300_000 }, async (t) => {
  await destroyLab({ prefix, stateDir });
  t.teardown(() => destroyLab({ prefix, stateDir }));
  const up = tabbyctl('lab', 'up', '--prefix', prefix, '--state-dir', stateDir, '--nodes', '2', '--timeout', '90', '--policy-demo');
  t.equal(up.code, 0, 'lab up --policy-demo succeeds');
  t.match(
    up.out,
    /--from demo\/client --protocol icmp\n[^$]*Verdict: ingress from \S+ \(demo\/\S+client\S+\) icmp: ALLOW by NetworkPolicy demo\/web-from-clients rule 0/,
  );
  t.match(up.out, /Verdict: ingress from \S+ \(demo\/\S+other\S+\) icmp: DENY by default deny/);
  t.match(up.out, /ping with the policy: +client → web answered \(allowed\), other → web no answer \(denied\)/);
  const del = tabbyctl('delete', 'networkpolicy', 'web-from-clients', '-n', 'demo');
  t.equal(del.code, 0, del.out);
  const lab = Lab.open(stateDir)!;
  const web = lab.pods.find((p) => p.name === 'web')!;
  t.ok(await lab.pingUntil('other', web.ip, 20_000), 'policy deleted: other → web answers again');
});
