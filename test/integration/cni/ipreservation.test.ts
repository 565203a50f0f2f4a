// IPReservation and IPPool allowedUses through real CNI ADDs (the compiled plugin in a node namespace,
// as containerd runs it): every pod's eth0 address, read with `ip addr` in the pod, is outside the
// reserved addresses and outside the Tunnel-only pool; when only reserved addresses are left the ADD
// fails with CNI's pool-exhausted code; a pod may still ask for a reserved address by name (CNI_ARGS
// IP=, Calico's ipAddrs annotation), but never for one in the Tunnel-only pool.
import t from 'tap';
import { FileDatastore } from '../../../src/datastore/file.js';
import { Reservations } from '../../../src/ipam/index.js';
import { POOLS_PREFIX, RESERVATIONS_PREFIX } from '../../../src/datastore/keys.js';
import { parseIp } from '../../../src/common/ip.js';
import { CNI_ERR } from '../../../src/cni/netconf.js';
import { PLUGIN, cniEnv, containerIdOf, ip, isRoot, makeNode, runPlugin } from './harness.js';
import { runTag } from '../../helpers/run-tag.js';

const tag = `${runTag().slice(0, 10)}r`;
const skip = !isRoot() ? 'needs root (network namespaces)' : false;
const RESERVED = ['10.247.0.0/30', '10.247.0.9', '10.247.0.14/31'];

t.test('pods never get a reserved address nor one of a Tunnel-only pool', { skip }, async (t) => {
  // One 16-address block of pods (7 reserved: 9 usable) and a Tunnel-only pool that sorts first.
  const node = await makeNode(tag, [
    { name: 'a-tunnels', cidr: '10.248.0.0/28', blockSize: 28 },
    { name: 'pods', cidr: '10.247.0.0/28', blockSize: 28 },
  ]);
  t.teardown(() => node.destroy());
  const ds = new FileDatastore(node.dsDir);
  const tun = await ds.get<{ spec: Record<string, unknown> }>(`${POOLS_PREFIX}a-tunnels`);
  await ds.update(`${POOLS_PREFIX}a-tunnels`, { ...tun!.value, spec: { ...tun!.value.spec, allowedUses: ['Tunnel'] } }, tun!.revision);
  await ds.create(`${RESERVATIONS_PREFIX}keep-out`, {
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPReservation',
    metadata: { name: 'keep-out' },
    spec: { reservedCIDRs: RESERVED },
  });
  await ds.close();
  const reserved = new Reservations(RESERVED);
  const conf = JSON.stringify(node.conf());

  const got: string[] = [];
  for (let i = 0; i < 9; i++) {
    const netns = node.makePod(i);
    const r = await runPlugin(node.ns, PLUGIN, cniEnv('ADD', containerIdOf(tag, i), netns, `pod-${i}`), conf);
    t.equal(r.code, 0, `ADD pod-${i}: ${r.stderr}${r.stdout}`);
    const addr = /inet (\S+)\/32/.exec(ip('-n', node.podNs(i), '-4', '-o', 'addr', 'show', 'dev', 'eth0'))?.[1] ?? '';
    got.push(addr);
  }
  t.same(
    got.filter((a) => reserved.matchesIp(parseIp(a))),
    [],
    `no pod holds a reserved address (${got.join(' ')})`,
  );
  t.same(
    got.filter((a) => !a.startsWith('10.247.0.')),
    [],
    'every pod address is from the Workload pool',
  );
  t.equal(new Set(got).size, 9, 'the 9 unreserved addresses, each once');

  const netns = node.makePod('x');
  const full = await runPlugin(node.ns, PLUGIN, cniEnv('ADD', containerIdOf(tag, 'x'), netns, 'pod-x'), conf);
  t.equal(full.code, 1, 'only reserved addresses left: the ADD fails');
  t.equal(full.json.code, CNI_ERR.POOL_EXHAUSTED, `pool exhausted: ${full.json.msg}`);
  t.match(full.json.msg, /wholly reserved|exhausted/);

  const asked = await runPlugin(
    node.ns,
    PLUGIN,
    cniEnv('ADD', containerIdOf(tag, 'y'), node.makePod('y'), 'pod-y', {
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-y;IP=10.247.0.9`,
    }),
    conf,
  );
  t.equal(asked.code, 0, `a reserved address asked for by name is given: ${asked.stdout}`);
  t.match(ip('-n', node.podNs('y'), '-4', '-o', 'addr', 'show', 'dev', 'eth0'), /inet 10\.247\.0\.9\/32/);

  const tunnel = await runPlugin(
    node.ns,
    PLUGIN,
    cniEnv('ADD', containerIdOf(tag, 'z'), node.makePod('z'), 'pod-z', {
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-z;IP=10.248.0.3`,
    }),
    conf,
  );
  t.equal(tunnel.code, 1, 'an address of the Tunnel-only pool is refused');
  t.equal(tunnel.json.code, CNI_ERR.INVALID_NETCONF);
  t.match(tunnel.json.msg, /allowedUses do not include Workload/);
});
