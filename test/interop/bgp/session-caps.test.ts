// Capabilities negotiated with a real BIRD 2: RFC 8654 extended messages (an UPDATE > 4096 bytes is
// accepted by BIRD) and RFC 7911 ADD-PATH (BIRD `add paths tx`: tabby decodes path identifiers).
import t from 'tap';
import { BgpListener, BgpSession } from '../../../src/bgp/session.js';
import { encodeUpdate } from '../../../src/bgp/codec/message.js';
import { emptyPrefixList, prefixListFromStrings, prefixListToStrings } from '../../../src/bgp/codec/prefix.js';
import type { UpdateMessage } from '../../../src/bgp/codec/types.js';
import { haveBird, startBird } from '../../helpers/bird.js';
import { isRoot, makeNsPair, waitFor } from '../../helpers/netns.js';

const skip = !isRoot() ? 'needs root (netns)' : !haveBird() ? 'needs bird2 (bird, birdc)' : false;

t.test('extended messages and ADD-PATH with BIRD 2', { skip, timeout: 60_000 }, async (t) => {
  const pair = makeNsPair(t, 'cp', { a4: ['10.83.0.1/24', '10.83.0.11/24'], b4: ['10.83.0.2/24', '10.83.0.12/24'] });
  const listener = new BgpListener({ address: '0.0.0.0', port: 179, netns: pair.a.path });
  await listener.start();
  t.teardown(() => listener.stop());
  const common = {
    localAsn: 65000,
    peerAsn: 65000,
    routerId: '10.83.0.1',
    holdTime: 9,
    connectRetryTime: 1,
    idleHoldTime: 1,
    netns: pair.a.path,
  };
  const ext = new BgpSession({ ...common, address: '10.83.0.2', localAddress: '10.83.0.1', extendedMessage: true });
  const ap = new BgpSession({ ...common, address: '10.83.0.12', localAddress: '10.83.0.11', addPathReceive: ['ipv4'] });
  const apUpdates: UpdateMessage[] = [];
  ap.on('update', (u: UpdateMessage) => apUpdates.push(u));
  for (const s of [ext, ap]) {
    listener.add(s);
    t.teardown(() => s.stop());
  }
  const bird = await startBird(t, {
    netns: pair.b.name,
    config: `
router id 10.83.0.2;
protocol device {}
protocol static s4 { ipv4; route 192.0.2.0/24 blackhole; route 192.0.2.128/25 blackhole; }
protocol bgp ext { local 10.83.0.2 as 65000; neighbor 10.83.0.1 as 65000; direct; enable extended messages on; hold time 9; connect delay time 1; connect retry time 1; error wait time 1,2; ipv4 { import all; export none; }; }
protocol bgp ap { local 10.83.0.12 as 65000; neighbor 10.83.0.11 as 65000; direct; hold time 9; connect delay time 1; connect retry time 1; error wait time 1,2; ipv4 { import none; export where source = RTS_STATIC; add paths tx; }; }
`,
  });
  ext.start();
  ap.start();
  t.ok((await bird.waitEstablished('ext', 15_000)) && (await bird.waitEstablished('ap', 15_000)), 'both Established in BIRD');
  t.ok(await waitFor(() => ext.established && ap.established, 15_000), 'both Established in tabby');

  await t.test('RFC 8654: one 6 KB UPDATE', async (t) => {
    t.equal(ext.negotiated?.caps.extendedMessage, true, 'extended messages negotiated');
    t.equal(ext.maxMessageLength, 65535);
    const prefixes = Array.from({ length: 1500 }, (_, i) => `10.100.${i >> 8}.${i & 255}/32`);
    const u: UpdateMessage = {
      type: 'update',
      withdrawn: emptyPrefixList(1),
      nlri: prefixListFromStrings(1, prefixes),
      attrs: { origin: 0, asPath: [], nextHop: '10.83.0.1', localPref: 100 },
    };
    const wire = encodeUpdate(u, ext.caps);
    t.ok(wire.length > 4096, `UPDATE is ${wire.length} bytes`);
    t.throws(() => encodeUpdate(u, { ...ext.caps, extendedMessage: false }), RangeError, 'too big without the capability');
    ext.sendUpdate(wire);
    const ok = await waitFor(async () => /Routes:\s+1500 imported/.test(await bird.birdc('show protocols all ext')), 10_000, 200);
    if (!ok) t.comment(await bird.birdc('show protocols all ext'));
    t.ok(ok, 'BIRD imported all 1500 routes from it (`show protocols all ext`)');
    t.match(
      await bird.birdc('show route 10.100.5.219/32'),
      /10\.100\.5\.219\/32\s+unicast \[ext /,
      'the last prefix of the UPDATE is there',
    );
    t.ok(ext.established, 'session still up');
  });

  await t.test('RFC 7911: path identifiers from BIRD `add paths tx`', async (t) => {
    t.ok(ap.negotiated?.caps.addPathRx.has(0x101), 'ADD-PATH receive negotiated for IPv4 unicast');
    t.ok(await waitFor(() => apUpdates.some((u) => u.nlri.count > 0), 10_000), 'routes received');
    const u = apUpdates.find((x) => x.nlri.count > 0) as UpdateMessage;
    t.ok(u.nlri.pathIds, 'path identifiers decoded');
    t.same(prefixListToStrings(u.nlri).sort(), ['192.0.2.0/24', '192.0.2.128/25']);
    t.ok(
      Array.from(u.nlri.pathIds ?? []).every((id) => id > 0),
      `path ids ${Array.from(u.nlri.pathIds ?? []).join(',')}`,
    );
  });
});
