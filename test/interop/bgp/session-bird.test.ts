// tabby's BGP sessions against a real BIRD 2 in another netns (veth): iBGP v4, eBGP with 4-byte
// ASNs, iBGP over IPv6; routes both ways checked with `birdc show route all`; then the peer is
// killed (hold timer 4/0, re-established when it returns) and the veth is cut (same).
import { execSync } from 'node:child_process';
import t from 'tap';
import { BgpListener, BgpSession, type SessionConfig } from '../../../src/bgp/session.js';
import { prefixListFromStrings, prefixListToStrings, emptyPrefixList } from '../../../src/bgp/codec/prefix.js';
import type { UpdateMessage } from '../../../src/bgp/codec/types.js';
import { haveBird, startBird } from '../../helpers/bird.js';
import { isRoot, makeNsPair, waitFor } from '../../helpers/netns.js';

const skip = !isRoot() ? 'needs root (netns)' : !haveBird() ? 'needs bird2 (bird, birdc)' : false;

const BIRD_CONF = `
router id 10.77.0.2;
protocol device {}
protocol static s4 { ipv4; route 192.0.2.0/24 blackhole; }
protocol static s6 { ipv6; route 2001:db8:100::/48 blackhole; }
filter mark { if source = RTS_STATIC then { bgp_community.add((65000,100)); bgp_large_community.add((65000,1,2)); accept; } if source = RTS_BGP then accept; reject; }
protocol bgp ibgp4 { local 10.77.0.2 as 65000; neighbor 10.77.0.1 as 65000; direct; hold time 5; connect delay time 1; connect retry time 1; error wait time 1,2;
  ipv4 { import all; export filter mark; }; }
protocol bgp ebgp4 { local 10.77.0.12 as 4200000002; neighbor 10.77.0.11 as 4200000001; hold time 5; connect delay time 1; connect retry time 1; error wait time 1,2;
  ipv4 { import all; export where source = RTS_STATIC; }; }
protocol bgp ibgp6 { local fd77::2 as 65000; neighbor fd77::1 as 65000; direct; hold time 5; connect delay time 1; connect retry time 1; error wait time 1,2;
  ipv6 { import all; export filter mark; }; }
`;

interface Peer {
  s: BgpSession;
  updates: UpdateMessage[];
  downs: { reason: string; error?: { code: number; subcode: number; sent: boolean } }[];
  ups: number;
}

t.test('tabby ⟷ BIRD 2', { skip, timeout: 120_000 }, async (t) => {
  const pair = makeNsPair(t, 'bs', {
    a4: ['10.77.0.1/24', '10.77.0.11/24'],
    b4: ['10.77.0.2/24', '10.77.0.12/24'],
    a6: ['fd77::1/64'],
    b6: ['fd77::2/64'],
  });
  const listener = new BgpListener({ address: '::', port: 179, netns: pair.a.path });
  await listener.start();
  t.teardown(() => listener.stop());
  const peers: Record<string, Peer> = {};
  const add = (name: string, c: Omit<SessionConfig, 'routerId' | 'holdTime' | 'connectRetryTime' | 'idleHoldTime' | 'netns'>): Peer => {
    const s = new BgpSession({ ...c, routerId: '10.77.0.1', holdTime: 5, connectRetryTime: 1, idleHoldTime: 1, netns: pair.a.path });
    const p: Peer = { s, updates: [], downs: [], ups: 0 };
    s.on('update', (u: UpdateMessage) => p.updates.push(u));
    s.on('down', (d: Peer['downs'][number]) => p.downs.push(d));
    s.on('established', () => p.ups++);
    listener.add(s);
    t.teardown(() => s.stop());
    peers[name] = p;
    return p;
  };
  const ibgp4 = add('ibgp4', { address: '10.77.0.2', localAddress: '10.77.0.1', localAsn: 65000, peerAsn: 65000 });
  const ebgp4 = add('ebgp4', { address: '10.77.0.12', localAddress: '10.77.0.11', localAsn: 4200000001, peerAsn: 4200000002 });
  const ibgp6 = add('ibgp6', { address: 'fd77::2', localAddress: 'fd77::1', localAsn: 65000, peerAsn: 65000, families: ['ipv6'] });
  const bird = await startBird(t, { netns: pair.b.name, config: BIRD_CONF });
  for (const p of Object.values(peers)) p.s.start();

  const allUp = async (ms: number): Promise<boolean> =>
    waitFor(
      async () =>
        Object.values(peers).every((p) => p.s.established) &&
        (await bird.birdc('show protocols')).split('\n').filter((l) => /^(ibgp4|ebgp4|ibgp6)\s.*Established/.test(l)).length === 3,
      ms,
      100,
    );

  await t.test('iBGP, eBGP (4-byte ASN) and IPv6 sessions reach Established', async (t) => {
    t.ok(await allUp(20_000), 'BIRD `show protocols` says Established for all three, and so does tabby');
    for (const name of ['ibgp4', 'ebgp4', 'ibgp6']) t.match(await bird.protocolState(name), /Established/, name);
    t.equal(ibgp4.s.status().info, 'Established');
    t.equal(ebgp4.s.negotiated?.peerAsn, 4200000002, '4-byte peer ASN from the capability');
    t.equal(ebgp4.s.negotiated?.caps.as4, true);
    t.equal(ibgp4.s.negotiated?.holdTime, 5);
  });

  await t.test('routes BIRD originates arrive decoded correctly', async (t) => {
    const find = (p: Peer, prefix: string): UpdateMessage | undefined =>
      p.updates.find(
        (u) =>
          prefixListToStrings(u.nlri).includes(prefix) ||
          (u.attrs?.mpReach ? prefixListToStrings(u.attrs.mpReach.nlri).includes(prefix) : false),
      );
    t.ok(
      await waitFor(() => !!find(ibgp4, '192.0.2.0/24') && !!find(ebgp4, '192.0.2.0/24') && !!find(ibgp6, '2001:db8:100::/48'), 10_000),
      'all three received',
    );
    const i = find(ibgp4, '192.0.2.0/24')?.attrs;
    t.match(i, {
      origin: 0,
      asPath: [],
      nextHop: '10.77.0.2',
      localPref: 100,
      communities: [65000 * 65536 + 100],
      largeCommunities: [{ global: 65000, local1: 1, local2: 2 }],
    });
    const e = find(ebgp4, '192.0.2.0/24')?.attrs;
    t.same(e?.asPath, [{ type: 2, asns: [4200000002] }], 'eBGP AS_PATH with the 4-byte ASN');
    t.equal(e?.nextHop, '10.77.0.12');
    const v6 = find(ibgp6, '2001:db8:100::/48')?.attrs?.mpReach;
    t.match(v6, { afi: 2, safi: 1, nextHop: 'fd77::2' });
  });

  await t.test('routes tabby sends show in `birdc show route` with next hop and AS path', async (t) => {
    ibgp4.s.sendUpdate({
      type: 'update',
      withdrawn: emptyPrefixList(1),
      nlri: prefixListFromStrings(1, ['203.0.113.0/24']),
      attrs: { origin: 0, asPath: [], nextHop: '10.77.0.1', localPref: 100, communities: [65000 * 65536 + 7] },
    });
    ebgp4.s.sendUpdate({
      type: 'update',
      withdrawn: emptyPrefixList(1),
      nlri: prefixListFromStrings(1, ['198.51.100.0/24']),
      attrs: { origin: 0, asPath: [{ type: 2, asns: [4200000001, 65123] }], nextHop: '10.77.0.11' },
    });
    ibgp6.s.sendUpdate({
      type: 'update',
      withdrawn: emptyPrefixList(1),
      nlri: emptyPrefixList(1),
      attrs: {
        origin: 0,
        asPath: [],
        localPref: 100,
        mpReach: { afi: 2, safi: 1, nextHop: 'fd77::1', nlri: prefixListFromStrings(2, ['2001:db8:200::/48']) },
      },
    });
    const show = (p: string): Promise<string> => bird.birdc(`show route ${p} all`);
    t.ok(
      await waitFor(
        async () =>
          (await show('203.0.113.0/24')).includes('BGP.as_path') &&
          (await show('198.51.100.0/24')).includes('BGP.as_path') &&
          (await show('2001:db8:200::/48')).includes('BGP.as_path'),
        10_000,
        100,
      ),
      'BIRD has all three',
    );
    const r1 = await show('203.0.113.0/24');
    t.match(r1, /via 10\.77\.0\.1 on veth1/);
    t.match(r1, /BGP\.as_path: *\n/);
    t.match(r1, /BGP\.community: \(65000,7\)/);
    const r2 = await show('198.51.100.0/24');
    t.match(r2, /via 10\.77\.0\.11 on veth1/);
    t.match(r2, /BGP\.as_path: 4200000001 65123/);
    t.match(await show('2001:db8:200::/48'), /via fd77::1 on veth1/);
    t.match(
      (await bird.routes('198.51.100.0/24'))[0],
      { prefix: '198.51.100.0/24', protocol: 'ebgp4', via: '10.77.0.11', asPath: [4200000001, 65123], nextHop: '10.77.0.11' },
      'the same through the routes() helper',
    );
    t.match((await bird.routes('203.0.113.0/24'))[0], {
      protocol: 'ibgp4',
      via: '10.77.0.1',
      asPath: [],
      localPref: 100,
      communities: ['(65000,7)'],
    });
    // and a withdraw removes it
    ibgp4.s.sendUpdate({ type: 'update', withdrawn: prefixListFromStrings(1, ['203.0.113.0/24']), nlri: emptyPrefixList(1), attrs: null });
    t.ok(await waitFor(async () => !(await show('203.0.113.0/24')).includes('BGP'), 15_000, 100), 'withdrawn from BIRD');
  });

  await t.test('peer hung (SIGSTOP) → hold timer expiry 4/0; killed and restarted → re-established', async (t) => {
    for (const p of Object.values(peers)) p.downs.length = 0;
    const ups = ibgp4.ups;
    bird.freeze();
    t.ok(await waitFor(() => Object.values(peers).every((p) => p.downs.length > 0), 12_000), 'all sessions went down');
    for (const [name, p] of Object.entries(peers))
      t.match(p.downs[0], { error: { code: 4, subcode: 0, sent: true } }, `${name}: hold timer expired, 4/0 sent`);
    t.match(ibgp4.s.status().info, /^(Idle|Connect|Active|OpenSent)/);
    await bird.restart();
    t.ok(await allUp(15_000), 're-established (ConnectRetry)');
    t.ok(ibgp4.ups > ups);
  });

  await t.test('peer killed (SIGKILL) → down at once (connection closed); back when it returns', async (t) => {
    for (const p of Object.values(peers)) p.downs.length = 0;
    await bird.kill();
    t.ok(await waitFor(() => Object.values(peers).every((p) => p.downs.length > 0), 3000), 'all sessions went down before any hold timer');
    t.match(ibgp4.s.status().info, /Socket: (Connection closed|Connection refused)/);
    await bird.restart();
    t.ok(await allUp(15_000), 're-established');
  });

  await t.test('veth cut → hold timer expiry on both sides; back when restored', async (t) => {
    for (const p of Object.values(peers)) p.downs.length = 0;
    pair.cut();
    t.ok(await waitFor(() => Object.values(peers).every((p) => p.downs.length > 0), 12_000), 'all sessions went down');
    t.match(ibgp4.downs[0], { error: { code: 4, subcode: 0, sent: true } }, 'tabby: hold timer expired');
    t.ok(
      await waitFor(async () => /Hold timer expired/i.test(await bird.birdc('show protocols all ibgp4')), 12_000, 200),
      'BIRD: hold timer expired (Last error)',
    );
    pair.restore();
    t.ok(await allUp(20_000), 're-established');
  });

  await t.test('veth link down (carrier lost) → tabby: hold timer expiry 4/0; back on link up', async (t) => {
    ibgp4.downs.length = 0;
    pair.linkDown();
    t.ok(await waitFor(() => ibgp4.downs.length > 0, 12_000), 'tabby session went down');
    t.match(ibgp4.downs[0], { error: { code: 4, subcode: 0, sent: true } }, 'tabby does not watch links: the hold timer expires');
    pair.linkUp();
    const ok = await allUp(25_000);
    if (!ok)
      t.comment(
        await bird.birdc('show protocols'),
        Object.values(peers)
          .map((p) => p.s.status().info)
          .join(' | '),
        execSync(`ip -n ${pair.a.name} addr; ip -n ${pair.a.name} route; ip -n ${pair.a.name} -6 route`).toString(),
      );
    t.ok(ok, 're-established');
  });
});
