// PeerSync on its own: what reaches the speaker (only changes), what is held back and why (a secret
// that cannot be read, reachableBy without kernel routes, a failed BFD session until BFD is Up again),
// and the BFD sessions it asks for. The speaker and BFD are recording stand-ins of the agent's ports;
// secrets are real files.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { PeerSync } from '../../../src/agent/peer-sync.js';
import { SecretStore } from '../../../src/agent/secrets.js';
import type { DesiredPeer } from '../../../src/agent/peers.js';
import type { BfdPort, SpeakerPeerConfig, SpeakerPort } from '../../../src/agent/ports.js';
import { log } from '../../../src/common/log.js';

function recordingSpeaker() {
  const calls: string[] = [];
  const configs = new Map<string, SpeakerPeerConfig>();
  const sp = {
    addPeer: (p: SpeakerPeerConfig) => {
      calls.push(`add ${p.address}`);
      configs.set(p.address, p);
    },
    updatePeer: (p: SpeakerPeerConfig) => {
      calls.push(`update ${p.address}`);
      configs.set(p.address, p);
    },
    removePeer: (a: string) => {
      calls.push(`remove ${a}`);
      configs.delete(a);
    },
    resetPeer: (a: string, why: string) => calls.push(`reset ${a} (${why})`),
  } as unknown as SpeakerPort;
  return { sp, calls, configs };
}

function recordingBfd() {
  const ev = new EventEmitter();
  const sessions = new Set<string>();
  const port: BfdPort = {
    add: (o) => void sessions.add(o.peer),
    remove: (p) => void sessions.delete(p),
    status: () => [],
    on: (e, fn) => ev.on(e, fn),
    close: async () => {},
  };
  return { port, sessions, ev };
}

const peer = (address: string, extra: Partial<DesiredPeer> = {}): DesiredPeer => ({
  address,
  family: 4,
  asn: 64512,
  type: 'global',
  source: `peer-${address}`,
  passive: false,
  routeReflectorClient: false,
  keepOriginalNextHop: false,
  ...extra,
});

function setup(t: { teardown(fn: () => void): void }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tabby-peersync-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const logger = log('test');
  const secrets = new SecretStore({ dir, pollMs: 60_000, logger, onChange: () => {} });
  const bfd = recordingBfd();
  let resyncs = 0;
  const removed: string[] = [];
  const sync = new PeerSync({ logger, secrets, bfd: bfd.port, onResync: () => resyncs++, onRemoved: (a) => removed.push(a) });
  return { dir, sync, bfd, removed, resyncs: () => resyncs };
}
const input = { asn: 64512, filters: [], programsRoutes: true };

t.test('only a change reaches the speaker; a removed peer is removed once and reported', async (t) => {
  const { sync, removed } = setup(t);
  const { sp, calls } = recordingSpeaker();
  sync.sync(sp, [peer('10.0.0.1'), peer('10.0.0.2')], input);
  sync.sync(sp, [peer('10.0.0.1'), peer('10.0.0.2')], input);
  t.same(calls, ['add 10.0.0.1', 'add 10.0.0.2'], 'the same desired peers twice: added once');
  sync.sync(sp, [peer('10.0.0.1', { ttlSecurity: 1 })], input);
  t.same(calls.slice(2), ['remove 10.0.0.2', 'update 10.0.0.1']);
  t.same(removed, ['10.0.0.2']);
  t.same([...sync.desired.keys()], ['10.0.0.1']);
});

t.test('a password whose secret cannot be read holds the peer, with the reason; the secret appearing lets it in', async (t) => {
  const { dir, sync } = setup(t);
  const { sp, calls, configs } = recordingSpeaker();
  const p = peer('10.0.0.9', { password: { name: 'bgp', key: 'tor' } });
  sync.sync(sp, [p], input);
  t.same(calls, [], 'no session without TCP-MD5');
  t.match(sync.heldReason('10.0.0.9'), /^password secret bgp\/tor not found/);
  fs.mkdirSync(path.join(dir, 'bgp'));
  fs.writeFileSync(path.join(dir, 'bgp', 'tor'), 's3cret\n');
  sync.sync(sp, [p], input);
  t.same(calls, ['add 10.0.0.9']);
  t.equal(configs.get('10.0.0.9')?.password, 's3cret');
  t.equal(sync.heldReason('10.0.0.9'), undefined);
  fs.rmSync(path.join(dir, 'bgp', 'tor'));
  sync.sync(sp, [p], input);
  t.same(calls.slice(1), ['remove 10.0.0.9'], 'the secret gone: the session goes, it is not kept without its key');
});

t.test('reachableBy where no kernel routes are programmed: held, and a policy problem', async (t) => {
  const { sync } = setup(t);
  const { sp, calls } = recordingSpeaker();
  sync.sync(sp, [peer('10.0.0.3', { reachableBy: '10.0.0.254' })], { ...input, programsRoutes: false });
  t.same(calls, []);
  t.match(sync.heldReason('10.0.0.3'), /reachableBy 10\.0\.0\.254: this tabby-node programs no kernel routes/);
  t.equal(sync.policyProblems.length, 1);
  sync.sync(sp, [peer('10.0.0.3', { reachableBy: '10.0.0.254' })], input);
  t.same(calls, ['add 10.0.0.3']);
  t.same(sync.policyProblems, []);
});

t.test('BFD: a session per peer that asks; a failure resets and holds the peer until BFD is Up; AdminDown does not', async (t) => {
  const { sync, bfd, resyncs } = setup(t);
  const { sp, calls } = recordingSpeaker();
  const bfdPeer = peer('10.0.0.5', { bfd: { desiredMinTxMs: 300, requiredMinRxMs: 300, detectMult: 3 } });
  sync.sync(sp, [bfdPeer, peer('10.0.0.6')], input);
  t.same([...bfd.sessions], ['10.0.0.5'], 'BFD only where configured');
  sync.onBfdState(
    { peer: '10.0.0.5', state: 'Down', previous: 'Up', diag: 'ControlDetectionTimeExpired', remoteAdminDown: true } as never,
    sp,
  );
  t.equal(resyncs(), 0, "the peer's AdminDown (its agent stopping) is no failure");
  sync.onBfdState(
    { peer: '10.0.0.5', state: 'Down', previous: 'Up', diag: 'ControlDetectionTimeExpired', remoteAdminDown: false } as never,
    sp,
  );
  t.equal(resyncs(), 1);
  t.match(calls.at(-1), /^reset 10\.0\.0\.5 \(BFD session down/);
  sync.sync(sp, [bfdPeer, peer('10.0.0.6')], input);
  t.equal(calls.at(-1), 'remove 10.0.0.5', 'held: out of the speaker');
  t.equal(sync.heldReason('10.0.0.5'), 'BFD session Down: not connecting until BFD is Up again');
  t.same([...bfd.sessions], ['10.0.0.5'], 'its BFD session keeps running: BFD Up is what lets it back');
  sync.onBfdState({ peer: '10.0.0.5', state: 'Up', previous: 'Down' } as never, sp);
  t.equal(resyncs(), 2);
  sync.sync(sp, [bfdPeer, peer('10.0.0.6')], input);
  t.equal(calls.at(-1), 'add 10.0.0.5');
  t.equal(sync.heldReason('10.0.0.5'), undefined);
  sync.sync(sp, [peer('10.0.0.6')], input);
  t.same([...bfd.sessions], [], 'the peer gone: its BFD session too');
});

t.test('removeAll takes every peer out; the next sync adds them again', async (t) => {
  const { sync } = setup(t);
  const { sp, calls } = recordingSpeaker();
  sync.sync(sp, [peer('10.0.0.1')], input);
  sync.removeAll(sp);
  t.same(calls, ['add 10.0.0.1', 'remove 10.0.0.1']);
  t.equal(sync.desired.size, 0);
  sync.sync(sp, [peer('10.0.0.1')], input);
  t.same(calls.slice(2), ['add 10.0.0.1']);
});
