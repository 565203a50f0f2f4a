// The speaker's list of originated prefixes an export filter keeps from a peer (what the agent's
// status record carries for `route explain` and `cluster status`): per peer, the deciding rule; a peer
// without export filters, an accepted prefix and a learned (not originated) prefix are not listed.
import t from 'tap';
import { MemHub, memSpeaker } from './speaker-harness.js';
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
