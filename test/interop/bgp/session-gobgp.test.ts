// tabby's BGP sessions against a real GoBGP 3 (gobgpd + gobgp CLI) in another netns: iBGP with
// IPv4 + IPv6 unicast on one session, eBGP with 4-byte ASNs; routes both ways.
import t from 'tap';
import { BgpListener, BgpSession } from '../../../src/bgp/session.js';
import { emptyPrefixList, prefixListFromStrings, prefixListToStrings } from '../../../src/bgp/codec/prefix.js';
import type { UpdateMessage } from '../../../src/bgp/codec/types.js';
import { gobgpConfig, haveGobgp, startGobgp } from '../../helpers/gobgp.js';
import { isRoot, makeNsPair, waitFor } from '../../helpers/netns.js';

const skip = !isRoot() ? 'needs root (netns)' : !haveGobgp() ? 'needs gobgpd and gobgp' : false;

const timers = { holdTime: 9, keepaliveInterval: 3, connectRetry: 1 };
const GOBGP_CONF = gobgpConfig({
  asn: 65000,
  routerId: '10.80.0.2',
  neighbors: [
    { address: '10.80.0.1', peerAs: 65000, localAddress: '10.80.0.2', families: ['ipv4-unicast', 'ipv6-unicast'], ...timers },
    { address: '10.80.0.11', peerAs: 4200000001, localAs: 4200000003, localAddress: '10.80.0.12', ...timers },
  ],
});

t.test('tabby ⟷ GoBGP', { skip, timeout: 90_000 }, async (t) => {
  const pair = makeNsPair(t, 'gs', {
    a4: ['10.80.0.1/24', '10.80.0.11/24'],
    b4: ['10.80.0.2/24', '10.80.0.12/24'],
    a6: ['fd80::1/64'],
    b6: ['fd80::2/64'],
  });
  const listener = new BgpListener({ address: '::', port: 179, netns: pair.a.path });
  await listener.start();
  t.teardown(() => listener.stop());
  const mk = (address: string, localAddress: string, localAsn: number, peerAsn: number, families: ('ipv4' | 'ipv6')[]) => {
    const s = new BgpSession({
      address,
      localAddress,
      localAsn,
      peerAsn,
      families,
      routerId: '10.80.0.1',
      holdTime: 9,
      connectRetryTime: 1,
      idleHoldTime: 1,
      netns: pair.a.path,
    });
    const updates: UpdateMessage[] = [];
    s.on('update', (u: UpdateMessage) => updates.push(u));
    listener.add(s);
    t.teardown(() => s.stop());
    return { s, updates };
  };
  const ibgp = mk('10.80.0.2', '10.80.0.1', 65000, 65000, ['ipv4', 'ipv6']);
  const ebgp = mk('10.80.0.12', '10.80.0.11', 4200000001, 4200000003, ['ipv4']);
  const g = await startGobgp(t, { netns: pair.b.name, config: GOBGP_CONF });
  await g.gobgp('global', 'rib', 'add', '203.0.113.0/24', 'nexthop', '10.80.0.2', 'community', '65000:200', 'med', '10');
  t.match(
    (await g.rib('ipv4')).find((p) => p.prefix === '203.0.113.0/24'),
    { nextHop: '10.80.0.2', communities: [65000 * 65536 + 200] },
    'rib() helper',
  );
  await g.gobgp('global', 'rib', '-a', 'ipv6', 'add', '2001:db8:200::/48', 'nexthop', 'fd80::2');
  ibgp.s.start();
  ebgp.s.start();

  await t.test('iBGP (IPv4+IPv6) and eBGP (4-byte ASNs) reach Established', async (t) => {
    t.ok(
      await waitFor(
        async () =>
          ibgp.s.established &&
          ebgp.s.established &&
          (await g.neighborState('10.80.0.1')) === 'established' &&
          (await g.neighborState('10.80.0.11')) === 'established',
        20_000,
        100,
      ),
      'both sides Established',
    );
    t.match(await g.gobgp('neighbor'), /10\.80\.0\.1\s.*Establ/);
    t.same(ibgp.s.negotiated?.families, [0x101, 0x201], 'IPv4 and IPv6 unicast negotiated');
    t.equal(ebgp.s.negotiated?.peerAsn, 4200000003);
    t.ok(ibgp.s.negotiated?.peerHostname !== undefined, 'GoBGP FQDN capability decoded');
  });

  await t.test('routes GoBGP originates arrive decoded correctly', async (t) => {
    const v4 = (u: UpdateMessage[]) => u.find((x) => prefixListToStrings(x.nlri).includes('203.0.113.0/24'));
    const v6 = (u: UpdateMessage[]) =>
      u.find((x) => x.attrs?.mpReach && prefixListToStrings(x.attrs.mpReach.nlri).includes('2001:db8:200::/48'));
    t.ok(await waitFor(() => !!v4(ibgp.updates) && !!v6(ibgp.updates) && !!v4(ebgp.updates), 10_000), 'received');
    t.match(v4(ibgp.updates)?.attrs, { nextHop: '10.80.0.2', med: 10, localPref: 100, communities: [65000 * 65536 + 200], asPath: [] });
    t.match(v6(ibgp.updates)?.attrs?.mpReach, { afi: 2, safi: 1, nextHop: 'fd80::2' });
    const e = v4(ebgp.updates)?.attrs;
    t.same(e?.asPath, [{ type: 2, asns: [4200000003] }]);
    // GoBGP keeps the originated next hop on eBGP when it is on the shared subnet (RFC 4271 §5.1.3).
    t.equal(e?.nextHop, '10.80.0.2', 'third-party next hop on the shared subnet');
  });

  await t.test('routes tabby sends show in `gobgp global rib`', async (t) => {
    ibgp.s.sendUpdate({
      type: 'update',
      withdrawn: emptyPrefixList(1),
      nlri: prefixListFromStrings(1, ['192.0.2.0/24']),
      attrs: { origin: 0, asPath: [], nextHop: '10.80.0.1', localPref: 100 },
    });
    ibgp.s.sendUpdate({
      type: 'update',
      withdrawn: emptyPrefixList(1),
      nlri: emptyPrefixList(1),
      attrs: {
        origin: 0,
        asPath: [],
        localPref: 100,
        mpReach: { afi: 2, safi: 1, nextHop: 'fd80::1', nlri: prefixListFromStrings(2, ['2001:db8:300::/48']) },
      },
    });
    ebgp.s.sendUpdate({
      type: 'update',
      withdrawn: emptyPrefixList(1),
      nlri: prefixListFromStrings(1, ['198.51.100.0/24']),
      attrs: { origin: 0, asPath: [{ type: 2, asns: [4200000001, 65123] }], nextHop: '10.80.0.11' },
    });
    const rib4 = (): Promise<string> => g.gobgp('global', 'rib', '-a', 'ipv4');
    const rib6 = (): Promise<string> => g.gobgp('global', 'rib', '-a', 'ipv6');
    t.ok(
      await waitFor(
        async () =>
          (await rib4()).includes('192.0.2.0/24') &&
          (await rib4()).includes('198.51.100.0/24') &&
          (await rib6()).includes('2001:db8:300::/48'),
        10_000,
        100,
      ),
      'GoBGP has them',
    );
    const r4 = await rib4();
    t.match(r4, /192\.0\.2\.0\/24\s+10\.80\.0\.1\s/, 'iBGP next hop');
    t.match(r4, /198\.51\.100\.0\/24\s+10\.80\.0\.11\s+4200000001 65123\s/, 'eBGP next hop and AS path');
    t.match(await rib6(), /2001:db8:300::\/48\s+fd80::1\s/, 'IPv6 next hop');
    const paths = await g.rib('ipv4');
    t.match(
      paths.find((p) => p.prefix === '198.51.100.0/24'),
      { nextHop: '10.80.0.11', asPath: [4200000001, 65123], neighbor: '10.80.0.11' },
      'the same via the JSON helper',
    );
  });
});
