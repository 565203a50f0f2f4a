// The BGPFilter engine as tables: each row is a filter chain, a route, and the decision Calico's
// BIRD functions would take (first match wins inside a filter, then the next filter, default Accept).
import t from 'tap';
import {
  FilterChain,
  INDEX_MIN_RULES,
  parseCommunity,
  formatCommunity,
  routePrefixOf,
  describeDecision,
  FilterCompileError,
  type RouteContext,
} from '../../../../src/bgp/filter/engine.js';
import type { FilterRule, NamedFilter } from '../../../../src/bgp/filter/types.js';
import type { RouteAttributes } from '../../../../src/bgp/rib/attrs.js';

const attrs = (a: Partial<RouteAttributes> = {}): RouteAttributes => ({
  origin: 0,
  asPath: [{ type: 2, asns: [65001, 65002] }],
  nextHop: '10.0.0.1',
  ...a,
});
const ctx = (a: Partial<RouteContext> = {}): RouteContext => ({ attrs: attrs(), fromPeer: true, ebgpPeer: true, ...a });
const v4 = (rules: FilterRule[], name = 'f'): NamedFilter => ({ name, spec: { importV4: rules, exportV4: rules } });
const decide = (filters: NamedFilter[], cidr: string, c: RouteContext = ctx(), dir: 'import' | 'export' = 'import', iface?: string) => {
  const r = new FilterChain(filters).evaluate(dir, routePrefixOf(cidr, iface), c);
  return describeDecision(r.decision, dir, cidr.includes(':') ? 2 : 1);
};

t.test('prefix operators with and without prefixLength (Calico/BIRD semantics)', async (t) => {
  const rows: [FilterRule, string, string][] = [
    [{ action: 'Reject', matchOperator: 'In', cidr: '10.0.0.0/8' }, '10.1.0.0/16', 'f importV4[0] Reject'],
    [{ action: 'Reject', matchOperator: 'In', cidr: '10.0.0.0/8' }, '10.0.0.0/8', 'f importV4[0] Reject'],
    [{ action: 'Reject', matchOperator: 'In', cidr: '10.0.0.0/8' }, '10.0.0.0/7', 'default Accept'],
    [{ action: 'Reject', matchOperator: 'In', cidr: '10.0.0.0/8' }, '11.0.0.0/16', 'default Accept'],
    [{ action: 'Reject', matchOperator: 'NotIn', cidr: '10.0.0.0/8' }, '11.0.0.0/16', 'f importV4[0] Reject'],
    [{ action: 'Reject', matchOperator: 'NotIn', cidr: '10.0.0.0/8' }, '10.9.0.0/16', 'default Accept'],
    [{ action: 'Reject', matchOperator: 'Equal', cidr: '10.0.0.0/8' }, '10.0.0.0/8', 'f importV4[0] Reject'],
    [{ action: 'Reject', matchOperator: 'Equal', cidr: '10.0.0.0/8' }, '10.0.0.0/9', 'default Accept'],
    [{ action: 'Reject', matchOperator: 'NotEqual', cidr: '10.0.0.0/8' }, '10.0.0.0/9', 'f importV4[0] Reject'],
    [{ action: 'Reject', matchOperator: 'NotEqual', cidr: '10.0.0.0/8' }, '10.0.0.0/8', 'default Accept'],
    // prefixLength narrows In; min defaults to the cidr length, max to 32
    [
      { action: 'Reject', matchOperator: 'In', cidr: '10.0.0.0/8', prefixLength: { min: 16, max: 24 } },
      '10.1.2.0/24',
      'f importV4[0] Reject',
    ],
    [{ action: 'Reject', matchOperator: 'In', cidr: '10.0.0.0/8', prefixLength: { min: 16, max: 24 } }, '10.1.2.0/25', 'default Accept'],
    [{ action: 'Reject', matchOperator: 'In', cidr: '10.0.0.0/8', prefixLength: { min: 16, max: 24 } }, '10.0.0.0/12', 'default Accept'],
    [{ action: 'Reject', matchOperator: 'In', cidr: '10.0.0.0/8', prefixLength: { max: 24 } }, '10.0.0.0/8', 'f importV4[0] Reject'],
    [{ action: 'Reject', matchOperator: 'In', cidr: '10.0.0.0/8', prefixLength: { min: 30 } }, '10.0.0.4/30', 'f importV4[0] Reject'],
    [{ action: 'Reject', matchOperator: 'In', cidr: '10.0.0.0/8', prefixLength: { min: 30 } }, '10.0.0.0/29', 'default Accept'],
    // NotIn negates the whole test, prefixLength included (BIRD: net !~ [ 10.0.0.0/8{16,24} ])
    [
      { action: 'Reject', matchOperator: 'NotIn', cidr: '10.0.0.0/8', prefixLength: { min: 16, max: 24 } },
      '10.1.2.0/25',
      'f importV4[0] Reject',
    ],
    [{ action: 'Reject', matchOperator: 'NotIn', cidr: '10.0.0.0/8', prefixLength: { min: 16, max: 24 } }, '10.1.2.0/24', 'default Accept'],
    [{ action: 'Reject', matchOperator: 'In', cidr: '0.0.0.0/0' }, '192.168.1.0/24', 'f importV4[0] Reject'],
    [{ action: 'Reject' }, '192.168.1.0/24', 'f importV4[0] Reject'],
  ];
  for (const [rule, cidr, want] of rows) t.equal(decide([v4([rule])], cidr), want, `${JSON.stringify(rule)} on ${cidr}`);
});

t.test('IPv6 prefixes', async (t) => {
  const f = (r: FilterRule): NamedFilter => ({ name: 'six', spec: { importV6: [r] } });
  t.equal(decide([f({ action: 'Reject', matchOperator: 'In', cidr: 'fd00:1::/32' })], 'fd00:1:2::/48'), 'six importV6[0] Reject');
  t.equal(decide([f({ action: 'Reject', matchOperator: 'In', cidr: 'fd00:1::/32' })], 'fd00:2::/48'), 'default Accept');
  t.equal(
    decide([f({ action: 'Reject', matchOperator: 'In', cidr: 'fd00:1:2:3::/64', prefixLength: { min: 96 } })], 'fd00:1:2:3::a:0/112'),
    'six importV6[0] Reject',
  );
  t.equal(
    decide([f({ action: 'Reject', matchOperator: 'In', cidr: 'fd00:1:2:3::/64', prefixLength: { min: 96 } })], 'fd00:1:2:3::/80'),
    'default Accept',
  );
  t.equal(decide([f({ action: 'Reject', matchOperator: 'Equal', cidr: '5000::/64' })], '5000::/64'), 'six importV6[0] Reject');
  t.equal(decide([f({ action: 'Reject', matchOperator: 'NotEqual', cidr: '5000::/64' })], '5000::/64'), 'default Accept');
  // A v4 rule never sees a v6 route and vice versa.
  t.equal(decide([v4([{ action: 'Reject' }])], 'fd00::/64'), 'default Accept');
});

t.test('first match wins inside a filter, then the next filter, then the default', async (t) => {
  const a = v4(
    [
      { action: 'Accept', matchOperator: 'In', cidr: '10.1.0.0/16' },
      { action: 'Reject', matchOperator: 'In', cidr: '10.0.0.0/8' },
    ],
    'a',
  );
  const b = v4(
    [
      { action: 'Reject', matchOperator: 'In', cidr: '10.1.0.0/16' },
      { action: 'Reject', matchOperator: 'In', cidr: '172.16.0.0/12' },
    ],
    'b',
  );
  t.equal(decide([a, b], '10.1.5.0/24'), 'a importV4[0] Accept', 'Accept in a: b never runs');
  t.equal(decide([a, b], '10.2.0.0/24'), 'a importV4[1] Reject');
  t.equal(decide([a, b], '172.16.1.0/24'), 'b importV4[1] Reject', 'no rule of a matched: b decides');
  t.equal(decide([a, b], '192.168.0.0/24'), 'default Accept');
  t.equal(decide([b, a], '10.1.5.0/24'), 'b importV4[0] Reject', 'order of BGPPeer.filters matters');
  t.equal(decide([], '10.1.5.0/24'), 'default Accept');
});

t.test('source, peerType, communities, asPathPrefix, priority, interface', async (t) => {
  const one = (r: FilterRule) => [v4([r])];
  t.equal(
    decide(one({ action: 'Reject', source: 'RemotePeers' }), '10.0.0.0/24', ctx({ fromPeer: false }), 'export'),
    'default Accept',
    'local route is not from RemotePeers',
  );
  t.equal(
    decide(one({ action: 'Reject', source: 'RemotePeers' }), '10.0.0.0/24', ctx({ fromPeer: true }), 'export'),
    'f exportV4[0] Reject',
  );
  t.equal(decide(one({ action: 'Reject', peerType: 'iBGP' }), '10.0.0.0/24', ctx({ ebgpPeer: true })), 'default Accept');
  t.equal(decide(one({ action: 'Reject', peerType: 'eBGP' }), '10.0.0.0/24', ctx({ ebgpPeer: true })), 'f importV4[0] Reject');
  const tagged = ctx({
    attrs: attrs({ communities: [((65000 << 16) | 100) >>> 0], largeCommunities: [{ global: 65000, local1: 10, local2: 20 }] }),
  });
  t.equal(decide(one({ action: 'Reject', communities: { values: ['65000:100'] } }), '10.0.0.0/24', tagged), 'f importV4[0] Reject');
  t.equal(decide(one({ action: 'Reject', communities: { values: ['65000:101'] } }), '10.0.0.0/24', tagged), 'default Accept');
  t.equal(decide(one({ action: 'Reject', communities: { values: ['65000:10:20'] } }), '10.0.0.0/24', tagged), 'f importV4[0] Reject');
  t.equal(decide(one({ action: 'Reject', communities: { values: ['65000:10:21'] } }), '10.0.0.0/24', tagged), 'default Accept');
  t.equal(
    decide(one({ action: 'Reject', communities: { values: ['65000:100'] } }), '10.0.0.0/24'),
    'default Accept',
    'route without communities',
  );
  t.equal(decide(one({ action: 'Reject', asPathPrefix: [65001] }), '10.0.0.0/24'), 'f importV4[0] Reject');
  t.equal(decide(one({ action: 'Reject', asPathPrefix: [65001, 65002] }), '10.0.0.0/24'), 'f importV4[0] Reject');
  t.equal(decide(one({ action: 'Reject', asPathPrefix: [65002] }), '10.0.0.0/24'), 'default Accept', 'prefix, not contains');
  t.equal(decide(one({ action: 'Reject', asPathPrefix: [65001, 65002, 65003] }), '10.0.0.0/24'), 'default Accept', 'longer than the path');
  t.equal(
    decide(one({ action: 'Reject', priority: 512 }), '10.0.0.0/24', ctx({ attrs: attrs({ priority: 512 }) })),
    'f importV4[0] Reject',
  );
  t.equal(decide(one({ action: 'Reject', priority: 512 }), '10.0.0.0/24'), 'default Accept', 'no priority set');
  t.equal(decide(one({ action: 'Reject', interface: '*.calico' }), '10.0.0.0/24', ctx(), 'export', 'vxlan.calico'), 'f exportV4[0] Reject');
  t.equal(decide(one({ action: 'Reject', interface: '*.calico' }), '10.0.0.0/24', ctx(), 'export', 'eth0'), 'default Accept');
  t.equal(decide(one({ action: 'Reject', interface: 'eth?' }), '10.0.0.0/24', ctx(), 'export', 'eth1'), 'f exportV4[0] Reject');
  t.equal(
    decide(one({ action: 'Reject', interface: '*' }), '10.0.0.0/24', ctx(), 'export'),
    'default Accept',
    'a route without an interface never matches',
  );
  // every condition of a rule must hold
  t.equal(decide(one({ action: 'Reject', matchOperator: 'In', cidr: '10.0.0.0/8', peerType: 'iBGP' }), '10.0.0.0/24'), 'default Accept');
});

t.test('operations on Accept: addCommunity, prependASPath, setPriority in order', async (t) => {
  const chain = new FilterChain([
    v4([
      {
        action: 'Accept',
        matchOperator: 'In',
        cidr: '10.0.0.0/8',
        operations: [
          { addCommunity: { value: '65000:100' } },
          { addCommunity: { value: '65000:10:20' } },
          { prependASPath: { prefix: [64999, 64998] } },
          { setPriority: { value: 512 } },
          { addCommunity: { value: '65000:100' } },
        ],
      },
    ]),
  ]);
  const before = attrs();
  const r = chain.evaluate('import', routePrefixOf('10.1.0.0/16'), ctx({ attrs: before }));
  t.equal(r.decision.action, 'Accept');
  t.same(r.attrs?.communities, [((65000 << 16) | 100) >>> 0], 'added once');
  t.same(r.attrs?.largeCommunities, [{ global: 65000, local1: 10, local2: 20 }]);
  t.same(r.attrs?.asPath, [{ type: 2, asns: [64999, 64998, 65001, 65002] }], 'prefix in the order listed, in front');
  t.equal(r.attrs?.priority, 512);
  t.same(before.asPath, [{ type: 2, asns: [65001, 65002] }], 'input not mutated');
  t.equal(before.communities, undefined);
  const empty = chain.evaluate('import', routePrefixOf('10.1.0.0/16'), ctx({ attrs: attrs({ asPath: [] }) }));
  t.same(empty.attrs?.asPath, [{ type: 2, asns: [64999, 64998] }], 'empty path gets a sequence');
  const rej = new FilterChain([v4([{ action: 'Reject' }])]).evaluate('import', routePrefixOf('10.1.0.0/16'), ctx());
  t.equal(rej.attrs, null);
  const none = new FilterChain([v4([{ action: 'Accept' }])]).evaluate('import', routePrefixOf('10.1.0.0/16'), ctx({ attrs: before }));
  t.equal(none.attrs, before, 'no operations: the same object (keeps interning cheap)');
});

t.test("residual: per attribute set, then per prefix (the speaker's fast path agrees with evaluate)", async (t) => {
  const rules: FilterRule[] = [];
  for (let i = 0; i < 48; i++)
    rules.push({ action: i % 2 ? 'Accept' : 'Reject', matchOperator: 'In', cidr: `10.${i}.0.0/16`, prefixLength: { min: 24, max: 26 } });
  rules.push({ action: 'Reject', communities: { values: ['65000:1'] } }, { action: 'Reject', matchOperator: 'NotIn', cidr: '10.0.0.0/8' });
  const chain = new FilterChain([v4(rules)]);
  const c = ctx();
  const res = chain.residual('import', 1, c);
  t.equal(res.rules.length, 49, 'the community rule is dropped for a set without that community');
  let checked = 0;
  for (let i = 0; i < 2000; i++) {
    const addr = ((10 << 24) | ((i * 7919) & 0xffffff)) >>> 0;
    const len = 20 + (i % 13);
    const net = len === 0 ? 0 : (addr & ((0xffffffff << (32 - len)) >>> 0)) >>> 0;
    const cidr = `${net >>> 24}.${(net >>> 16) & 255}.${(net >>> 8) & 255}.${net & 255}/${len}`;
    const fast = res.match4(net, len);
    const slow = chain.evaluate('import', routePrefixOf(cidr), c).decision;
    t.equal(fast < 0 ? 'default' : `${res.rules[fast]!.index}`, slow.rule === undefined ? 'default' : `${slow.rule}`, cidr);
    checked++;
  }
  t.equal(checked, 2000);
  const unconditional = new FilterChain([v4([{ action: 'Reject' }, { action: 'Accept', matchOperator: 'In', cidr: '10.0.0.0/8' }])]);
  t.equal(unconditional.residual('import', 1, c).rules.length, 1, 'rules after an unconditional one are unreachable');
});

t.test('match4 by first octet agrees with evaluate for every operator, short cidrs and interface rules', async (t) => {
  let seed = 7;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const ops = ['In', 'Equal', 'NotIn', 'NotEqual'] as const;
  const octets = [10, 11, 172, 192];
  const ip4 = (n: number) => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
  let indexed = 0;
  for (let round = 0; round < 20; round++) {
    const rules: FilterRule[] = [];
    const n = 4 + rnd(40);
    for (let i = 0; i < n; i++) {
      const len = [0, 4, 8, 12, 16, 20, 24][rnd(7)]!;
      const addr = ((octets[rnd(4)]! << 24) | (rnd(256) << 16) | (rnd(256) << 8)) >>> 0;
      const net = len === 0 ? 0 : (addr & ((0xffffffff << (32 - len)) >>> 0)) >>> 0;
      const rule: FilterRule = { action: i % 3 ? 'Reject' : 'Accept', matchOperator: ops[rnd(4)]!, cidr: `${ip4(net)}/${len}` };
      if (rnd(3) === 0) rule.prefixLength = { min: len + rnd(8), max: 24 + rnd(9) };
      if (rnd(10) === 0) rule.interface = 'eth*';
      rules.push(rule);
    }
    const chain = new FilterChain([v4(rules)]);
    const res = chain.residual('import', 1, ctx());
    if (res.rules.length >= INDEX_MIN_RULES) indexed++;
    for (let i = 0; i < 300; i++) {
      const len = 16 + rnd(17);
      const addr = ((octets[rnd(4)]! << 24) | (rnd(256) << 16) | (rnd(256) << 8) | rnd(256)) >>> 0;
      const net = (addr & ((0xffffffff << (32 - len)) >>> 0)) >>> 0;
      const fast = res.match4(net, len);
      const slow = chain.evaluate('import', routePrefixOf(`${ip4(net)}/${len}`), ctx()).decision;
      if ((fast < 0 ? undefined : res.rules[fast]!.index) !== slow.rule) {
        t.fail(`round ${round}: ${ip4(net)}/${len} fast ${fast} slow ${slow.rule}`);
        return;
      }
    }
  }
  t.ok(indexed >= 10, `the octet index was used in ${indexed} of 20 rule sets`);
});

t.test('attribute sets that leave the same rules share one residual (its octet index is built once)', async (t) => {
  const rules: FilterRule[] = [];
  for (let i = 0; i < 20; i++) rules.push({ action: 'Reject', matchOperator: 'In', cidr: `172.16.${i}.0/24` });
  rules.push({ action: 'Reject', communities: { values: ['65000:1'] } });
  const chain = new FilterChain([v4(rules)]);
  const a = chain.residual('import', 1, ctx({ attrs: attrs({ communities: [((65000 << 16) | 7) >>> 0] }) }));
  const b = chain.residual('import', 1, ctx({ attrs: attrs({ asPath: [{ type: 2, asns: [64512, 64513] }] }) }));
  const c = chain.residual('import', 1, ctx({ attrs: attrs({ communities: [((65000 << 16) | 1) >>> 0] }) }));
  t.equal(a, b, 'the same 20 prefix rules: one object');
  t.not(a, c, 'the community rule kept for the set that carries it: another');
  t.equal(c.rules.length, 21);
  t.equal(a.match4(((172 << 24) | (16 << 16) | (3 << 8)) >>> 0, 24), 3);
});

t.test('communities: parse and format, bad values refused at compile', async (t) => {
  t.same(parseCommunity('65000:100'), { kind: 'standard', value: ((65000 << 16) | 100) >>> 0 });
  t.same(parseCommunity('4200000000:1:2'), { kind: 'large', value: { global: 4200000000, local1: 1, local2: 2 } });
  t.equal(parseCommunity('65536:1'), undefined, 'standard halves are 16 bits');
  t.equal(parseCommunity('4294967296:1:1'), undefined);
  t.equal(parseCommunity('a:b'), undefined);
  t.equal(formatCommunity(parseCommunity('65535:65535')!), '65535:65535');
  t.equal(formatCommunity(parseCommunity('1:2:3')!), '1:2:3');
  t.throws(() => new FilterChain([v4([{ action: 'Accept', operations: [{ addCommunity: { value: 'x' } }] }], 'bad')]), FilterCompileError);
  t.throws(
    () => new FilterChain([{ name: 'bad', spec: { importV4: [{ action: 'Reject', cidr: 'fd00::/8', matchOperator: 'In' }] } }]),
    /not an IPv4 CIDR/,
  );
});
