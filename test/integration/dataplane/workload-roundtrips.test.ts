// Netlink round trips of one pod's wiring, counted on the real sockets (NlSocket.request / dump and the
// addon's exchanges wrapped, the kernel still answers): a fresh IPv4 ADD is three sendmsg calls, all on the
// addon's netlink threads (the pair + the host end read back; the pod side's requests; the host side's),
// with no address dump; a retried ADD still lists the pod's addresses (it may have to drop an old one),
// and both leave the pod wired.
import t from 'tap';
import { wireWorkload, checkWorkload, workloadIfName } from '../../../src/dataplane/index.js';
import { NlSocket } from '../../../src/dataplane/netlink/socket.js';
import { native } from '../../../src/native/index.js';
import { ipIn, isRoot, makeNetns } from '../../helpers/dataplane-netns.js';

const skip = isRoot() ? false : 'needs root (network namespaces)';

function countRequests(t: { teardown(fn: () => unknown): void }) {
  const n = { request: 0, dump: 0, exchanges: 0, ops: [] as string[] };
  const addon = native();
  const realExchange = addon.nlExchange;
  addon.nlExchange = (...a: Parameters<typeof realExchange>) => {
    n.exchanges++;
    return realExchange(...a);
  };
  const proto = NlSocket.prototype as unknown as Record<'request' | 'dump', (...a: unknown[]) => unknown>;
  const realRequest = proto.request;
  const realDump = proto.dump;
  proto.request = function (this: unknown, ...a: unknown[]) {
    n.request++;
    n.ops.push(String(a[3]));
    return realRequest.apply(this, a);
  };
  proto.dump = function (this: unknown, ...a: unknown[]) {
    n.dump++;
    n.ops.push(String(a[2]));
    return realDump.apply(this, a);
  };
  t.teardown(() => {
    proto.request = realRequest;
    proto.dump = realDump;
    addon.nlExchange = realExchange;
  });
  return n;
}

t.test('a fresh ADD: three sendmsg calls off the event loop, no address dump', { skip }, async (t) => {
  const host = makeNetns(t, 'rth');
  const pod = makeNetns(t, 'rtp');
  const w = { hostIfName: workloadIfName('rt', 'pod'), containerNetnsPath: pod.path, hostNetnsPath: host.path, ipv4: '10.68.0.2' };
  const n = countRequests(t);
  await wireWorkload(w);
  t.equal(n.dump, 0, `no dump on a fresh pair (${n.ops.join(', ')})`);
  // [create (host end up), get host end] · [pod end up, address, 2 routes, neighbour] · [host neighbour, route]
  t.equal(n.exchanges, 3, 'three exchanges, each one sendmsg on the netlink threads');
  t.equal(n.request, 0, `no request one at a time (${n.ops.join(', ')})`);
  t.same(await checkWorkload(w), [], 'the pod is wired');
  // the host side's IPv4 settings went in by netlink (IFLA_INET_CONF, the ARP table's parameters)
  const sysctl = (key: string): string => ipIn(undefined, 'netns', 'exec', host.name, 'sysctl', '-n', key).trim();
  for (const k of ['conf/IF/proxy_arp', 'conf/IF/route_localnet', 'conf/IF/forwarding']) {
    t.equal(sysctl(`net/ipv4/${k.replace('IF', w.hostIfName)}`), '1', k);
  }
  t.equal(sysctl(`net/ipv4/neigh/${w.hostIfName}/proxy_delay`), '0', 'neigh/IF/proxy_delay');
  const again = countRequests(t);
  await wireWorkload(w);
  t.equal(again.dump, 1, 'a retried ADD lists the pod addresses');
  t.same(await checkWorkload(w), [], 'and converges');
});
