// The lab runs tabby-node as installed: the one-file build dist/tabby-node.cjs (deploy/bundle.mjs), not
// the modules. Two nodes: each agent's command line is the bundle, the BGP session comes up, and each
// node's block is in the other's kernel table via its address (`ip route`).
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { agentLab, labSkipReason, routeTo, until, blockOf, nodeIp } from './helpers.js';
import { agentEntryPath, AGENT_BUNDLE } from '../../../src/agent/bundle-path.js';
import { repoRoot } from '../../../src/lab/pods.js';

const bundle = path.join(repoRoot(), AGENT_BUNDLE);
const skip =
  labSkipReason() ??
  (process.env.TABBY_AGENT_ENTRY === 'modules' || agentEntryPath(repoRoot()) !== bundle
    ? `${AGENT_BUNDLE} is not built or older than dist/src (make build builds it)`
    : false);

t.test('lab agents run the one-file tabby-node and route between the nodes', { skip }, async (t) => {
  const lab = await agentLab(t, 'bu', { nodes: 2, mode: 'routed' });
  for (const n of ['node-1', 'node-2']) {
    const cmd = fs.readFileSync(`/proc/${lab.node(n).agent!.pid}/cmdline`, 'utf8').split('\0');
    t.equal(cmd[1], bundle, `${n}'s agent runs ${AGENT_BUNDLE}`);
  }
  const up = await until(async () => (await lab.agentStatus('node-1'))?.peers.some((p) => p.state === 'Established'), 60_000);
  t.ok(up, 'node-1: BGP session with node-2 Established');
  const b1 = await blockOf(lab, 'node-1');
  const b2 = await blockOf(lab, 'node-2');
  t.ok(
    await until(() => routeTo(lab.node('node-1').netns, b2)?.gateway === nodeIp(lab, 'node-2'), 30_000),
    `node-1 routes ${b2} via node-2`,
  );
  t.ok(
    await until(() => routeTo(lab.node('node-2').netns, b1)?.gateway === nodeIp(lab, 'node-1'), 30_000),
    `node-2 routes ${b1} via node-1`,
  );
});
