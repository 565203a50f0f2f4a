// The agent core end to end over real ResourceStore + Ipam on a MemoryDatastore, with a fake BGP
// network (speakers that hand originated prefixes to each other) and a recording dataplane.
import t from 'tap';
import { pino } from 'pino';
import { MemoryDatastore } from '../../../src/datastore/memory.js';
import { ResourceStore } from '../../../src/datastore/resources.js';
import { DatastoreUnavailable, type Datastore } from '../../../src/datastore/types.js';
import { Ipam } from '../../../src/ipam/index.js';
import { Agent } from '../../../src/agent/agent.js';
import { parseAgentConfig } from '../../../src/agent/config.js';
import { resourcesPort, ipamPort, calicoSelectorMatch } from '../../../src/agent/wiring-store.js';
import type { DataplanePort, SpeakerPort, SpeakerPeerConfig, SpeakerPeerStatus, SpeakerOptions } from '../../../src/agent/ports.js';
import type { KernelRoute } from '../../../src/agent/routes.js';
import { ServiceState } from '../../../src/agent/k8s-services.js';

class FakeNet {
  speakers = new Map<string, FakeSpeaker>();
}

class FakeSpeaker implements SpeakerPort {
  peerCfg = new Map<string, SpeakerPeerConfig>();
  originated = new Map<string, string>();
  running = false;
  stoppedGraceful: boolean | undefined;
  private best: ((ev: { prefix: string; nextHops: string[] }) => void)[] = [];
  private wd: ((ev: { prefix: string }) => void)[] = [];
  private pc: (() => void)[] = [];
  constructor(
    readonly net: FakeNet,
    readonly addr: string,
    readonly opts: SpeakerOptions,
  ) {
    net.speakers.set(addr, this);
  }
  async start() {
    this.running = true;
    for (const s of this.net.speakers.values()) s.resend();
  }
  async stop(o: { graceful: boolean }) {
    this.running = false;
    this.stoppedGraceful = o.graceful;
  }
  addPeer(p: SpeakerPeerConfig) {
    this.peerCfg.set(p.address, p);
    for (const s of this.net.speakers.values()) s.resend();
    this.pc.forEach((f) => f());
  }
  updatePeer(p: SpeakerPeerConfig) {
    this.peerCfg.set(p.address, p);
  }
  removePeer(a: string) {
    this.peerCfg.delete(a);
  }
  originate(prefix: string, o: { nextHop?: string } = {}) {
    this.originated.set(prefix, o.nextHop ?? this.addr);
    this.resend();
  }
  withdraw(prefix: string) {
    this.originated.delete(prefix);
    for (const s of this.net.speakers.values()) if (s !== this) s.wd.forEach((f) => f({ prefix }));
  }
  /** Peers established = both sides configured each other and both running. */
  established(a: string) {
    const o = this.net.speakers.get(a);
    return this.running && !!o?.running && o.peerCfg.has(this.addr);
  }
  peers(): SpeakerPeerStatus[] {
    return [...this.peerCfg.values()].map((p) => ({
      address: p.address,
      asn: p.asn,
      state: this.established(p.address) ? 'Established' : 'Active',
      since: new Date(0),
      info: this.established(p.address) ? 'Established' : 'Active Socket: Connection refused',
      prefixesReceived: 0,
      prefixesAccepted: 0,
    }));
  }
  resend() {
    for (const [prefix, nh] of this.originated)
      for (const s of this.net.speakers.values())
        if (s !== this && s.peerCfg.has(this.addr) && this.established(s.addr)) s.best.forEach((f) => f({ prefix, nextHops: [nh] }));
  }
  onBest(f: (ev: { prefix: string; nextHops: string[] }) => void) {
    this.best.push(f);
  }
  onWithdrawn(f: (ev: { prefix: string }) => void) {
    this.wd.push(f);
  }
  onPeerChange(f: () => void) {
    this.pc.push(f);
  }
}

class FakeDataplane implements DataplanePort {
  /** the kernel routes as the deltas left them, at each apply() */
  applies: { routes: KernelRoute[]; allowDeletes: boolean }[] = [];
  routes = new Map<string, KernelRoute>();
  held = false;
  tunnels: string[] = [];
  nat: { cidr: string; natOutgoing: boolean }[] = [];
  constructor(readonly ipip = true) {}
  async kernelHasIpip() {
    return this.ipip;
  }
  async ensureForwarding() {}
  async ensureIpipTunnel(o: { address?: string | undefined }) {
    this.tunnels.push(`tunl0 ${o.address}`);
  }
  async ensureVxlanTunnel(o: { localIp: string; mac: string; address?: string | undefined }) {
    this.tunnels.push(`vxlan ${o.address} ${o.mac} ${o.localIp}`);
  }
  vxlanMacForNode(n: string) {
    return `66:00:00:00:00:${n === 'a' ? '0a' : '0b'}`;
  }
  setRoute(r: KernelRoute) {
    this.routes.set(r.dst, r);
  }
  deleteRoute(dst: string) {
    this.routes.delete(dst);
  }
  holdDeletes(h: boolean) {
    this.held = h;
  }
  addressLists = 0;
  async interfaceAddresses() {
    this.addressLists++;
    return [];
  }
  progress() {
    return { inSync: true, desired: this.routes.size, pending: 0, held: 0 };
  }
  async apply() {
    this.applies.push({ routes: [...this.routes.values()], allowDeletes: !this.held });
    return this.progress();
  }
  async applyNat(p: { cidr: string; natOutgoing: boolean }[]) {
    this.nat = p;
  }
  async close() {}
  /** the kernel routes now (learned routes arrive as deltas, without an apply()) */
  get last() {
    return this.applies.length ? { routes: [...this.routes.values()], allowDeletes: !this.held } : undefined;
  }
}

/** A datastore that can be taken "down". */
class FlakyDatastore {
  down = false;
  constructor(readonly inner: MemoryDatastore) {}
  wrap(): Datastore {
    const inner = this.inner;
    const self = this;
    const guard = <T>(fn: () => Promise<T>): Promise<T> =>
      self.down ? Promise.reject(new DatastoreUnavailable('', 'connection refused')) : fn();
    return {
      kind: 'memory',
      get: (k) => guard(() => inner.get(k)),
      list: (p) => guard(() => inner.list(p)),
      create: (k, v) => guard(() => inner.create(k, v)),
      update: (k, v, r) => guard(() => inner.update(k, v, r)),
      delete: (k, r) => guard(() => inner.delete(k, r)),
      commit: (ops) => guard(() => inner.commit(ops)),
      revision: () => guard(() => inner.revision()),
      watch: (p, r, s) =>
        (async function* () {
          if (self.down) throw new DatastoreUnavailable(p, 'connection refused');
          for await (const ev of inner.watch(p, r, s)) {
            if (self.down) throw new DatastoreUnavailable(p, 'connection refused');
            yield ev;
          }
        })() as never,
      close: () => inner.close(),
    } as Datastore;
  }
}

const until = async (t: { fail(m: string): void }, what: string, fn: () => boolean, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) {
      t.fail(`timed out waiting: ${what}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
};

const timing = {
  resyncDebounceMs: 10,
  periodicResyncMs: 60_000,
  probeIntervalMs: 50,
  probeTimeoutMs: 40,
  convergeDeadlineMs: 5000,
  convergeQuietMs: 100,
  routeDebounceMs: 5,
};

function makeAgent(
  name: string,
  addr: string,
  ds: Datastore,
  net: FakeNet,
  dp: FakeDataplane,
  env: Record<string, string> = {},
  current: { addr: string } = { addr },
  extra: Record<string, unknown> = {},
) {
  const config = parseAgentConfig({
    NODENAME: name,
    CALICO_IPV4POOL_CIDR: '10.244.0.0/16',
    CALICO_IPV4POOL_IPIP: 'Never',
    TABBY_STATE_DIR: '/nonexistent',
    ...env,
  });
  const store = new ResourceStore(ds);
  const agent = new Agent({
    config,
    ds,
    resources: resourcesPort(store),
    ipam: config.mode === 'node' ? ipamPort(new Ipam(ds)) : undefined,
    dataplane: config.mode === 'node' ? dp : undefined,
    speakerFactory: (o: SpeakerOptions) => new FakeSpeaker(net, addr.split('/')[0]!, o),
    addresses: { resolve: async () => ({ ipv4: current.addr }) },
    selector: calicoSelectorMatch,
    timing,
    ...extra,
  } as never);
  return { agent, store };
}

t.test('two nodes: registration, default pool, blocks, mesh peering, routes both ways, live config changes', async (t) => {
  const mem = new MemoryDatastore();
  const net = new FakeNet();
  const dpa = new FakeDataplane(),
    dpb = new FakeDataplane();
  const a = makeAgent('a', '10.0.0.1/24', mem, net, dpa);
  const b = makeAgent('b', '10.0.0.2/24', mem, net, dpb);
  await a.agent.start();
  await b.agent.start();
  t.teardown(async () => {
    await a.agent.stop();
    await b.agent.stop();
  });

  const nodeA = await a.store.get('Node', 'a');
  t.equal(nodeA?.spec.bgp?.ipv4Address, '10.0.0.1/24', 'Node registered with address/prefix');
  const pools = (await a.store.list('IPPool')).items;
  t.same(
    pools.map((p) => [p.metadata.name, p.spec.cidr, p.spec.ipipMode, p.spec.natOutgoing]),
    [['default-ipv4-ippool', '10.244.0.0/16', 'Never', true]],
  );

  await until(
    t,
    'both have a peer Established and a route to the other block',
    () =>
      a.agent.status().peers[0]?.state === 'Established' &&
      !!dpa.last?.routes.some((r) => r.gateway === '10.0.0.2') &&
      !!dpb.last?.routes.some((r) => r.gateway === '10.0.0.1'),
  );
  const sa = a.agent.status();
  t.equal(sa.blocks.length, 1);
  t.equal(sa.blocks[0]!.state, 'confirmed');
  t.same(sa.exports, [sa.blocks[0]!.cidr], 'own block exported');
  t.same(
    sa.peers.map((p) => [p.address, p.type]),
    [['10.0.0.2', 'node-to-node mesh']],
  );
  const sb = b.agent.status();
  t.ok(
    dpa.last!.routes.some((r) => r.dst === sb.blocks[0]!.cidr && r.gateway === '10.0.0.2' && !r.dev),
    "b's block via 10.0.0.2 (Never: plain)",
  );
  t.ok(
    dpa.last!.routes.some((r) => r.dst === sa.blocks[0]!.cidr && r.type === 'blackhole'),
    'own blackhole',
  );
  const speakerA = net.speakers.get('10.0.0.1')!;
  t.equal(speakerA.peerCfg.get('10.0.0.2')?.passive, true, 'lower address is passive');
  t.equal(speakerA.opts.gracefulRestart?.restartTime, 120);
  await until(t, 'readiness', () => a.agent.readiness().ready);
  t.same(a.agent.readiness().reasons, []);
  t.same(dpa.nat, [{ cidr: '10.244.0.0/16', natOutgoing: true }]);

  // Live: a global BGPPeer appears → added to the speaker without a restart.
  await a.store.create({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPPeer',
    metadata: { name: 'tor' },
    spec: { peerIP: '10.0.0.254', asNumber: 65000 },
  } as never);
  await until(t, 'global peer added', () => speakerA.peerCfg.has('10.0.0.254'));
  t.equal(a.agent.status().peers.find((p) => p.address === '10.0.0.254')?.type, 'global');
  t.equal(a.agent.readiness().ready, false, 'not ready while a configured peer is down');
  // Mesh off → node-to-node sessions removed.
  await a.store.create({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPConfiguration',
    metadata: { name: 'default' },
    spec: { nodeToNodeMeshEnabled: false },
  } as never);
  await until(t, 'mesh peer removed', () => !speakerA.peerCfg.has('10.0.0.2'));
  t.ok(speakerA.peerCfg.has('10.0.0.254'));
  // Service cluster IPs advertised from every node, live.
  const bc = await a.store.get('BGPConfiguration', 'default');
  await a.store.update({ ...bc!, spec: { ...bc!.spec, serviceClusterIPs: [{ cidr: '10.96.0.0/12' }] } } as never);
  await until(t, 'service CIDR originated', () => speakerA.originated.has('10.96.0.0/12'));
  t.equal(speakerA.originated.get('10.96.0.0/12'), '10.0.0.1', 'next hop: the node');
});

t.test('graceful restart: no kernel route deleted until converged', async (t) => {
  const mem = new MemoryDatastore();
  const net = new FakeNet();
  const dpa = new FakeDataplane(),
    dpb = new FakeDataplane();
  const a = makeAgent('a', '10.0.0.1/24', mem, net, dpa);
  const b = makeAgent('b', '10.0.0.2/24', mem, net, dpb);
  await b.agent.start();
  await a.agent.start();
  t.teardown(async () => {
    await a.agent.stop();
    await b.agent.stop();
  });
  t.equal(dpa.applies[0]?.allowDeletes, false, 'first programming after start never deletes');
  await until(t, 'converged', () => a.agent.hasConverged);
  await until(t, 'a delete-allowing apply', () => dpa.last?.allowDeletes === true);
  t.ok(dpa.applies.filter((x) => !x.allowDeletes).length >= 1);
  await a.agent.stop({ graceful: true });
  t.equal(net.speakers.get('10.0.0.1')!.stoppedGraceful, true, 'SIGTERM path: graceful BGP stop');
});

t.test('datastore outage: kernel untouched, readiness says down, resync picks up changes made meanwhile', async (t) => {
  const mem = new MemoryDatastore();
  const flaky = new FlakyDatastore(mem);
  const net = new FakeNet();
  const dpa = new FakeDataplane(),
    dpb = new FakeDataplane();
  const a = makeAgent('a', '10.0.0.1/24', flaky.wrap(), net, dpa);
  const b = makeAgent('b', '10.0.0.2/24', mem, net, dpb);
  await a.agent.start();
  await b.agent.start();
  t.teardown(async () => {
    await a.agent.stop();
    await b.agent.stop();
  });
  await until(t, 'ready', () => a.agent.readiness().ready);
  const before = JSON.stringify(dpa.last!.routes);
  const nApplies = dpa.applies.length;
  flaky.down = true;
  await until(t, 'readiness reports datastore down', () => a.agent.readiness().datastore === 'down');
  t.match(a.agent.readiness().reasons.join('\n'), /datastore down/);
  // Another writer adds a peer meanwhile.
  await b.store.create({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPPeer',
    metadata: { name: 'tor' },
    spec: { peerIP: '10.0.0.254', asNumber: 65000 },
  } as never);
  await new Promise((r) => setTimeout(r, 300));
  t.equal(JSON.stringify(dpa.last!.routes), before, 'no kernel change while the datastore is down');
  t.ok(dpa.applies.slice(nApplies).every((x) => JSON.stringify(x.routes) === before));
  flaky.down = false;
  await until(t, 'datastore back up', () => a.agent.readiness().datastore === 'up');
  await until(t, 'resynced: new peer picked up', () => net.speakers.get('10.0.0.1')!.peerCfg.has('10.0.0.254'));
});

t.test('IPIP pool on a kernel without ipip: reported, no tunnel created; VXLAN pool: VTEP on the Node and vxlan routes', async (t) => {
  const mem = new MemoryDatastore();
  const net = new FakeNet();
  const dpa = new FakeDataplane(false);
  const a = makeAgent('a', '10.0.0.1/24', mem, net, dpa, { CALICO_IPV4POOL_IPIP: 'Always' });
  await a.agent.start();
  t.teardown(() => a.agent.stop());
  t.same(dpa.tunnels, [], 'tunl0 never created');
  t.match(a.agent.status().problems[0], /^kernel has no ipip support: use vxlanMode or ipipMode Never/);
  t.match(a.agent.readiness().reasons.join('\n'), /kernel has no ipip support/);

  const mem2 = new MemoryDatastore();
  const net2 = new FakeNet();
  const dv1 = new FakeDataplane(false),
    dv2 = new FakeDataplane(false);
  const v1 = makeAgent('a', '10.0.0.1/24', mem2, net2, dv1, { CALICO_IPV4POOL_VXLAN: 'Always' });
  const v2 = makeAgent('b', '10.1.0.2/24', mem2, net2, dv2, { CALICO_IPV4POOL_VXLAN: 'Always' });
  await v1.agent.start();
  await v2.agent.start();
  t.teardown(async () => {
    await v1.agent.stop();
    await v2.agent.stop();
  });
  const n1 = await v1.store.get('Node', 'a');
  t.match(n1?.spec.ipv4VXLANTunnelAddr, /^10\.244\./, "VTEP address from the node's block");
  t.equal(n1?.spec.vxlanTunnelMACAddr, '66:00:00:00:00:0a');
  t.same(v1.agent.status().exports, [], 'no BGP export of VXLAN pools');
  await until(t, 'vxlan route to b', () => !!dv1.last?.routes.some((r) => r.dev === 'vxlan.calico'));
  const n2 = await v1.store.get('Node', 'b');
  t.ok(dv1.last!.routes.some((r) => r.gateway === n2?.spec.ipv4VXLANTunnelAddr && r.onlink));
});

t.test('no pool mode chosen on a kernel without ipip: the default pool is VXLAN, the agent says so once and becomes ready', async (t) => {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino(
    { level: 'info' },
    {
      write: (s: string) => {
        lines.push(JSON.parse(s) as { level: number; msg: string });
      },
    },
  );
  const mem = new MemoryDatastore();
  const net = new FakeNet();
  const da = new FakeDataplane(false),
    db = new FakeDataplane(false);
  const unset = { CALICO_IPV4POOL_IPIP: '', CALICO_IPV4POOL_VXLAN: '' };
  const a = makeAgent('a', '10.0.0.1/24', mem, net, da, unset, undefined, { logger });
  const b = makeAgent('b', '10.0.0.2/24', mem, net, db, unset, undefined, { logger });
  await a.agent.start();
  await b.agent.start();
  t.teardown(async () => {
    await a.agent.stop();
    await b.agent.stop();
  });
  const pools = (await a.store.list('IPPool')).items;
  t.same(
    pools.map((p) => [p.metadata.name, p.spec.ipipMode, p.spec.vxlanMode]),
    [['default-ipv4-ippool', 'Never', 'Always']],
  );
  const said = lines.filter((l) => /no ipip support.*default pool uses VXLAN/.test(l.msg));
  t.equal(said.length, 1, 'said once (by the node that created the pool)');
  t.equal(said[0]?.level, 40, 'as a warning');
  t.same(a.agent.status().problems, [], 'no problem reported');
  await until(t, 'vxlan route a -> b', () => !!da.last?.routes.some((r) => r.dev === 'vxlan.calico'));
  await until(t, 'ready', () => a.agent.readiness().ready);
  t.same(
    da.tunnels.filter((x) => String(x).includes('tunl0')),
    [],
    'no tunl0',
  );
});

t.test('route-reflector mode: no IPAM, no dataplane, cluster ID on the Node, clients by selector', async (t) => {
  const mem = new MemoryDatastore();
  const net = new FakeNet();
  const dp = new FakeDataplane();
  const rr = makeAgent('rr1', '10.0.0.100/24', mem, net, dp, { TABBY_MODE: 'route-reflector' });
  const a = makeAgent('a', '10.0.0.1/24', mem, net, new FakeDataplane());
  await a.store.create({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPConfiguration',
    metadata: { name: 'default' },
    spec: { nodeToNodeMeshEnabled: false },
  } as never);
  await a.store.create({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPPeer',
    metadata: { name: 'peer-with-rrs' },
    spec: { nodeSelector: 'all()', peerSelector: "route-reflector == 'true'" },
  } as never);
  await rr.agent.start();
  await a.agent.start();
  t.teardown(async () => {
    await a.agent.stop();
    await rr.agent.stop();
  });
  const node = await rr.store.get('Node', 'rr1');
  t.equal(node?.spec.bgp?.routeReflectorClusterID, '244.0.0.1');
  t.equal(node?.metadata.labels?.['route-reflector'], 'true');
  t.same(dp.applies, [], 'no dataplane in RR mode');
  t.same(rr.agent.status().blocks, []);
  const sp = net.speakers.get('10.0.0.100')!;
  t.equal(sp.opts.clusterId, '244.0.0.1');
  await until(t, 'rr peers with the client', () => sp.peerCfg.get('10.0.0.1')?.routeReflectorClient === true);
  t.equal(net.speakers.get('10.0.0.1')!.peerCfg.get('10.0.0.100')?.routeReflectorClient, false);
});

t.test('address change (re-detection): Node updated, peers and next hops follow, no restart', async (t) => {
  const mem = new MemoryDatastore();
  const net = new FakeNet();
  const cur = { addr: '10.0.0.1/24' };
  const a = makeAgent('a', '10.0.0.1/24', mem, net, new FakeDataplane(), {}, cur);
  const b = makeAgent('b', '10.0.0.2/24', mem, net, new FakeDataplane());
  await a.agent.start();
  await b.agent.start();
  t.teardown(async () => {
    await a.agent.stop();
    await b.agent.stop();
  });
  const sb = net.speakers.get('10.0.0.2')!;
  await until(t, 'b peers with a', () => sb.peerCfg.has('10.0.0.1'));
  cur.addr = '10.0.0.9/24';
  t.same(await a.agent.redetect(), { ipv4: '10.0.0.9/24' });
  await a.agent.onAddressesChanged({ ipv4: '10.0.0.9/24' });
  t.equal((await a.store.get('Node', 'a'))?.spec.bgp?.ipv4Address, '10.0.0.9/24', 'Node updated');
  await until(t, 'b re-peers with the new address', () => sb.peerCfg.has('10.0.0.9') && !sb.peerCfg.has('10.0.0.1'));
  const sa = net.speakers.get('10.0.0.1')!;
  t.ok(
    [...sa.originated.values()].every((nh) => nh === '10.0.0.9'),
    'own blocks originated with the new next hop',
  );
  t.equal(sa.peerCfg.get('10.0.0.2')?.localAddress, '10.0.0.9', 'sessions sourced from the new address');
});

t.test('a pool switched from plain routing to VXLAN live: tunnel created, routes move to vxlan.calico, BGP export stops', async (t) => {
  const mem = new MemoryDatastore();
  const net = new FakeNet();
  const d1 = new FakeDataplane(false),
    d2 = new FakeDataplane(false);
  const a = makeAgent('a', '10.0.0.1/24', mem, net, d1);
  const b = makeAgent('b', '10.0.0.2/24', mem, net, d2);
  await a.agent.start();
  await b.agent.start();
  t.teardown(async () => {
    await a.agent.stop();
    await b.agent.stop();
  });
  await until(t, 'plain route to b', () => !!d1.last?.routes.some((r) => r.gateway === '10.0.0.2'));
  t.same(d1.tunnels, []);
  const pool = await a.store.get('IPPool', 'default-ipv4-ippool');
  await a.store.update({ ...pool!, spec: { ...pool!.spec, vxlanMode: 'Always' } } as never);
  await until(t, 'route via vxlan.calico', () => !!d1.last?.routes.some((r) => r.dev === 'vxlan.calico'));
  t.match(d1.tunnels, [/^vxlan 10\.244\./], 'vxlan.calico created with a VTEP address from the block');
  t.notOk(
    d1.last!.routes.some((r) => r.gateway === '10.0.0.2' && !r.dev),
    'plain route replaced',
  );
  await until(t, 'export withdrawn', () => a.agent.status().exports.length === 0);
  t.same(a.agent.status().exports, [], 'VXLAN pool no longer exported over BGP');
});

t.test('own Node deleted while running: registered again', async (t) => {
  const mem = new MemoryDatastore();
  const a = makeAgent('a', '10.0.0.1/24', mem, new FakeNet(), new FakeDataplane());
  await a.agent.start();
  t.teardown(() => a.agent.stop());
  await a.store.delete('Node', 'a');
  let back: unknown;
  await until(t, 'Node back', () => {
    void a.store.get('Node', 'a').then((n) => {
      back = n;
    });
    return back !== undefined;
  });
  t.match(back, { spec: { bgp: { ipv4Address: '10.0.0.1/24' } } });
});

t.test('IPPool allowedUses: the VTEP address comes from the Tunnel pool, the pod block from the Workload pool', async (t) => {
  const mem = new MemoryDatastore();
  const store = new ResourceStore(mem);
  const pool = (name: string, cidr: string, allowedUses: string[]) =>
    store.create({
      apiVersion: 'projectcalico.org/v3',
      kind: 'IPPool',
      metadata: { name },
      spec: { cidr, vxlanMode: 'Always', allowedUses },
    } as never);
  await pool('a-tunnels', '10.250.0.0/24', ['Tunnel']);
  await pool('pods', '10.244.0.0/16', ['Workload']);
  const dp = new FakeDataplane(false);
  const a = makeAgent('a', '10.0.0.1/24', mem, new FakeNet(), dp);
  await a.agent.start();
  t.teardown(() => a.agent.stop());
  const node = await a.store.get('Node', 'a');
  t.match(node?.spec.ipv4VXLANTunnelAddr, /^10\.250\.0\./, 'VTEP address from the Tunnel-only pool');
  t.match(dp.tunnels, [/^vxlan 10\.250\.0\./]);
  const blocks = await new Ipam(mem).listBlocks();
  t.same(blocks.map((b) => b.pool).sort(), ['a-tunnels', 'pods'], "the node's pod block is from the Workload pool");

  // A VXLAN pool without Tunnel gives no VTEP address (Calico's tunnel allocator skips it); the device is still made.
  const mem2 = new MemoryDatastore();
  await new ResourceStore(mem2).create({
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPPool',
    metadata: { name: 'pods' },
    spec: { cidr: '10.244.0.0/16', vxlanMode: 'Always', allowedUses: ['Workload'] },
  } as never);
  const dp2 = new FakeDataplane(false);
  const b = makeAgent('a', '10.0.0.1/24', mem2, new FakeNet(), dp2);
  await b.agent.start();
  t.teardown(() => b.agent.stop());
  t.equal((await b.store.get('Node', 'a'))?.spec.ipv4VXLANTunnelAddr, undefined, 'no VTEP address from a Workload-only pool');
  t.same(dp2.tunnels, ['vxlan undefined 66:00:00:00:00:0a 10.0.0.1']);
  t.equal((await new Ipam(mem2).listBlocks()).length, 1, 'the pod block is still claimed');
});

t.test('Kubernetes services: a Local service /32 is originated while this node has an endpoint, withdrawn when it leaves', async (t) => {
  const mem = new MemoryDatastore();
  const store = new ResourceStore(mem);
  await store.create({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPConfiguration',
    metadata: { name: 'default' },
    spec: { serviceClusterIPs: [{ cidr: '10.96.0.0/12' }], serviceLoadBalancerIPs: [{ cidr: '198.51.100.0/24' }] },
  } as never);
  const state = new ServiceState();
  const listeners: (() => void)[] = [];
  const services = { state, onChange: (f: () => void) => listeners.push(f) };
  const changed = () => listeners.forEach((f) => f());
  const net = new FakeNet();
  const a = makeAgent('a', '10.0.0.1/24', mem, net, new FakeDataplane(), {}, { addr: '10.0.0.1/24' }, { services });
  await a.agent.start();
  t.teardown(() => a.agent.stop());
  const sp = net.speakers.get('10.0.0.1')!;
  await until(t, 'service ranges originated', () => sp.originated.has('10.96.0.0/12') && sp.originated.has('198.51.100.0/24'));
  const meta = { name: 'shop', namespace: 'web' };
  state.onService({
    type: 'ADDED',
    object: {
      metadata: meta,
      spec: { type: 'ClusterIP', clusterIP: '10.96.0.10', externalTrafficPolicy: 'Local', ipFamilies: ['IPv4'] },
    } as never,
  });
  const slice = (node: string) =>
    ({
      metadata: { name: 'shop-1', namespace: 'web', labels: { 'kubernetes.io/service-name': 'shop' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.244.1.5'], nodeName: node, conditions: { ready: true } }],
    }) as never;
  state.onSlice({ type: 'ADDED', object: slice('a') });
  changed();
  await until(t, '/32 originated', () => sp.originated.has('10.96.0.10/32'));
  state.onSlice({ type: 'MODIFIED', object: slice('b') });
  changed();
  await until(t, '/32 withdrawn', () => !sp.originated.has('10.96.0.10/32'));
  t.ok(sp.originated.has('10.96.0.0/12'), 'the range stays');
  const cfg = await store.get('BGPConfiguration', 'default');
  await store.update({ ...cfg!, spec: { ...cfg!.spec, serviceLoadBalancerAggregation: 'Disabled' } } as never);
  await until(t, 'LB range withdrawn with aggregation Disabled', () => !sp.originated.has('198.51.100.0/24'));
});

t.test('interface addresses are listed only while a BGPFilter uses interfaces (no dump every 2 s otherwise)', async (t) => {
  const mem = new MemoryDatastore();
  const dp = new FakeDataplane();
  const a = makeAgent('a', '10.0.0.1/24', mem, new FakeNet(), dp);
  await a.agent.start();
  t.teardown(() => a.agent.stop());
  await new Promise((r) => setTimeout(r, 2600)); // past one period of the interface-route sync
  t.equal(dp.addressLists, 0, 'no BGPFilter: the addresses were never listed');
  await a.store.create({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPFilter',
    metadata: { name: 'by-if' },
    spec: { importV4: [{ action: 'Reject', interface: 'lan*' }] },
  } as never);
  await until(t, 'an import rule naming an interface: the addresses are listed', () => dp.addressLists > 0, 10_000);
});
