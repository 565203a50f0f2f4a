// Golden vectors captured from BIRD 2.0.12 and GoBGP 3.10 (proto/bgp/golden/README.md): each decodes
// to the expected fields, and encode(decode(x)) is x byte for byte.
import t from 'tap';
import { decodeMessage, encodeMessage } from '../../../src/bgp/codec/message.js';
import { prefixListToStrings } from '../../../src/bgp/codec/prefix.js';
import { AS4_CAPS, DEFAULT_CAPS, type BgpMessage, type OpenMessage, type UpdateMessage } from '../../../src/bgp/codec/types.js';
import { golden, goldenFiles } from './golden.js';

const capsFor = (file: string) => (file.includes('as2-peer') ? DEFAULT_CAPS : AS4_CAPS);

t.test('every golden message round-trips byte for byte', async (t) => {
  const files = goldenFiles();
  t.ok(files.length >= 13, `${files.length} golden files`);
  for (const f of files) {
    const msgs = golden(f);
    t.ok(msgs.length > 0, `${f} has messages`);
    for (const [i, b] of msgs.entries()) {
      const m = decodeMessage(b, capsFor(f));
      t.same(encodeMessage(m, capsFor(f)).toString('hex'), b.toString('hex'), `${f}#${i} (${m.type})`);
    }
  }
});

const one = <T extends BgpMessage>(f: string, i = 0): T => decodeMessage(golden(f)[i] as Buffer, capsFor(f)) as T;

t.test('BIRD OPENs', async (t) => {
  const o = one<OpenMessage>('bird-open-ibgp4.hex');
  t.match(o, { type: 'open', version: 4, asn: 65000, holdTime: 90, routerId: '10.78.0.2' });
  t.same(
    o.capabilities.map((c) => c.kind),
    ['multiprotocol', 'route-refresh', 'graceful-restart', 'as4', 'enhanced-route-refresh', 'unknown'],
  );
  t.match(o.capabilities[0], { afi: 1, safi: 1 });
  t.match(o.capabilities[2], { kind: 'graceful-restart', restartTime: 120, restarting: false });
  t.match(o.capabilities[5], { kind: 'unknown', code: 71 }); // LLGR "aware", ignored (RFC 5492 §3)
  const e = one<OpenMessage>('bird-open-ebgp-as4.hex');
  t.equal(e.asn, 23456, 'AS_TRANS in the 2-octet field');
  t.match(
    e.capabilities.find((c) => c.kind === 'as4'),
    { asn: 4200000002 },
  );
  t.match(one<OpenMessage>('bird-open-ibgp6.hex').capabilities[0], { kind: 'multiprotocol', afi: 2, safi: 1 });
});

t.test('BIRD UPDATEs', async (t) => {
  const u = one<UpdateMessage>('bird-update-ibgp4.hex');
  t.same(prefixListToStrings(u.nlri), ['10.78.0.0/24', '192.0.2.0/24', '198.51.100.128/25']);
  t.match(u.attrs, { origin: 0, asPath: [], nextHop: '10.78.0.2', med: 50, localPref: 100, communities: [65000 * 65536 + 100] });
  t.same(u.attrs?.largeCommunities, [{ global: 65000, local1: 1, local2: 2 }]);
  t.same(u.attrs?.extCommunities, [0x0002fde800000007n]);
  const eor = one<UpdateMessage>('bird-update-ibgp4.hex', 1);
  t.equal(eor.attrs, null, 'IPv4 End-of-RIB: empty UPDATE');
  t.equal(eor.nlri.count + eor.withdrawn.count, 0);
  const e = one<UpdateMessage>('bird-update-ebgp-as4.hex');
  t.same(e.attrs?.asPath, [{ type: 2, asns: [4200000002] }], '4-octet AS_PATH');
  const old = one<UpdateMessage>('bird-update-as2-peer.hex');
  t.same(old.attrs?.asPath, [{ type: 2, asns: [4200000002] }], 'AS_PATH [23456] merged with AS4_PATH (RFC 6793)');
  const raw = golden('bird-update-as2-peer.hex')[0] as Buffer;
  t.ok(raw.includes(Buffer.from([0xc0, 17])), 'the wire carries an AS4_PATH attribute');
  const v6 = one<UpdateMessage>('bird-update-ibgp6.hex');
  t.match(v6.attrs?.mpReach, { afi: 2, safi: 1, nextHop: 'fd78::2' });
  t.same(prefixListToStrings(v6.attrs?.mpReach?.nlri ?? v6.nlri), ['2001:db8:100::/48', 'fd78::/64']);
  const v6eor = one<UpdateMessage>('bird-update-ibgp6.hex', 1);
  t.match(v6eor.attrs?.mpUnreach, { afi: 2, safi: 1 });
  t.equal(v6eor.attrs?.mpUnreach?.withdrawn.count, 0, 'IPv6 End-of-RIB: empty MP_UNREACH');
});

t.test('BIRD and GoBGP NOTIFICATION / KEEPALIVE', async (t) => {
  t.match(one('bird-notification-cease.hex'), { type: 'notification', code: 6, subcode: 2 });
  t.match(one('gobgp-notification-cease.hex'), { type: 'notification', code: 6, subcode: 2 });
  t.same(one('bird-keepalive.hex'), { type: 'keepalive' });
  t.same(one('gobgp-keepalive.hex'), { type: 'keepalive' });
});

t.test('GoBGP OPEN and UPDATEs', async (t) => {
  const o = one<OpenMessage>('gobgp-open.hex');
  t.match(o, { asn: 65000, holdTime: 90, routerId: '10.78.0.2' });
  t.ok(
    o.capabilities.some((c) => c.kind === 'fqdn'),
    'FQDN capability (73)',
  );
  t.match(
    o.capabilities.find((c) => c.kind === 'extended-next-hop'),
    { entries: [{ afi: 1, safi: 1, nextHopAfi: 2 }] },
  );
  const all = golden('gobgp-update.hex').map((b) => decodeMessage(b, AS4_CAPS) as UpdateMessage);
  const v4 = all.find((u) => u.nlri.count > 0);
  t.ok(v4, 'an IPv4 UPDATE');
  t.same(prefixListToStrings(v4?.nlri ?? all[0]!.nlri), ['203.0.113.0/24']);
  t.match(v4?.attrs, { origin: 2, nextHop: '10.78.0.2', med: 10, communities: [65000 * 65536 + 200] });
  const v6 = all.find((u) => u.attrs?.mpReach);
  t.match(v6?.attrs?.mpReach, { afi: 2, nextHop: 'fd78::2' });
  t.same(prefixListToStrings(v6?.attrs?.mpReach?.nlri ?? all[0]!.nlri), ['2001:db8:200::/48']);
});
