// Netlink round trips of one pod's wiring, counted on the real sockets (NlSocket.request / dump wrapped,
// the kernel still answers): a fresh IPv4 ADD makes no address dump and no final link reads, a retried
// ADD still lists the pod's addresses (it may have to drop an old one), and both leave the pod wired.
import t from 'tap';
import { wireWorkload, checkWorkload, workloadIfName } from '../../../src/dataplane/index.js';
import { NlSocket } from '../../../src/dataplane/netlink/socket.js';
import { isRoot, makeNetns } from '../../helpers/dataplane-netns.js';

const skip = isRoot() ? false : 'needs root (network namespaces)';

function countRequests(t: { teardown(fn: () => unknown): void }) {
  const n = { request: 0, dump: 0, ops: [] as string[] };
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
  });
  return n;
}

t.test('a fresh ADD: no address dump, no final link reads', { skip }, async (t) => {
  const host = makeNetns(t, 'rth');
  const pod = makeNetns(t, 'rtp');
  const w = { hostIfName: workloadIfName('rt', 'pod'), containerNetnsPath: pod.path, hostNetnsPath: host.path, ipv4: '10.68.0.2' };
  const n = countRequests(t);
  await wireWorkload(w);
  t.equal(n.dump, 0, `no dump on a fresh pair (${n.ops.join(', ')})`);
  // get ×2, create, get ×2, up ×2, address, 2 pod routes, pod neighbour, host neighbour, host route
  t.ok(n.request <= 13, `${n.request} requests`);
  t.same(await checkWorkload(w), [], 'the pod is wired');
  const again = countRequests(t);
  await wireWorkload(w);
  t.equal(again.dump, 1, 'a retried ADD lists the pod addresses');
  t.same(await checkWorkload(w), [], 'and converges');
});
