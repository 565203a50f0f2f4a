// Per-peer max-prefix with a real BIRD 2 peer: BIRD announces 5 routes, tabby's limit is 3 → tabby
// sends Cease 6/1 (RFC 4486) and drops BIRD's routes; BIRD reports the NOTIFICATION it received.
// With action 'warn' the session stays up with all 5 routes.
import t from 'tap';
import { BgpSpeaker, tcpSessions } from '../../../src/bgp/index.js';
import { isRoot, waitFor } from '../../helpers/netns.js';
import { haveBird, startBird } from '../../helpers/bird.js';
import { makeStar, birdConfig } from './rr-lab.js';

const skip = !isRoot() ? 'needs root (network namespaces)' : !haveBird() ? 'bird2 not installed' : false;
const routes = [1, 2, 3, 4, 5].map((i) => `10.131.${i}.0/24`);

t.test('max-prefix against BIRD 2: Cease 6/1 over the limit, warn keeps the session', { skip }, async (t) => {
  const [n1, n2, n3] = makeStar(t, 'mx', 73, 3);
  const a = n1!,
    w = n2!,
    br = n3!;
  const bird = await startBird(t, {
    netns: br.name,
    config: birdConfig({
      routerId: br.address,
      asn: 65000,
      local: br.address,
      neighbors: [
        { address: a.address, asn: 65000 },
        { address: w.address, asn: 65000 },
      ],
      routes,
    }),
  });
  const strict = new BgpSpeaker({ asn: 65000, routerId: a.address, listenAddress: a.address, sessions: tcpSessions({ netns: a.path }) });
  strict.addPeer({
    address: br.address,
    asn: 65000,
    localAddress: a.address,
    families: ['ipv4'],
    holdTime: 30,
    maxPrefix: { limit: 3, action: 'shutdown' },
  });
  const lenient = new BgpSpeaker({ asn: 65000, routerId: w.address, listenAddress: w.address, sessions: tcpSessions({ netns: w.path }) });
  lenient.addPeer({
    address: br.address,
    asn: 65000,
    localAddress: w.address,
    families: ['ipv4'],
    holdTime: 30,
    maxPrefix: { limit: 3, action: 'warn' },
  });
  t.teardown(() => Promise.all([strict.stop(), lenient.stop()]));
  await strict.start();
  await lenient.start();
  t.ok(await waitFor(() => strict.peers()[0]!.info.includes('Max prefix'), 30_000), `tabby closed the session: ${strict.peers()[0]!.info}`);
  t.equal(strict.locRib().size, 0, "BIRD's routes dropped");
  const p1 = await waitFor(
    async () => {
      const o = await bird.birdc('show protocols all p1');
      return /Maximum number of prefixes reached/i.test(o) ? o : '';
    },
    10_000,
    200,
  );
  t.match(p1, /Received: Maximum number of prefixes reached/, 'BIRD received Cease 6/1');
  t.ok(await waitFor(() => lenient.locRib().size === 5, 30_000), 'warn: all 5 routes kept');
  t.equal(lenient.peers()[0]!.state, 'Established', 'warn: session stays up');
});
