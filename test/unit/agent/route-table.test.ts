// The agent's route table: one record per learned prefix, deltas to the dataplane only for what
// changed, lookup/explain for `route explain` and /status.
import t from 'tap';
import { RouteTable, type RouteSink } from '../../../src/agent/route-table.js';
import { compileRouteContext, type RouteInput } from '../../../src/agent/routes.js';
import type { Route } from '../../../src/dataplane/routes.js';

class Sink implements RouteSink {
  routes = new Map<string, Route>();
  sets = 0;
  dels = 0;
  setRoute(r: Route) {
    this.sets++;
    this.routes.set(r.dst, r);
  }
  deleteRoute(dst: string) {
    this.dels++;
    this.routes.delete(dst);
  }
}

const base: Pick<RouteInput, 'pools' | 'nodeAddress4' | 'uplink' | 'kernelHasIpip' | 'ownBlocks'> = {
  nodeAddress4: '10.0.0.1/24',
  uplink: 'eth0',
  kernelHasIpip: true,
  pools: [{ cidr: '192.168.0.0/16', ipipMode: 'Never', vxlanMode: 'Never' }],
  ownBlocks: [{ cidr: '192.168.1.0/26', state: 'confirmed' }],
};

t.test('records, deltas, reasons, lookup and explain', async (t) => {
  const sink = new Sink();
  const tab = new RouteTable(compileRouteContext(base), sink);
  const nhB = Object.freeze(['10.0.0.2']);
  const nhFar = Object.freeze(['10.9.0.1']);
  tab.update('192.168.2.0/26', nhB, '10.0.0.2');
  tab.update('172.16.0.0/24', nhFar, '10.0.0.2');
  tab.update('192.168.1.0/26', nhB, '10.0.0.2'); // our own block: no route
  tab.update('192.168.3.0/26', Object.freeze(['10.0.0.1']), '10.0.0.2'); // next hop is us
  t.same(
    [...sink.routes.values()],
    [
      { dst: '192.168.2.0/26', gateway: '10.0.0.2', dev: 'eth0' },
      { dst: '172.16.0.0/24', gateway: '10.9.0.1' },
    ],
  );
  t.equal(tab.size, 4);
  t.equal(tab.routedCount, 2);
  t.same(tab.counts().byReason, { 'no-usable-next-hop': 1, 'own-block': 1 });

  const sets = sink.sets;
  tab.update('192.168.2.0/26', nhB, '10.0.0.2');
  t.equal(sink.sets, sets, 'the same best route again: no delta');

  t.match(tab.lookup('192.168.2.0/26'), {
    prefix: '192.168.2.0/26',
    nextHops: ['10.0.0.2'],
    source: '10.0.0.2',
    pool: '192.168.0.0/16',
    route: { gateway: '10.0.0.2', dev: 'eth0' },
  });
  t.match(tab.lookup('192.168.1.0/26'), { reason: 'own-block', why: /own blocks/ });
  t.match(tab.explain('192.168.2.7'), { prefix: '192.168.2.0/26' }, 'an address: the longest learned prefix containing it');
  t.equal(tab.explain('10.200.0.1'), undefined);

  tab.remove('192.168.2.0/26');
  t.notOk(sink.routes.has('192.168.2.0/26'), 'withdrawn: deleted');
  t.equal(tab.routedCount, 1);
});

t.test('a context change rewrites only the prefixes whose route changes', async (t) => {
  const sink = new Sink();
  const tab = new RouteTable(compileRouteContext(base), sink);
  const nhB = Object.freeze(['10.0.0.2']);
  const nhFar = Object.freeze(['10.9.0.1']);
  for (let i = 0; i < 100; i++) tab.update(`192.168.${10 + i}.0/26`, nhB, '10.0.0.2');
  for (let i = 0; i < 50; i++) tab.update(`172.16.${i}.0/24`, nhFar, '10.0.0.2');
  t.equal(sink.routes.size, 150);

  // the pool turns to IPIP CrossSubnet: only its prefixes from a next hop in another subnet change (none here)
  let sets = sink.sets;
  tab.setContext(compileRouteContext({ ...base, pools: [{ cidr: '192.168.0.0/16', ipipMode: 'CrossSubnet', vxlanMode: 'Never' }] }));
  t.equal(sink.sets, sets, 'same subnet next hop: no route changes');

  // IPIP Always: the 100 pool prefixes go through tunl0; the 50 outside every pool are untouched
  sets = sink.sets;
  tab.setContext(compileRouteContext({ ...base, pools: [{ cidr: '192.168.0.0/16', ipipMode: 'Always', vxlanMode: 'Never' }] }));
  t.equal(sink.sets - sets, 100);
  t.same(sink.routes.get('192.168.10.0/26'), { dst: '192.168.10.0/26', gateway: '10.0.0.2', dev: 'tunl0', onlink: true });
  t.same(sink.routes.get('172.16.0.0/24'), { dst: '172.16.0.0/24', gateway: '10.9.0.1' });

  // a new VXLAN pool over 172.16.0.0/16: those prefixes lose their BGP route, the others stay
  sets = sink.sets;
  const dels = sink.dels;
  tab.setContext(
    compileRouteContext({
      ...base,
      pools: [
        { cidr: '192.168.0.0/16', ipipMode: 'Always', vxlanMode: 'Never' },
        { cidr: '172.16.0.0/16', ipipMode: 'Never', vxlanMode: 'Always' },
      ],
    }),
  );
  t.equal(sink.dels - dels, 50);
  t.equal(sink.sets, sets);
  t.match(tab.lookup('172.16.3.0/24'), { reason: 'vxlan-pool', pool: '172.16.0.0/16' });

  // no ipip in the kernel: the IPIP pool's routes go (never half-programmed)
  tab.setContext(
    compileRouteContext({ ...base, kernelHasIpip: false, pools: [{ cidr: '192.168.0.0/16', ipipMode: 'Always', vxlanMode: 'Never' }] }),
  );
  t.equal(sink.routes.size, 50, 'only the 172.16 prefixes (their VXLAN pool is gone again)');
  t.match(tab.lookup('192.168.10.0/26'), { reason: 'no-ipip' });

  // own block confirmed over a learned prefix: that one prefix loses its learned route
  tab.setContext(compileRouteContext({ ...base, ownBlocks: [{ cidr: '172.16.7.0/24', state: 'confirmed' }] }));
  t.notOk(sink.routes.has('172.16.7.0/24'));
  t.equal(sink.routes.size, 149);
  tab.clear();
  t.equal(sink.routes.size, 0);
});

t.test('metric (BGPFilter setPriority) goes into the kernel route; the decision reason is read from the RIB', async (t) => {
  const sink = new Sink();
  const asked: string[] = [];
  const tab = new RouteTable(compileRouteContext(base), sink, (p) => {
    asked.push(p);
    return p === '192.168.2.0/26' ? 'local-pref' : undefined;
  });
  const nh = Object.freeze(['10.0.0.2']);
  tab.update('192.168.2.0/26', nh, '10.0.0.2', 300);
  tab.update('192.168.3.0/26', nh, '10.0.0.2');
  t.same(sink.routes.get('192.168.2.0/26'), { dst: '192.168.2.0/26', gateway: '10.0.0.2', dev: 'eth0', metric: 300 });
  t.same(sink.routes.get('192.168.3.0/26'), { dst: '192.168.3.0/26', gateway: '10.0.0.2', dev: 'eth0' }, 'no metric: none set');
  t.same(asked, [], 'no decision asked while routes flow');
  t.match(tab.lookup('192.168.2.0/26'), { metric: 300, decision: 'local-pref' });
  t.notOk('metric' in tab.lookup('192.168.3.0/26')!, 'no metric field without one');

  const sets = sink.sets;
  tab.update('192.168.2.0/26', nh, '10.0.0.2', 300);
  t.equal(sink.sets, sets, 'same metric again: no delta');
  tab.update('192.168.2.0/26', nh, '10.0.0.2', 50);
  t.equal(sink.routes.get('192.168.2.0/26')!.metric, 50, 'a new metric: a new kernel route');
  tab.update('192.168.2.0/26', nh, '10.0.0.2');
  t.same(sink.routes.get('192.168.2.0/26'), { dst: '192.168.2.0/26', gateway: '10.0.0.2', dev: 'eth0' }, 'metric dropped');
  // a pool change keeps the metric
  tab.update('192.168.4.0/26', nh, '10.0.0.2', 7);
  tab.setContext(
    compileRouteContext({ ...base, pools: [{ cidr: '192.168.4.0/24', ipipMode: 'Always', vxlanMode: 'Never' }, ...base.pools] }),
  );
  t.same(sink.routes.get('192.168.4.0/26'), { dst: '192.168.4.0/26', gateway: '10.0.0.2', dev: 'tunl0', onlink: true, metric: 7 });
});

t.test(
  '300 groups (more than a one-byte group slot names) and a pool change that re-homes them: every prefix keeps its route',
  async (t) => {
    const sink = new Sink();
    const tab = new RouteTable(compileRouteContext(base), sink);
    const hop = (i: number): string => `10.0.${1 + (i >> 8)}.${i & 255}`;
    // 300 next hops × 4 prefixes: 300 groups; next-hop lists equal in content but not one array count as one
    for (let i = 0; i < 1200; i++) tab.update(`172.${16 + (i >> 8)}.${i & 255}.0/24`, [hop(i % 300)], hop(i % 300));
    const gw = (i: number): string | undefined => sink.routes.get(`172.${16 + (i >> 8)}.${i & 255}.0/24`)?.gateway;
    let wrong = 0;
    for (let i = 0; i < 1200; i++)
      if (gw(i) !== hop(i % 300) || tab.lookup(`172.${16 + (i >> 8)}.${i & 255}.0/24`)?.source !== hop(i % 300)) wrong++;
    t.equal(wrong, 0, 'each prefix routed via its own next hop');
    const sets = sink.sets;
    for (let i = 0; i < 1200; i++) tab.update(`172.${16 + (i >> 8)}.${i & 255}.0/24`, [hop(i % 300)], hop(i % 300));
    t.equal(sink.sets, sets, 'the same next hops again in new arrays: no delta');
    // a pool over the prefixes with IPIP: every group re-homed (their slots freed, new ones taken)
    tab.setContext(
      compileRouteContext({ ...base, pools: [...base.pools, { cidr: '172.16.0.0/12', ipipMode: 'Always', vxlanMode: 'Never' }] }),
    );
    wrong = 0;
    for (let i = 0; i < 1200; i++) {
      const r = sink.routes.get(`172.${16 + (i >> 8)}.${i & 255}.0/24`);
      if (r?.gateway !== hop(i % 300) || r.dev !== 'tunl0' || tab.lookup(`172.${16 + (i >> 8)}.${i & 255}.0/24`)?.pool !== '172.16.0.0/12')
        wrong++;
    }
    t.equal(wrong, 0, 'each prefix via tunl0 now, still via its own next hop');
    for (let i = 0; i < 1200; i++) tab.remove(`172.${16 + (i >> 8)}.${i & 255}.0/24`);
    t.equal(sink.routes.size, 0);
    t.equal(tab.size, 0);
  },
);
