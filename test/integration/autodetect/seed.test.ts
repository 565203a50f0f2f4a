// The seed's situation (shared/seeds/002): two nodes, each with two links to the other on two
// subnets, NIC names differing per node and crossed —
//     vms71 ens32 192.168.26.71/24 ───── eth1 192.168.26.72/24 vms72
//     vms71 ens33 192.168.30.71/24 ───── eth0 192.168.30.72/24 vms72
// rebuilt in two network namespaces; for each of the seed's five IP_AUTODETECTION_METHOD settings the
// address each node picks is read from the real kernel (netlink + UDP connect inside the namespace).
import t from 'tap';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAutodetectionMethod } from '../../../src/autodetect/method.js';
import { detectAddress, resolveNodeAddresses, reachSource } from '../../../src/autodetect/detect.js';
import { AddressConflictError, autodetectConfigFromEnv } from '../../../src/autodetect/settings.js';
import { spawnIn, stopProcess, processStartTime } from '../../../src/lab/netns.js';
import { repoRoot } from '../../../src/lab/pods.js';
import { runId } from '../../helpers/run-tag.js';

const isRoot = process.getuid?.() === 0;
const run = runId();
const A = `tb${run}ad71`; // vms71
const B = `tb${run}ad72`; // vms72
const nsPath = (n: string): string => `/var/run/netns/${n}`;
const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

function build(): void {
  ip('netns', 'add', A);
  ip('netns', 'add', B);
  for (const n of [A, B]) ip('-n', n, 'link', 'set', 'lo', 'up');
  // Created in this order so that ens32 has a lower ifindex than ens33 (eth1 lower than eth0) in each netns.
  ip('link', 'add', 'name', 'ens32', 'netns', A, 'type', 'veth', 'peer', 'name', 'eth1', 'netns', B);
  ip('link', 'add', 'name', 'ens33', 'netns', A, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', B);
  // Noise the default exclusion list must skip: a docker bridge look-alike with the highest index.
  ip('-n', A, 'link', 'add', 'docker0', 'type', 'bridge');
  ip('-n', A, 'addr', 'add', '172.17.0.1/16', 'dev', 'docker0');
  ip('-n', A, 'link', 'set', 'docker0', 'up');
  const addrs: [string, string, string, string][] = [
    [A, 'ens32', '192.168.26.71/24', '2001:db8:26::71/64'],
    [A, 'ens33', '192.168.30.71/24', '2001:db8:30::71/64'],
    [B, 'eth1', '192.168.26.72/24', '2001:db8:26::72/64'],
    [B, 'eth0', '192.168.30.72/24', '2001:db8:30::72/64'],
  ];
  for (const [n, dev, v4, v6] of addrs) {
    ip('-n', n, 'addr', 'add', v4, 'dev', dev);
    ip('-n', n, 'addr', 'add', v6, 'dev', dev, 'nodad');
    ip('-n', n, 'link', 'set', dev, 'up');
  }
}

function destroy(): void {
  for (const n of [A, B]) {
    try {
      ip('netns', 'del', n);
    } catch {
      /* not there */
    }
  }
}

t.test('seed 002: two nodes, two crossed links, five settings', { skip: isRoot ? false : 'needs root (network namespaces)' }, async (t) => {
  destroy();
  t.teardown(destroy);
  build();

  const index = (n: string, dev: string): number =>
    (JSON.parse(ip('-n', n, '-j', 'link', 'show', dev)) as { ifindex: number }[])[0]!.ifindex;
  t.ok(
    index(A, 'ens32') < index(A, 'ens33') && index(A, 'ens33') < index(A, 'docker0'),
    'precondition: ifindex ens32 < ens33 < docker0 in vms71',
  );

  const pick = async (node: string, method: string, family: 4 | 6 = 4): Promise<string> => {
    const r = await detectAddress(parseAutodetectionMethod(method, family), family, { netnsPath: nsPath(node) });
    return r.ok ? `${r.choice.interface} ${r.choice.address}` : `FAIL ${r.reason}`;
  };

  // The seed's five cases, with what the article shows each node picking.
  const cases: [string, string, string][] = [
    ['interface=ens33,eth0', 'ens33 192.168.30.71/24', 'eth0 192.168.30.72/24'],
    ['interface=ens32,eth1', 'ens32 192.168.26.71/24', 'eth1 192.168.26.72/24'],
    ['skip-interface=eth1,ens32', 'ens33 192.168.30.71/24', 'eth0 192.168.30.72/24'],
    ['can-reach=192.168.30.1', 'ens33 192.168.30.71/24', 'eth0 192.168.30.72/24'],
    ['cidr=192.168.26.0/24', 'ens32 192.168.26.71/24', 'eth1 192.168.26.72/24'],
  ];
  for (const [method, want71, want72] of cases) {
    t.equal(await pick(A, method), want71, `vms71 with ${method}`);
    t.equal(await pick(B, method), want72, `vms72 with ${method}`);
  }

  t.equal(await pick(A, 'first-found'), 'ens33 192.168.30.71/24', 'first-found: docker0 excluded, highest index left wins');
  t.equal(await pick(B, 'first-found'), 'eth0 192.168.30.72/24');
  t.equal(await pick(A, 'interface=docker'), 'docker0 172.17.0.1/16', 'interface= applies no default exclusions');
  t.equal(await pick(A, 'cidr=2001:db8:26::/48', 6), 'ens32 2001:db8:26::71/64', 'IPv6 cidr=');
  t.equal(await pick(B, 'can-reach=2001:db8:30::1', 6), 'eth0 2001:db8:30::72/64', 'IPv6 can-reach');
  t.match(
    await pick(A, 'can-reach=10.99.0.1'),
    /^FAIL can-reach=10.99.0.1: the kernel gave no IPv4 source address/,
    'no route: a clear reason',
  );

  t.equal(await reachSource('192.168.26.1', 4, nsPath(B)), '192.168.26.72', 'UDP connect inside the node netns');

  // The whole decision, as the agent calls it: IP=autodetect, the seed's cidr= setting, and a conflict.
  const cfg = autodetectConfigFromEnv({ IP: 'autodetect', IP_AUTODETECTION_METHOD: 'cidr=192.168.26.0/24' });
  const r = await resolveNodeAddresses(cfg, { nodeName: 'vms72', netnsPath: nsPath(B) });
  t.same(
    [r.ipv4.source, r.ipv4.choice?.address, r.ipv4.choice?.interface, r.ipv6.source],
    ['detected', '192.168.26.72/24', 'eth1', 'none'],
  );
  await t.rejects(
    resolveNodeAddresses(cfg, {
      nodeName: 'vms72',
      netnsPath: nsPath(B),
      otherNodes: [{ metadata: { name: 'vms71' }, spec: { bgp: { ipv4Address: '192.168.26.72/24' } } }],
    }),
    AddressConflictError,
    'another Node holding the address: refuse, naming it',
  );
});

// With tabby-node on both nodes (plain routing: this kernel may lack ipip, and the next hop is what
// the seed is about), for each setting the route to the other node's block goes to the address the
// other node picked, out of the interface on that subnet — the seed's `via 192.168.30.72` /
// `via 192.168.26.72`.
const agentMain = `${repoRoot()}/dist/src/agent/main.js`;
t.test(
  "seed 002: routes between the nodes use the chosen subnet's next hop",
  {
    timeout: 150_000,
    skip: !isRoot ? 'needs root (network namespaces)' : !fs.existsSync(agentMain) ? 'needs tabby-node (dist/src/agent/main.js)' : false,
  },
  async (t) => {
    destroy();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `tb${run}ad-`));
    const procs: { pid: number; st: string }[] = [];
    const stopAll = async (): Promise<void> => {
      await Promise.all(procs.splice(0).map((p) => stopProcess(p.pid, p.st, 5000)));
    };
    t.teardown(async () => {
      await stopAll();
      destroy();
      fs.rmSync(tmp, { recursive: true, force: true });
    });
    build();

    type Route = { dst: string; gateway?: string; dev?: string; protocol?: string };
    const blockRoute = (node: string): Route | undefined =>
      (JSON.parse(ip('-n', node, '-j', 'route', 'show')) as Route[]).find((r) => r.dst.startsWith('10.244.') && r.gateway !== undefined);

    const cases: [string, string, string, string, string][] = [
      // method, A's route to B's block (via, dev), B's route to A's block (via, dev)
      ['interface=ens33,eth0', '192.168.30.72', 'ens33', '192.168.30.71', 'eth0'],
      ['interface=ens32,eth1', '192.168.26.72', 'ens32', '192.168.26.71', 'eth1'],
      ['skip-interface=eth1,ens32', '192.168.30.72', 'ens33', '192.168.30.71', 'eth0'],
      ['can-reach=192.168.30.1', '192.168.30.72', 'ens33', '192.168.30.71', 'eth0'],
      ['cidr=192.168.26.0/24', '192.168.26.72', 'ens32', '192.168.26.71', 'eth1'],
    ];
    let n = 0;
    for (const [method, viaA, devA, viaB, devB] of cases) {
      const dsDir = path.join(tmp, `ds${n++}`); // a fresh cluster per setting: no stored Node address
      for (const [ns, name] of [
        [A, 'vms71'],
        [B, 'vms72'],
      ] as const) {
        const env = {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          NODENAME: name,
          IP_AUTODETECTION_METHOD: method,
          DATASTORE_TYPE: 'file',
          TABBY_DATASTORE_DIR: dsDir,
          TABBY_STATE_DIR: path.join(dsDir, name),
          TABBY_HEALTH_ADDR: '127.0.0.1:9099',
          TABBY_METRICS_ADDR: 'none',
          TABBY_LOG_LEVEL: 'warn',
          CALICO_IPV4POOL_CIDR: '10.244.0.0/16',
          CALICO_IPV4POOL_IPIP: 'Never',
          CALICO_IPV4POOL_VXLAN: 'Never',
          CALICO_IPV4POOL_NAT_OUTGOING: 'false',
        };
        const log = fs.openSync(path.join(tmp, `${name}-${n}.log`), 'a');
        const child = spawnIn(ns, process.execPath, [agentMain], { env, stdio: ['ignore', log, log] });
        fs.closeSync(log);
        procs.push({ pid: child.pid!, st: processStartTime(child.pid!) ?? '' });
      }
      const deadline = Date.now() + 30_000;
      let ra: Route | undefined;
      let rb: Route | undefined;
      while (Date.now() < deadline) {
        ra = blockRoute(A);
        rb = blockRoute(B);
        if (ra && rb) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      t.same([ra?.gateway, ra?.dev], [viaA, devA], `${method}: vms71 routes vms72's block via ${viaA} dev ${devA}`);
      t.same([rb?.gateway, rb?.dev], [viaB, devB], `${method}: vms72 routes vms71's block via ${viaB} dev ${devB}`);
      await stopAll();
      for (const ns of [A, B]) {
        for (const r of JSON.parse(ip('-n', ns, '-j', 'route', 'show', 'proto', '81')) as Route[]) {
          try {
            ip('-n', ns, 'route', 'del', r.dst);
          } catch {
            /* already gone */
          }
        }
      }
    }
  },
);
