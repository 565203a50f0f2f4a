import t from 'tap';
import os from 'node:os';
import { hostNodeName } from '../../../src/common/node-name.js';
import {
  AGENT_ENV,
  parseAgentConfig,
  ConfigError,
  HEALTH_PATHS,
  DEFAULT_HEALTH_PORT,
  DEFAULT_METRICS_PORT,
} from '../../../src/agent/config.js';

t.test('defaults match the configuration contract', async (t) => {
  const c = parseAgentConfig({ NODENAME: 'node-1' }, []);
  t.equal(c.nodeName, 'node-1');
  t.equal(c.mode, 'node');
  t.same(c.ip, { kind: 'unset' });
  t.same(c.ip6, { kind: 'unset' });
  t.equal(c.ipAutodetectionMethod, 'first-found');
  t.equal(c.autodetectPollIntervalMs, 60_000);
  t.equal(c.asNumber, undefined);
  t.equal(c.networkingBackend, 'bird');
  t.same(c.ipv4Pool, {
    cidr: '192.168.0.0/16',
    blockSize: 26,
    ipipMode: 'Always',
    vxlanMode: 'Never',
    natOutgoing: true,
    nodeSelector: 'all()',
    encapByKernel: true,
  });
  t.equal(c.ipv6Pool, undefined);
  t.equal(c.noDefaultPools, false);
  t.same(c.datastore, { type: 'file', dir: '/var/lib/tabby/datastore' });
  t.equal(c.stateDir, '/var/run/tabby');
  t.equal(c.statusSocketPath, '/var/run/tabby/tabby.sock');
  t.equal(c.nodenameFilePath, '/var/run/tabby/nodename');
  t.same(c.healthAddr, { host: '127.0.0.1', port: DEFAULT_HEALTH_PORT });
  t.same(c.metricsAddr, { host: '0.0.0.0', port: DEFAULT_METRICS_PORT });
  t.equal(c.gracefulRestartTimeSec, 120);
  t.equal(c.logLevel, 'info');
  t.equal(DEFAULT_HEALTH_PORT, 9099);
  t.equal(DEFAULT_METRICS_PORT, 9091);
  t.same(HEALTH_PATHS, { liveness: '/liveness', readiness: '/readiness', status: '/status', sessions: '/sessions' });
});

t.test('NODENAME defaults to the hostname, trimmed and lower-cased as Calico does', async (t) => {
  const c = parseAgentConfig({}, []);
  t.equal(c.nodeName, os.hostname().trim().toLowerCase(), 'whatever case the machine uses, the agent starts');
  t.equal(hostNodeName(' Worker-1.Example.COM\n'), 'worker-1.example.com', 'the full name, as Calico keeps it');
});

t.test('AGENT_ENV lists every name of the DESIGN contract, each once', async (t) => {
  const names = AGENT_ENV.map((e) => e.name);
  t.equal(new Set(names).size, names.length, 'no duplicates');
  t.equal(new Set(AGENT_ENV.map((e) => e.flag)).size, names.length, 'flags unique');
  for (const n of [
    'NODENAME',
    'IP',
    'IP6',
    'IP_AUTODETECTION_METHOD',
    'IP6_AUTODETECTION_METHOD',
    'AS',
    'CALICO_IPV4POOL_CIDR',
    'CALICO_IPV4POOL_BLOCK_SIZE',
    'CALICO_IPV4POOL_IPIP',
    'CALICO_IPV4POOL_VXLAN',
    'CALICO_IPV4POOL_NAT_OUTGOING',
    'CALICO_IPV6POOL_CIDR',
    'NO_DEFAULT_POOLS',
    'CALICO_NETWORKING_BACKEND',
    'CALICO_ROUTER_ID',
    'TABBY_MODE',
    'TABBY_STATE_DIR',
    'TABBY_HEALTH_ADDR',
    'TABBY_METRICS_ADDR',
    'TABBY_LOG_LEVEL',
    'DATASTORE_TYPE',
    'TABBY_DATASTORE_DIR',
    'ETCD_ENDPOINTS',
    'ETCD_CA_CERT_FILE',
    'ETCD_CERT_FILE',
    'ETCD_KEY_FILE',
    'AUTODETECT_POLL_INTERVAL',
  ]) {
    t.ok(names.includes(n), n);
  }
  for (const e of AGENT_ENV) t.ok(e.description.length > 10, `${e.name} described`);
});

t.test('env values are parsed and typed', async (t) => {
  const c = parseAgentConfig(
    {
      NODENAME: 'n2',
      IP: '10.0.0.5/24',
      IP6: 'autodetect',
      AS: '64512.100',
      CALICO_ROUTER_ID: '1.2.3.4',
      CALICO_IPV4POOL_CIDR: '10.244.0.0/16',
      CALICO_IPV4POOL_BLOCK_SIZE: '24',
      CALICO_IPV4POOL_IPIP: 'CrossSubnet',
      CALICO_IPV4POOL_NAT_OUTGOING: 'false',
      CALICO_IPV6POOL_CIDR: 'fd00:10::/48',
      NO_DEFAULT_POOLS: 'true',
      DATASTORE_TYPE: 'etcdv3',
      ETCD_ENDPOINTS: 'http://127.0.0.1:2379, http://10.0.0.1:2379',
      TABBY_STATE_DIR: '/tmp/x',
      TABBY_HEALTH_ADDR: '0.0.0.0:19099',
      TABBY_METRICS_ADDR: 'none',
      AUTODETECT_POLL_INTERVAL: '5m',
      TABBY_LOG_LEVEL: 'DEBUG',
      TABBY_NODE_LABELS: 'rack=r1, zone=a',
    },
    [],
  );
  t.same(c.ip, { kind: 'address', address: '10.0.0.5', prefixLen: 24 });
  t.same(c.ip6, { kind: 'autodetect' });
  t.equal(c.asNumber, 64512 * 65536 + 100);
  t.equal(c.routerId, '1.2.3.4');
  t.same(c.ipv4Pool, {
    cidr: '10.244.0.0/16',
    blockSize: 24,
    ipipMode: 'CrossSubnet',
    vxlanMode: 'Never',
    natOutgoing: false,
    nodeSelector: 'all()',
  });
  t.equal(c.ipv6Pool?.blockSize, 122);
  t.equal(c.noDefaultPools, true);
  t.same(c.datastore, {
    type: 'etcdv3',
    dir: '/var/lib/tabby/datastore',
    etcdEndpoints: ['http://127.0.0.1:2379', 'http://10.0.0.1:2379'],
  });
  t.equal(c.statusSocketPath, '/tmp/x/tabby.sock');
  t.same(c.healthAddr, { host: '0.0.0.0', port: 19099 });
  t.equal(c.metricsAddr, undefined);
  t.equal(c.autodetectPollIntervalMs, 300_000);
  t.equal(c.logLevel, 'debug');
  t.same(c.labels, { rack: 'r1', zone: 'a' });
  t.same(parseAgentConfig({ NODENAME: 'a', IP: '10.1.2.3' }).ip, { kind: 'address', address: '10.1.2.3' }, 'no prefix: recovered later');
  t.same(parseAgentConfig({ NODENAME: 'a', IP: 'none' }).ip, { kind: 'none' });
  t.same(parseAgentConfig({ NODENAME: 'a', IP: 'autodetect' }).ip, { kind: 'autodetect' });
});

t.test('flags override env', async (t) => {
  const c = parseAgentConfig({ NODENAME: 'from-env', TABBY_MODE: 'node' }, [
    '--nodename',
    'from-flag',
    '--mode',
    'route-reflector',
    '--netns',
    '/var/run/netns/n1',
    '--health-addr=127.0.0.1:1234',
  ]);
  t.equal(c.nodeName, 'from-flag');
  t.equal(c.mode, 'route-reflector');
  t.equal(c.rrClusterId, '244.0.0.1', 'route-reflector mode has a cluster ID by default');
  t.equal(c.labels['route-reflector'], 'true');
  t.equal(c.netns, '/var/run/netns/n1');
  t.same(c.healthAddr, { host: '127.0.0.1', port: 1234 });
});

t.test('VXLAN pools and backend', async (t) => {
  const a = parseAgentConfig({ NODENAME: 'a', CALICO_IPV4POOL_VXLAN: 'Always' });
  t.equal(a.ipv4Pool.vxlanMode, 'Always');
  t.equal(a.ipv4Pool.ipipMode, 'Never', 'the IPIP default yields to an explicit VXLAN');
  const b = parseAgentConfig({ NODENAME: 'a', CALICO_NETWORKING_BACKEND: 'vxlan' });
  t.equal(b.networkingBackend, 'vxlan');
  t.equal(b.ipv4Pool.ipipMode, 'Never');
  t.equal(b.ipv4Pool.vxlanMode, 'Always');
  t.throws(
    () => parseAgentConfig({ NODENAME: 'a', CALICO_IPV4POOL_VXLAN: 'Always', CALICO_IPV4POOL_IPIP: 'Always' }),
    /IPIP or VXLAN, not both/,
  );
});

t.test('bad input: ConfigError naming the variable', async (t) => {
  const cases: [Record<string, string>, string[], RegExp][] = [
    [{ IP: '10.0.0.300' }, [], /^invalid IP="10\.0\.0\.300"/],
    [{ IP: 'fd00::1' }, [], /invalid IP=.*IPv4/],
    [{ IP6: '10.0.0.1' }, [], /invalid IP6=/],
    [{ AS: 'abc' }, [], /invalid AS="abc"/],
    [{ AS: '0' }, [], /invalid AS/],
    [{ CALICO_ROUTER_ID: 'fd00::1' }, [], /invalid CALICO_ROUTER_ID/],
    [{ CALICO_IPV4POOL_CIDR: '10.0.0.1/16' }, [], /invalid CALICO_IPV4POOL_CIDR=.*host bits/],
    [{ CALICO_IPV4POOL_CIDR: '10.0.0.0/33' }, [], /invalid CALICO_IPV4POOL_CIDR/],
    [{ CALICO_IPV4POOL_CIDR: '10.0.0.0' }, [], /invalid CALICO_IPV4POOL_CIDR/],
    [{ CALICO_IPV4POOL_BLOCK_SIZE: '33' }, [], /invalid CALICO_IPV4POOL_BLOCK_SIZE/],
    [{ CALICO_IPV4POOL_CIDR: '10.0.0.0/28', CALICO_IPV4POOL_BLOCK_SIZE: '26' }, [], /CALICO_IPV4POOL_BLOCK_SIZE.*smaller than the pool/],
    [{ CALICO_IPV4POOL_IPIP: 'Sometimes' }, [], /invalid CALICO_IPV4POOL_IPIP="Sometimes": expected one of Always, CrossSubnet, Never/],
    [{ CALICO_IPV4POOL_NAT_OUTGOING: 'maybe' }, [], /invalid CALICO_IPV4POOL_NAT_OUTGOING/],
    [{ CALICO_NETWORKING_BACKEND: 'gobgp' }, [], /invalid CALICO_NETWORKING_BACKEND/],
    [{ TABBY_MODE: 'router' }, [], /invalid TABBY_MODE/],
    [{ DATASTORE_TYPE: 'kubernetes' }, [], /invalid DATASTORE_TYPE/],
    [{ DATASTORE_TYPE: 'etcdv3' }, [], /invalid ETCD_ENDPOINTS: required with DATASTORE_TYPE=etcdv3/],
    [{ ETCD_ENDPOINTS: 'ftp://127.0.0.1:2379' }, [], /invalid ETCD_ENDPOINTS/],
    [{ IP_AUTODETECTION_METHOD: 'cidr=10.0.0.0/33' }, [], /invalid IP_AUTODETECTION_METHOD/],
    [{ IP6_AUTODETECTION_METHOD: 'bogus' }, [], /invalid IP6_AUTODETECTION_METHOD/],
    [{ TABBY_NODE_INTERNAL_IP: 'x' }, [], /invalid TABBY_NODE_INTERNAL_IP/],
    [{ TABBY_HEALTH_ADDR: 'localhost' }, [], /invalid TABBY_HEALTH_ADDR/],
    [{ TABBY_METRICS_ADDR: ':99999' }, [], /invalid TABBY_METRICS_ADDR/],
    [{ TABBY_LOG_LEVEL: 'loud' }, [], /invalid TABBY_LOG_LEVEL/],
    [{ AUTODETECT_POLL_INTERVAL: 'often' }, [], /invalid AUTODETECT_POLL_INTERVAL/],
    [{ NODENAME: 'Bad_Name' }, [], /invalid NODENAME/],
    [{ TABBY_NETNS: 'relative/ns' }, [], /invalid TABBY_NETNS/],
    [{ TABBY_NODE_LABELS: 'a=b=c' }, [], /invalid TABBY_NODE_LABELS/],
    [{}, ['--mode', 'router'], /invalid --mode="router"/],
    [{}, ['--no-such-flag', 'x'], /invalid command line/],
  ];
  for (const [env, argv, re] of cases) {
    t.throws(() => parseAgentConfig({ NODENAME: 'n', ...env }, argv), re, `${JSON.stringify(env)} ${argv.join(' ')}`);
    try {
      parseAgentConfig({ NODENAME: 'n', ...env }, argv);
    } catch (e) {
      t.type(e, ConfigError);
    }
  }
});
