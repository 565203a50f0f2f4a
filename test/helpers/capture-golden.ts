// Captures golden BGP messages from real BIRD 2 and GoBGP on this machine into proto/bgp/golden/.
// Run as root after `npx tsc -p .`:   node dist/test/helpers/capture-golden.js
// How: two netns joined by a veth (10.78.0.0/24, fd78::/64). In netns "a" a bare TCP listener on
// port 179 (no BGP logic beyond replying OPEN + KEEPALIVE with tabby's encoder) records every byte
// the daemon in netns "b" sends, split into messages by tabby's framer; then the daemon is told to
// shut the session down administratively (birdc disable / gobgp neighbor … disable) so its
// NOTIFICATION is captured too. Each message is written as one hex line into <daemon>-<name>.hex.
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Framer } from '../../src/bgp/codec/framer.js';
import { decodeMessage, encodeKeepalive, encodeMessage } from '../../src/bgp/codec/message.js';
import { AS4_CAPS, DEFAULT_CAPS, type CodecCaps, type OpenMessage } from '../../src/bgp/codec/types.js';
import { listenTcp, normalizeAddress } from '../../src/bgp/transport.js';
import { startBird } from './bird.js';
import { gobgpConfig, startGobgp } from './gobgp.js';
import { makeNsPair, waitFor } from './netns.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.resolve(here, '../../../proto/bgp/golden');

interface Captured {
  frames: Buffer[];
}

async function main(): Promise<void> {
  const cleanups: (() => unknown)[] = [];
  const t = { teardown: (fn: () => unknown) => void cleanups.push(fn) };
  try {
    const pair = makeNsPair(t, 'gold', {
      a4: ['10.78.0.1/24', '10.78.0.11/24', '10.78.0.12/24'],
      b4: ['10.78.0.2/24', '10.78.0.3/24', '10.78.0.4/24'],
      a6: ['fd78::1/64'],
      b6: ['fd78::2/64'],
    });
    const { server } = await listenTcp({ address: '::', port: 179, netns: pair.a.path });
    cleanups.push(() => server.close());
    const byPeer = new Map<string, Captured>();
    // Our side's OPEN per peer source address: AS and whether we claim 4-octet AS support.
    const ourOpen = (remote: string): { open: OpenMessage; caps: CodecCaps } => {
      const as2 = remote === '10.78.0.12'; // an "old" 2-octet speaker: the daemon must send AS4_PATH
      const open: OpenMessage = {
        type: 'open',
        version: 4,
        asn: as2 ? 65001 : 65000,
        holdTime: 90,
        routerId: '10.78.0.1',
        capabilities: [
          { kind: 'multiprotocol', afi: 1, safi: 1 },
          { kind: 'multiprotocol', afi: 2, safi: 1 },
          { kind: 'route-refresh' },
          ...(as2 ? [] : [{ kind: 'as4' as const, asn: remote === '10.78.0.11' ? 4200000001 : 65000 }]),
        ],
      };
      if (remote === '10.78.0.11') open.asn = 23456;
      return { open, caps: as2 ? DEFAULT_CAPS : AS4_CAPS };
    };
    server.on('connection', (s: net.Socket) => {
      const remote = normalizeAddress(s.localAddress); // keyed by OUR address: one BIRD protocol per local address
      const cap: Captured = byPeer.get(remote) ?? { frames: [] };
      byPeer.set(remote, cap);
      const framer = new Framer();
      if (process.env.DEBUG) console.log('connection from', remote);
      const mine = ourOpen(remote);
      s.on('data', (chunk: Buffer) => {
        for (const f of framer.push(chunk)) {
          cap.frames.push(Buffer.from(f));
          const m = decodeMessage(f, mine.caps);
          if (process.env.DEBUG) console.log(remote, m.type);
          if (m.type === 'open') s.write(Buffer.concat([encodeMessage(mine.open, DEFAULT_CAPS), encodeKeepalive()]));
          else if (m.type === 'keepalive') s.write(encodeKeepalive());
        }
      });
      s.on('error', () => undefined);
      s.resume();
    });

    // ---------------- BIRD 2
    const bird = await startBird(t, {
      netns: pair.b.name,
      config: `
router id 10.78.0.2;
protocol device {}
protocol direct { ipv4; ipv6; interface "veth1"; }
protocol static s4 { ipv4; route 192.0.2.0/24 blackhole; route 198.51.100.128/25 blackhole; }
protocol static s6 { ipv6; route 2001:db8:100::/48 blackhole; }
filter out4 { bgp_community.add((65000,100)); bgp_large_community.add((65000,1,2)); bgp_ext_community.add((rt,65000,7)); bgp_med = 50; accept; }
protocol bgp ibgp4 { local 10.78.0.2 as 65000; neighbor 10.78.0.1 as 65000; hold time 90; connect delay time 1;
  ipv4 { import none; export filter out4; }; }
protocol bgp ebgp4 { local 10.78.0.3 as 4200000002; neighbor 10.78.0.11 as 4200000001; hold time 90; connect delay time 1;
  ipv4 { import none; export filter out4; }; }
protocol bgp old2 { local 10.78.0.4 as 4200000002; neighbor 10.78.0.12 as 65001; hold time 90; connect delay time 1;
  ipv4 { import none; export all; }; }
protocol bgp ibgp6 { local fd78::2 as 65000; neighbor fd78::1 as 65000; hold time 90; connect delay time 1;
  ipv6 { import none; export all; }; }
`,
    });
    const want = ['10.78.0.1', '10.78.0.11', '10.78.0.12', 'fd78::1'];
    await waitFor(() => want.every((p) => (byPeer.get(p)?.frames.length ?? 0) >= 4), 20_000, 100);
    await new Promise((r) => setTimeout(r, 500));
    await bird.birdc('disable ibgp4');
    await waitFor(() => byPeer.get('10.78.0.1')?.frames.some((f) => f[18] === 3) ?? false, 5000, 50);
    const pick = (peer: string, type: number, n = 0): Buffer | undefined => byPeer.get(peer)?.frames.filter((f) => f[18] === type)[n];
    const write = (name: string, frames: (Buffer | undefined)[], note: string): void => {
      const lines = frames.filter((f): f is Buffer => !!f).map((f) => f.toString('hex'));
      fs.writeFileSync(path.join(outDir, name), `# ${note}\n${lines.join('\n')}\n`);
      console.log(name, lines.length);
    };
    fs.mkdirSync(outDir, { recursive: true });
    write('bird-open-ibgp4.hex', [pick('10.78.0.1', 1)], 'BIRD 2.0.12 OPEN, iBGP AS 65000, ipv4 channel');
    write('bird-open-ebgp-as4.hex', [pick('10.78.0.11', 1)], 'BIRD 2.0.12 OPEN, eBGP local AS 4200000002 (AS_TRANS in the 2-octet field)');
    write('bird-open-ibgp6.hex', [pick('fd78::1', 1)], 'BIRD 2.0.12 OPEN over IPv6, ipv6 channel');
    write('bird-keepalive.hex', [pick('10.78.0.1', 4)], 'BIRD 2.0.12 KEEPALIVE');
    write(
      'bird-update-ibgp4.hex',
      byPeer.get('10.78.0.1')?.frames.filter((f) => f[18] === 2) ?? [],
      'BIRD 2.0.12 UPDATEs on iBGP (communities, large, ext, MED; last = End-of-RIB)',
    );
    write(
      'bird-update-ebgp-as4.hex',
      byPeer.get('10.78.0.11')?.frames.filter((f) => f[18] === 2) ?? [],
      'BIRD 2.0.12 UPDATEs on eBGP from AS 4200000002 (4-octet AS_PATH)',
    );
    write(
      'bird-update-as2-peer.hex',
      byPeer.get('10.78.0.12')?.frames.filter((f) => f[18] === 2) ?? [],
      'BIRD 2.0.12 UPDATEs to a peer without the 4-octet AS capability (AS_TRANS + AS4_PATH)',
    );
    write(
      'bird-update-ibgp6.hex',
      byPeer.get('fd78::1')?.frames.filter((f) => f[18] === 2) ?? [],
      'BIRD 2.0.12 UPDATEs over IPv6 (MP_REACH_NLRI with link-local next hop)',
    );
    write('bird-notification-cease.hex', [pick('10.78.0.1', 3)], 'BIRD 2.0.12 NOTIFICATION after `birdc disable ibgp4` (Cease)');
    await bird.stop();

    // ---------------- GoBGP
    byPeer.clear();
    const g = await startGobgp(t, {
      netns: pair.b.name,
      config: gobgpConfig({
        asn: 65000,
        routerId: '10.78.0.2',
        port: -1,
        neighbors: [{ address: '10.78.0.1', peerAs: 65000, localAddress: '10.78.0.2', families: ['ipv4-unicast', 'ipv6-unicast'] }],
      }),
    });
    await g.gobgp('global', 'rib', 'add', '203.0.113.0/24', 'nexthop', '10.78.0.2', 'community', '65000:200', 'med', '10');
    await g.gobgp('global', 'rib', '-a', 'ipv6', 'add', '2001:db8:200::/48', 'nexthop', 'fd78::2');
    await waitFor(() => (byPeer.get('10.78.0.1')?.frames.filter((f) => f[18] === 2).length ?? 0) >= 2, 20_000, 100);
    await new Promise((r) => setTimeout(r, 500));
    await g.gobgp('neighbor', '10.78.0.1', 'disable');
    await waitFor(() => byPeer.get('10.78.0.1')?.frames.some((f) => f[18] === 3) ?? false, 5000, 50);
    write('gobgp-open.hex', [pick('10.78.0.1', 1)], 'GoBGP 3.10 OPEN, iBGP AS 65000, ipv4+ipv6 unicast');
    write('gobgp-keepalive.hex', [pick('10.78.0.1', 4)], 'GoBGP 3.10 KEEPALIVE');
    write(
      'gobgp-update.hex',
      byPeer.get('10.78.0.1')?.frames.filter((f) => f[18] === 2) ?? [],
      'GoBGP 3.10 UPDATEs (IPv4 with community+MED; IPv6 MP_REACH)',
    );
    write(
      'gobgp-notification-cease.hex',
      [pick('10.78.0.1', 3)],
      'GoBGP 3.10 NOTIFICATION after `gobgp neighbor 10.78.0.1 disable` (Cease)',
    );
  } finally {
    for (const fn of cleanups.reverse()) await fn();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
