// The speaker's list of originated prefixes an export filter keeps from a peer (what the agent's
// status record carries for `route explain` and `cluster status`): per peer, the deciding rule; a peer
// without export filters, an accepted prefix and a learned (not originated) prefix are not listed.
import t from 'tap';
import { MemHub, memSpeaker, until } from './speaker-harness.js';
import type { NamedFilter } from '../../../src/bgp/filter/types.js';

t.test('exportRejections names the filter and rule per peer', async (t) => {
  const hub = new MemHub();
  const a = memSpeaker(hub, '10.0.0.1', { asn: 65001, routerId: '1.1.1.1' });
  const f: NamedFilter = {
    name: 'no-192-2',
    spec: {
      exportV4: [
        { action: 'Accept', matchOperator: 'Equal', cidr: '192.168.1.0/24' },
        { action: 'Reject', matchOperator: 'In', cidr: '192.168.0.0/16' },
      ],
    },
  };
  const v6only: NamedFilter = { name: 'v6', spec: { exportV6: [{ action: 'Reject' }] } };
  a.addPeer({ address: '10.0.0.2', asn: 65002, families: ['ipv4'], localAddress: '10.0.0.1', filters: [f] });
  a.addPeer({ address: '10.0.0.3', asn: 65003, families: ['ipv4'], localAddress: '10.0.0.1' });
  a.addPeer({ address: '10.0.0.4', asn: 65004, families: ['ipv4'], localAddress: '10.0.0.1', filters: [v6only] });
  for (const p of ['192.168.1.0/24', '192.168.2.0/24', '10.9.0.0/24']) a.originate(p);
  t.same(a.exportRejections(), [
    { prefix: '192.168.2.0/24', peer: '10.0.0.2', filter: 'no-192-2', rule: 1, decidedBy: 'no-192-2 exportV4[1] Reject' },
  ]);
  a.withdraw('192.168.2.0/24');
  t.same(a.exportRejections(), [], 'gone with the prefix');
  t.same(a.exportRejections(0), [], 'bounded');
});

t.test(
  'a route reflector lists the reflected routes its export filters keep from a client (not when its Loc-RIB is too big)',
  async (t) => {
    const hub = new MemHub();
    const rr = memSpeaker(hub, '10.0.0.100', { asn: 65000, routerId: '10.0.0.100', clusterId: '1.0.0.1' });
    const c1 = memSpeaker(hub, '10.0.0.1', { asn: 65000, routerId: '10.0.0.1' });
    const c2 = memSpeaker(hub, '10.0.0.2', { asn: 65000, routerId: '10.0.0.2' });
    const noC1: NamedFilter = { name: 'no-c1', spec: { exportV4: [{ action: 'Reject', matchOperator: 'In', cidr: '192.168.1.0/24' }] } };
    const ibgp = (address: string, extra: object = {}) => ({ address, asn: 65000, families: ['ipv4' as const], ...extra });
    rr.addPeer(ibgp('10.0.0.1', { routeReflectorClient: true }));
    rr.addPeer(ibgp('10.0.0.2', { routeReflectorClient: true, filters: [noC1] }));
    for (const s of [c1, c2]) s.addPeer(ibgp('10.0.0.100'));
    const all = [rr, c1, c2];
    for (const s of all) await s.start();
    t.teardown(() => Promise.all(all.map((s) => s.stop())));
    await until(() => rr.peers().filter((p) => p.state === 'Established').length === 2, 5000, 'rr sessions');
    c1.originate('192.168.1.0/26');
    c2.originate('192.168.2.0/26');
    await until(() => rr.locRib().size === 2, 5000, 'rr learned both');
    t.same(rr.exportRejections(), [
      { prefix: '192.168.1.0/26', peer: '10.0.0.2', filter: 'no-c1', rule: 0, decidedBy: 'no-c1 exportV4[0] Reject' },
    ]);
    t.equal(c2.locRib().get('192.168.1.0/26'), undefined, 'and c2 indeed did not get it');
    t.same(rr.exportRejections(200, 1), [], 'Loc-RIB larger than the walk bound: reflected routes not listed');
    t.same(c2.exportRejections(), [], 'a client without export filters lists nothing (its own route goes out)');
  },
);
