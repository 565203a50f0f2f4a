// BGP passwords from secrets: the file layout, and the agent end to end over a MemoryDatastore with a
// recording speaker — a peer whose secret is missing is never handed to the speaker (no session
// without TCP-MD5), status and readiness say why, rotation re-peers only the sessions using it.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MemoryDatastore } from '../../../src/datastore/memory.js';
import { ResourceStore } from '../../../src/datastore/resources.js';
import { validateResource } from '../../../src/datastore/resources.js';
import { Ipam } from '../../../src/ipam/index.js';
import { Agent } from '../../../src/agent/agent.js';
import { parseAgentConfig } from '../../../src/agent/config.js';
import { readSecret, SecretStore } from '../../../src/agent/secrets.js';
import { resourcesPort, ipamPort, calicoSelectorMatch } from '../../../src/agent/wiring-store.js';
import type { SpeakerPort, SpeakerPeerConfig, SpeakerPeerStatus } from '../../../src/agent/ports.js';
import { log } from '../../../src/common/log.js';

function tmpSecrets(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tabby-secrets-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}
function writeSecret(dir: string, name: string, key: string, value: string): void {
  fs.mkdirSync(path.join(dir, name), { recursive: true });
  fs.writeFileSync(path.join(dir, name, key), value);
}

t.test('readSecret: <dir>/<name>/<key>, one trailing newline dropped, every failure a reason', async (t) => {
  const dir = tmpSecrets(t);
  writeSecret(dir, 'bgp', 'tor', 'k3y\n');
  t.same(readSecret(dir, { name: 'bgp', key: 'tor' }), { ok: true, value: 'k3y' });
  writeSecret(dir, 'bgp', 'raw', 'a b\n\n');
  t.same(readSecret(dir, { name: 'bgp', key: 'raw' }), { ok: true, value: 'a b\n' }, 'only one newline removed');
  t.match(readSecret(dir, { name: 'bgp', key: 'nope' }), { ok: false, reason: /^password secret bgp\/nope not found/ });
  t.match(readSecret(dir, { name: 'gone', key: 'tor' }), { ok: false, reason: /^password secret gone\/tor not found/ });
  writeSecret(dir, 'bgp', 'empty', '\n');
  t.match(readSecret(dir, { name: 'bgp', key: 'empty' }), { ok: false, reason: /is empty/ });
  writeSecret(dir, 'bgp', 'long', 'x'.repeat(81));
  t.match(readSecret(dir, { name: 'bgp', key: 'long' }), { ok: false, reason: /longer than 80 bytes/ });
  t.match(readSecret(dir, { name: '..', key: 'passwd' }), { ok: false, reason: /not a valid secret name/ }, 'no path escape');
  t.match(readSecret(dir, { name: 'bgp', key: '../bgp/tor' }), { ok: false });
  // A Kubernetes Secret volume: keys are symlinks into ..data, swapped atomically on update.
  fs.mkdirSync(path.join(dir, 'k8s', '..2026_v1'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'k8s', '..2026_v1', 'pw'), 'one');
  fs.symlinkSync('..2026_v1', path.join(dir, 'k8s', '..data'));
  fs.symlinkSync('..data/pw', path.join(dir, 'k8s', 'pw'));
  t.same(readSecret(dir, { name: 'k8s', key: 'pw' }), { ok: true, value: 'one' });
});

t.test('SecretStore.poll: a changed, appearing or vanishing secret calls onChange once', async (t) => {
  const dir = tmpSecrets(t);
  let changes = 0;
  const st = new SecretStore({ dir, pollMs: 1_000_000, logger: log('test'), onChange: () => changes++ });
  t.equal(st.read({ name: 'a', key: 'k' }).ok, false);
  t.equal(st.poll(), false);
  writeSecret(dir, 'a', 'k', 'v1');
  t.equal(st.poll(), true, 'appeared');
  t.equal(st.poll(), false, 'unchanged');
  writeSecret(dir, 'a', 'k', 'v2');
  t.equal(st.poll(), true, 'rotated');
  st.retain([]);
  writeSecret(dir, 'a', 'k', 'v3');
  t.equal(st.poll(), false, 'no longer referenced');
  t.equal(changes, 2);
});

t.test('validation: passwords are secret references with path-safe names', async (t) => {
  const peer = (password: unknown) => ({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPPeer',
    metadata: { name: 'p' },
    spec: { peerIP: '10.0.0.9', asNumber: 65000, password },
  });
  t.doesNotThrow(() => validateResource(peer({ secretKeyRef: { name: 'bgp-secrets', key: 'tor.pw' } })));
  t.throws(() => validateResource(peer('plain')), /spec.password must be a mapping/);
  t.throws(
    () => validateResource(peer({ secretKeyRef: { name: '../etc', key: 'shadow' } })),
    /secretKeyRef.name "..\/etc" must be letters/,
  );
  const cfg = (nodeMeshPassword: unknown) => ({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPConfiguration',
    metadata: { name: 'default' },
    spec: { nodeMeshPassword, nodeMeshMaxRestartTime: '90s' },
  });
  t.doesNotThrow(() => validateResource(cfg({ secretKeyRef: { name: 'mesh', key: 'pw' } })));
  t.throws(() => validateResource(cfg({ secretKeyRef: { name: 'mesh' } })), /nodeMeshPassword.secretKeyRef.key is required/);
});

/** A speaker that records what the agent asks of it; every configured peer is "Established". */
class RecordingSpeaker implements SpeakerPort {
  peerCfg = new Map<string, SpeakerPeerConfig>();
  calls: string[] = [];
  async start() {}
  async stop() {}
  addPeer(p: SpeakerPeerConfig) {
    this.peerCfg.set(p.address, p);
    this.calls.push(`add ${p.address}`);
  }
  updatePeer(p: SpeakerPeerConfig) {
    this.peerCfg.set(p.address, p);
    this.calls.push(`update ${p.address}`);
  }
  removePeer(a: string) {
    this.peerCfg.delete(a);
    this.calls.push(`remove ${a}`);
  }
  originate() {}
  withdraw() {}
  peers(): SpeakerPeerStatus[] {
    return [...this.peerCfg.values()].map((p) => ({
      address: p.address,
      asn: p.asn,
      state: 'Established',
      since: new Date(0),
      info: 'Established',
      prefixesReceived: 0,
      prefixesAccepted: 0,
    }));
  }
  onBest() {}
  onWithdrawn() {}
  onPeerChange() {}
}

const until = async (fn: () => boolean, ms = 10_000): Promise<boolean> => {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
};

t.test(
  'agent: BGPPeer password from a secret; missing → not connected + reason; rotation re-peers only that peer; mesh password',
  async (t) => {
    const dir = tmpSecrets(t);
    const mem = new MemoryDatastore();
    const store = new ResourceStore(mem);
    const sp = new RecordingSpeaker();
    const config = parseAgentConfig({
      NODENAME: 'a',
      CALICO_IPV4POOL_CIDR: '10.244.0.0/16',
      CALICO_IPV4POOL_IPIP: 'Never',
      TABBY_STATE_DIR: '/nonexistent',
      TABBY_SECRETS_DIR: dir,
    });
    const agent = new Agent({
      config,
      ds: mem,
      resources: resourcesPort(store),
      ipam: ipamPort(new Ipam(mem)),
      speakerFactory: () => sp,
      addresses: { resolve: async () => ({ ipv4: '10.0.0.1/24' }) },
      selector: calicoSelectorMatch,
      timing: {
        resyncDebounceMs: 10,
        periodicResyncMs: 60_000,
        probeIntervalMs: 50,
        probeTimeoutMs: 40,
        convergeDeadlineMs: 100,
        convergeQuietMs: 50,
        routeDebounceMs: 5,
        secretPollMs: 50,
      },
    } as never);
    await agent.start();
    t.teardown(() => agent.stop());
    await store.create({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPPeer',
      metadata: { name: 'tor' },
      spec: { peerIP: '10.0.0.254', asNumber: 65000, password: { secretKeyRef: { name: 'bgp', key: 'tor' } } },
    } as never);
    await store.create({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPPeer',
      metadata: { name: 'open' },
      spec: { peerIP: '10.0.0.253:1179', asNumber: 65000, maxRestartTime: '300s' },
    } as never);

    t.ok(await until(() => sp.peerCfg.has('10.0.0.253')), 'the peer without a password is configured');
    t.equal(sp.peerCfg.get('10.0.0.253')?.port, 1179, 'peerIP ip:port dials that port');
    t.equal(sp.peerCfg.get('10.0.0.253')?.restartTime, 300, 'maxRestartTime → restart time on that session');
    t.ok(await until(() => agent.status().peers.some((p) => p.address === '10.0.0.254')), 'the password peer is desired');
    t.notOk(sp.peerCfg.has('10.0.0.254'), 'secret missing: the peer is not handed to the speaker (never a session without MD5)');
    const st = agent.status().peers.find((p) => p.address === '10.0.0.254')!;
    t.equal(st.state, 'Idle');
    t.match(st.info, /^password secret bgp\/tor not found/, 'node status INFO says why');
    t.ok(
      agent.readiness().reasons.some((r) => /BGP not established with 10\.0\.0\.254: password secret bgp\/tor not found/.test(r)),
      'readiness says why',
    );

    writeSecret(dir, 'bgp', 'tor', 's3cret\n');
    t.ok(await until(() => sp.peerCfg.get('10.0.0.254')?.password === 's3cret'), 'secret appears → peer added with the key');
    t.equal(agent.status().peers.find((p) => p.address === '10.0.0.254')?.state, 'Established');

    sp.calls = [];
    writeSecret(dir, 'bgp', 'tor', 'rotated');
    t.ok(await until(() => sp.peerCfg.get('10.0.0.254')?.password === 'rotated'), 'rotation: new key');
    t.same(sp.calls, ['update 10.0.0.254'], 'only that session is touched');

    fs.rmSync(path.join(dir, 'bgp'), { recursive: true });
    t.ok(await until(() => !sp.peerCfg.has('10.0.0.254')), 'secret removed → session removed, not kept without a key');
    t.ok(sp.peerCfg.has('10.0.0.253'));

    // Mesh password and restart time from BGPConfiguration.
    await store.create({
      apiVersion: 'projectcalico.org/v3',
      kind: 'Node',
      metadata: { name: 'b' },
      spec: { bgp: { ipv4Address: '10.0.0.2/24' } },
    } as never);
    t.ok(await until(() => sp.peerCfg.has('10.0.0.2')), 'mesh peer without a mesh password');
    t.equal(sp.peerCfg.get('10.0.0.2')?.password, undefined);
    await store.create({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPConfiguration',
      metadata: { name: 'default' },
      spec: { nodeMeshPassword: { secretKeyRef: { name: 'mesh', key: 'pw' } }, nodeMeshMaxRestartTime: '2m' },
    } as never);
    t.ok(await until(() => !sp.peerCfg.has('10.0.0.2')), 'mesh password configured but missing: mesh session removed');
    t.match(agent.status().peers.find((p) => p.address === '10.0.0.2')?.info ?? '', /password secret mesh\/pw not found/);
    writeSecret(dir, 'mesh', 'pw', 'meshkey');
    t.ok(await until(() => sp.peerCfg.get('10.0.0.2')?.password === 'meshkey'), 'mesh session with the mesh key');
    t.equal(sp.peerCfg.get('10.0.0.2')?.restartTime, 120, 'nodeMeshMaxRestartTime 2m');
  },
);
