// A full iBGP mesh of three tabby speakers over real TCP (own netns each, on a bridge): every route
// appears exactly once per peer, and iBGP-learned routes are never re-sent to the other iBGP peers
// (RFC 4271 §9.2) — checked on each speaker's per-peer counters and Loc-RIB.
import t from 'tap';
import { BgpSpeaker, tcpSessions } from '../../../src/bgp/index.js';
import { isRoot, waitFor } from '../../helpers/netns.js';
import { makeStar } from './rr-lab.js';

const skip = !isRoot() ? 'needs root (network namespaces)' : false;

t.test('3-node tabby full mesh', { skip }, async (t) => {
  const ns = makeStar(t, 'm3', 68, 3);
  const speakers = ns.map((x, i) => {
    const s = new BgpSpeaker({ asn: 65000, routerId: x.address, listenAddress: x.address, sessions: tcpSessions({ netns: x.path }) });
    // Calico style: the lower address is passive toward the higher one.
    for (const y of ns)
      if (y !== x)
        s.addPeer({
          address: y.address,
          asn: 65000,
          localAddress: x.address,
          families: ['ipv4'],
          passive: x.address < y.address,
          holdTime: 30,
          type: 'mesh',
        });
    s.originate(`192.168.${i}.0/26`);
    s.originate(`192.168.${i}.64/26`);
    return s;
  });
  t.teardown(() => Promise.all(speakers.map((s) => s.stop())));
  for (const s of speakers) await s.start();
  t.ok(await waitFor(() => speakers.every((s) => s.peers().every((p) => p.state === 'Established')), 30_000), 'all 6 sessions Established');
  t.ok(await waitFor(() => speakers.every((s) => s.locRib().size === 6), 10_000), 'every speaker has all 6 routes');
  await new Promise((r) => setTimeout(r, 500)); // let any (wrong) re-advertisement arrive
  for (const [i, s] of speakers.entries()) {
    for (const p of s.peers()) {
      t.equal(p.prefixesReceived, 2, `${ns[i]!.address}: exactly the 2 own routes of ${p.address}, nothing re-sent`);
      t.equal(p.prefixesAdvertised, 2, `${ns[i]!.address}: advertises only its own 2 routes to ${p.address}`);
    }
    for (const [j, x] of ns.entries()) {
      if (j === i) continue;
      const r = s.locRib().get(`192.168.${j}.0/26`)!;
      t.same(r.nextHops, [x.address], `route of ${x.address} via ${x.address}`);
      t.equal(s.locRib().paths(`192.168.${j}.0/26`).length, 1, 'one path: not also received through the third speaker');
    }
  }
});
