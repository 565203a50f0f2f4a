// Datastore → speaker BGP policy (pure): BGPPeer.filters resolution (a missing filter fails closed),
// communities on originated prefixes from prefixAdvertisements, nextHopMode; and the text of
// `tabbyctl bgp routes`.
import t from 'tap';
import { resolveFilters, communitiesFor, nextHopFlags, peerRoutes } from '../../../src/agent/bgp-policy.js';
import { FilterChain, routePrefixOf } from '../../../src/bgp/filter/engine.js';
import { renderBgpRoutes } from '../../../src/cli/commands/bgp.js';

t.test('filters resolve in BGPPeer order; a missing one rejects everything', async (t) => {
  const all = [
    { metadata: { name: 'b' }, spec: { importV4: [{ action: 'Reject' as const, matchOperator: 'In' as const, cidr: '10.0.0.0/8' }] } },
    { metadata: { name: 'a' }, spec: {} },
  ];
  const r = resolveFilters(['a', 'b'], all);
  t.same(
    r.filters.map((f) => f.name),
    ['a', 'b'],
  );
  t.same(r.missing, []);
  const m = resolveFilters(['a', 'gone'], all);
  t.same(m.missing, ['gone']);
  const chain = new FilterChain(m.filters);
  const ctx = { attrs: { origin: 0 }, fromPeer: true, ebgpPeer: true };
  for (const [dir, cidr] of [
    ['import', '192.168.0.0/24'],
    ['export', '192.168.0.0/24'],
    ['import', 'fd00::/64'],
    ['export', 'fd00::/64'],
  ] as const) {
    t.equal(chain.evaluate(dir, routePrefixOf(cidr), ctx).decision.action, 'Reject', `fails closed: ${dir} ${cidr}`);
  }
});

t.test('communities for originated prefixes (Calico prefixAdvertisements)', async (t) => {
  const cfg = {
    communities: [
      { name: 'bgp-large-community', value: '63400:300:100' },
      { name: 'rack', value: '63400:7' },
    ],
    prefixAdvertisements: [
      { cidr: '172.218.4.0/22', communities: ['bgp-large-community', '63400:120'] },
      { cidr: '172.218.4.0/26', communities: ['rack', '63400:120'] },
      { cidr: 'fd00::/8', communities: ['63400:6'] },
    ],
  };
  t.same(
    communitiesFor('172.218.4.0/26', cfg),
    {
      communities: [((63400 << 16) | 120) >>> 0, ((63400 << 16) | 7) >>> 0],
      largeCommunities: [{ global: 63400, local1: 300, local2: 100 }],
    },
    'every containing entry, names resolved, no duplicates',
  );
  t.same(communitiesFor('172.218.5.0/26', cfg), {
    communities: [((63400 << 16) | 120) >>> 0],
    largeCommunities: [{ global: 63400, local1: 300, local2: 100 }],
  });
  t.same(communitiesFor('172.218.0.0/16', cfg), { communities: [], largeCommunities: [] }, 'a wider prefix is not inside the cidr');
  t.same(communitiesFor('fd00:1::/122', cfg).communities, [((63400 << 16) | 6) >>> 0]);
  t.same(communitiesFor('10.0.0.0/26', undefined), { communities: [], largeCommunities: [] });
});

t.test('nextHopMode', async (t) => {
  t.same(nextHopFlags('Self', false), { nextHopSelf: true, keepOriginalNextHop: false });
  t.same(nextHopFlags('Keep', false), { nextHopSelf: false, keepOriginalNextHop: true });
  t.same(nextHopFlags('Auto', true), { nextHopSelf: false, keepOriginalNextHop: true }, 'Auto keeps the older keepOriginalNextHop');
  t.same(nextHopFlags(undefined, false), { nextHopSelf: false, keepOriginalNextHop: false });
});

t.test('bgp routes text', async (t) => {
  const text = renderBgpRoutes([
    {
      peer: '192.0.2.1',
      direction: 'advertised',
      routes: [
        {
          prefix: '192.168.2.0/26',
          state: 'not-advertised',
          decidedBy: 'tor exportV4[0] Reject',
          filter: 'tor',
          rule: 0,
          action: 'Reject',
          asPath: [],
          communities: [],
        },
        {
          prefix: '192.168.10.0/26',
          state: 'advertised',
          decidedBy: 'default Accept',
          nextHop: '10.0.0.1',
          asPath: [64512],
          communities: ['64512:100'],
        },
      ],
    },
  ]);
  t.equal(
    text,
    [
      'Routes toward 192.0.2.1',
      '+-----------------+----------------+----------+---------+-------------+------------------------+',
      '|     PREFIX      |     STATE      | NEXT HOP | AS PATH | COMMUNITIES |       DECIDED BY       |',
      '+-----------------+----------------+----------+---------+-------------+------------------------+',
      '| 192.168.2.0/26  | not-advertised |          |         |             | tor exportV4[0] Reject |',
      '| 192.168.10.0/26 | advertised     | 10.0.0.1 | 64512   | 64512:100   | default Accept         |',
      '+-----------------+----------------+----------+---------+-------------+------------------------+',
      '',
      '',
    ].join('\n'),
  );
});

t.test('peerRoutes: BGPPeer reachableBy → a host route to the peer via the gateway, per family', async (t) => {
  t.same(
    peerRoutes([
      { address: '192.0.2.1', family: 4, reachableBy: '172.31.1.1' },
      { address: 'fd00::9', family: 6, reachableBy: 'fd00::1' },
      { address: '192.0.2.2', family: 4 },
      { address: '192.0.2.3', family: 4, reachableBy: 'fd00::1' },
    ]),
    [
      { dst: '192.0.2.1/32', gateway: '172.31.1.1' },
      { dst: 'fd00::9/128', gateway: 'fd00::1' },
    ],
  );
});
