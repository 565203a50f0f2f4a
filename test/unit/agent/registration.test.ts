import t from 'tap';
import { desiredNode, defaultPools, fitToKernel } from '../../../src/agent/registration.js';
import { parseAgentConfig } from '../../../src/agent/config.js';
import type { NodeRes, PoolRes } from '../../../src/agent/ports.js';

t.test('desiredNode: addresses with prefix, AS, RR cluster ID and labels; other fields kept', async (t) => {
  const cfg = parseAgentConfig({ NODENAME: 'n1', AS: '65001', TABBY_NODE_LABELS: 'rack=r1' });
  const fresh = desiredNode(undefined, cfg, { ipv4: '10.0.0.5/24' });
  t.same(fresh, {
    apiVersion: 'projectcalico.org/v3',
    kind: 'Node',
    metadata: { name: 'n1', labels: { rack: 'r1' } },
    spec: { bgp: { ipv4Address: '10.0.0.5/24', asNumber: 65001 } },
  });
  const cur: NodeRes = {
    apiVersion: 'projectcalico.org/v3',
    kind: 'Node',
    metadata: { name: 'n1', labels: { zone: 'a' }, resourceVersion: '7' },
    spec: {
      bgp: { ipv4Address: '10.0.0.4/24', ipv6Address: 'fd00::4/64', routeReflectorClusterID: '1.1.1.1', ipv4IPIPTunnelAddr: '10.244.0.1' },
      vxlanTunnelMACAddr: '66:00:00:00:00:01',
    },
  };
  const upd = desiredNode(cur, cfg, { ipv4: '10.0.0.5/24' });
  t.same(upd.metadata, { name: 'n1', labels: { zone: 'a', rack: 'r1' }, resourceVersion: '7' }, 'labels merged, CAS version kept');
  t.same(
    upd.spec,
    { bgp: { ipv4Address: '10.0.0.5/24', asNumber: 65001, ipv4IPIPTunnelAddr: '10.244.0.1' }, vxlanTunnelMACAddr: '66:00:00:00:00:01' },
    'address updated, IPv6 gone (none now), stale cluster ID removed in node mode, tunnel data kept',
  );
  t.equal(cur.spec.bgp?.ipv4Address, '10.0.0.4/24', 'input not mutated');
  const rr = desiredNode(undefined, parseAgentConfig({ NODENAME: 'rr1', TABBY_MODE: 'route-reflector' }), { ipv4: '10.0.0.100/24' });
  t.same(rr.spec.bgp, { ipv4Address: '10.0.0.100/24', routeReflectorClusterID: '244.0.0.1' });
  t.same(rr.metadata.labels, { 'route-reflector': 'true' });
});

t.test('defaultPools: one per configured family, only when that family has no pool, never with NO_DEFAULT_POOLS', async (t) => {
  const cfg = parseAgentConfig({ NODENAME: 'n1', CALICO_IPV6POOL_CIDR: 'fd00:10::/48', CALICO_IPV4POOL_VXLAN: 'CrossSubnet' });
  const both = defaultPools(cfg, []);
  t.same(
    both.map((p) => [p.metadata.name, p.spec.cidr, p.spec.ipipMode, p.spec.vxlanMode, p.spec.blockSize]),
    [
      ['default-ipv4-ippool', '192.168.0.0/16', 'Never', 'CrossSubnet', 26],
      ['default-ipv6-ippool', 'fd00:10::/48', 'Never', 'Never', 122],
    ],
  );
  const v4: PoolRes = {
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPPool',
    metadata: { name: 'mine' },
    spec: { cidr: '10.1.0.0/16' } as PoolRes['spec'],
  };
  t.same(
    defaultPools(cfg, [v4]).map((p) => p.metadata.name),
    ['default-ipv6-ippool'],
  );
  t.same(defaultPools(parseAgentConfig({ NODENAME: 'n1', NO_DEFAULT_POOLS: 'true' }), []), []);
});

t.test('fitToKernel: nothing chosen + no ipip in the kernel = VXLAN; an explicit choice is kept', async (t) => {
  const modes = (env: Record<string, string>, ipip: boolean) => {
    const cfg = parseAgentConfig({ NODENAME: 'n1', ...env });
    const pool = defaultPools(cfg, [], ipip)[0]!;
    return [pool.spec.ipipMode, pool.spec.vxlanMode, fitToKernel(cfg.ipv4Pool, ipip).switched];
  };
  t.same(modes({}, true), ['Always', 'Never', false], "kernel with ipip: Calico's default IPIP Always");
  t.same(modes({}, false), ['Never', 'Always', true], 'kernel without ipip: VXLAN Always');
  t.same(modes({ CALICO_IPV4POOL_IPIP: '', CALICO_IPV4POOL_VXLAN: ' ' }, false), ['Never', 'Always', true], 'empty counts as unset');
  t.same(modes({ CALICO_IPV4POOL_IPIP: 'Always' }, false), ['Always', 'Never', false], 'explicit Always kept (the agent reports it)');
  t.same(modes({ CALICO_IPV4POOL_IPIP: 'CrossSubnet' }, false), ['CrossSubnet', 'Never', false]);
  t.same(modes({ CALICO_IPV4POOL_IPIP: 'Never' }, false), ['Never', 'Never', false], 'explicit Never: plain routing');
  t.same(
    modes({ CALICO_IPV4POOL_VXLAN: 'Never' }, false),
    ['Always', 'Never', false],
    'VXLAN explicitly off: IPIP as chosen by default, reported',
  );
  t.same(modes({ CALICO_IPV4POOL_VXLAN: 'CrossSubnet' }, false), ['Never', 'CrossSubnet', false]);
  t.same(modes({ CALICO_NETWORKING_BACKEND: 'vxlan' }, false), ['Never', 'Always', false], 'vxlan backend: VXLAN already');
  t.same(modes({ CALICO_NETWORKING_BACKEND: 'none' }, false), ['Always', 'Never', false], 'no routing: the pool as configured');
  t.same(parseAgentConfig({ NODENAME: 'n1' }, ['--ipv4pool-ipip', 'Always']).ipv4Pool.encapByKernel, undefined, 'a flag is a choice too');
});
