// Pure parts of the lab: names, addresses, pool modes per --mode, expected BGP peers, state round
// trip, the CNI netconf and the ping-matrix rendering.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { validateNodeName, LabError, Lab, pool6Modes } from '../../../src/lab/lab.js';
import { nodeAddress, nodeNetnsName, underlayNetnsName, routerNetnsName } from '../../../src/lab/topology.js';
import { readLabState, writeLabState, type LabState } from '../../../src/lab/state.js';
import { labNetConf, containerIdFor } from '../../../src/lab/pods.js';
import { renderPingMatrix } from '../../../src/cli/commands/lab.js';

t.test('node names', async (t) => {
  for (const ok of ['node-1', 'a', 'rr-2', 'worker42']) t.doesNotThrow(() => validateNodeName(ok), ok);
  for (const bad of ['', 'Node1', '-x', 'x-', 'underlay', 'router', 'pod-1', 'a_b', 'x'.repeat(31)]) {
    t.throws(() => validateNodeName(bad), LabError, `"${bad}" rejected`);
  }
});

t.test('names and addresses', async (t) => {
  t.equal(nodeNetnsName('tabby-lab', 'node-1'), 'tabby-lab-node-1');
  t.equal(underlayNetnsName('tabby-lab'), 'tabby-lab-underlay');
  t.equal(routerNetnsName('tabby-lab'), 'tabby-lab-router');
  t.equal(nodeAddress(1, 'a'), '172.31.1.11/24');
  t.equal(nodeAddress(2, 'b'), '172.31.2.12/24');
  t.equal(nodeAddress(240, 'a'), '172.31.1.250/24');
});

function state(over: Partial<LabState> = {}): LabState {
  return {
    version: 1,
    prefix: 'tbu',
    stateDir: '/nonexistent',
    mode: 'vxlan',
    modeReason: 'x',
    poolCidr: '10.244.0.0/16',
    meshEnabled: true,
    crossSubnet: false,
    underlayNetns: 'tbu-underlay',
    routerNetns: 'tbu-router',
    datastoreDir: '/nonexistent/ds',
    nextOrdinal: 4,
    createdAt: 'now',
    pods: [],
    nodes: [
      { name: 'node-1', ordinal: 1, netns: 'tbu-node-1', address: '172.31.1.11/24', subnet: 'a', role: 'node' },
      { name: 'node-2', ordinal: 2, netns: 'tbu-node-2', address: '172.31.1.12/24', subnet: 'a', role: 'node' },
      { name: 'rr-1', ordinal: 3, netns: 'tbu-rr-1', address: '172.31.1.13/24', subnet: 'a', role: 'route-reflector' },
    ],
    ...over,
  };
}

t.test('state round trip, and what a reader sees', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tbu-lab-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  t.equal(readLabState(dir), undefined, 'no lab yet');
  const s = state({ stateDir: dir });
  writeLabState(s);
  t.same(readLabState(dir), s);
  const lab = Lab.open(dir)!;
  t.equal(lab.node('node-2').netns, 'tbu-node-2');
  t.throws(() => lab.node('node-9'), /no lab node "node-9" \(nodes: node-1, node-2, rr-1\)/);
  t.equal(lab.netnsOf('underlay'), 'tbu-underlay');
  t.equal(lab.netnsOf('rr-1'), 'tbu-rr-1');
  t.throws(() => lab.netnsOf('pod-x'), /no lab node or pod "pod-x"/);
});

t.test('expected BGP peers: mesh, and route reflectors with the mesh off', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tbu-lab-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  writeLabState(state({ stateDir: dir }));
  const mesh = Lab.open(dir)!;
  t.equal(mesh.expectedPeers('node-1'), 2, 'mesh: every other node, reflectors included');
  t.equal(mesh.expectedPeers('rr-1'), 2);
  writeLabState(state({ stateDir: dir, meshEnabled: false }));
  const rr = Lab.open(dir)!;
  t.equal(rr.expectedPeers('node-1'), 1, 'client: only the reflectors');
  t.equal(rr.expectedPeers('rr-1'), 2, 'reflector: every other node');
});

t.test('CNI netconf as the installer writes it', async (t) => {
  const c = labNetConf({ binDir: '/b', datastoreDir: '/d', logFile: '/l', nodesDir: '/n' }, 'node-1');
  t.same(c, {
    cniVersion: '1.0.0',
    name: 'k8s-pod-network',
    type: 'tabby',
    nodename: 'node-1',
    datastore_type: 'file',
    datastore_dir: '/d',
    log_file_path: '/l',
    ipam: { type: 'tabby-ipam' },
  });
  t.match(containerIdFor('pod-1'), /^[0-9a-f]{32}$/);
  t.not(containerIdFor('pod-1'), containerIdFor('pod-2'));
});

t.test('ping matrix rendering', async (t) => {
  const m = renderPingMatrix(
    ['p1', 'p2'],
    [
      { from: 'p1', to: 'p2', toIp: '10.0.0.2', ok: true },
      { from: 'p2', to: 'p1', toIp: '10.0.0.1', ok: false },
    ],
  );
  t.match(m, /\| p1 +\| - +\| ok +\|/);
  t.match(m, /\| p2 +\| FAIL +\| - +\|/);
});

t.test('--ipv6: the IPv6 pool is VXLAN over IPv6 in the VXLAN modes, routed otherwise (no IPIP for IPv6)', async (t) => {
  t.same(pool6Modes('vxlan'), { ipipMode: 'Never', vxlanMode: 'Always' });
  t.same(pool6Modes('crosssubnet'), { ipipMode: 'Never', vxlanMode: 'CrossSubnet' });
  t.same(pool6Modes('routed'), { ipipMode: 'Never', vxlanMode: 'Never' });
  t.same(pool6Modes('ipip'), { ipipMode: 'Never', vxlanMode: 'Never' });
});
