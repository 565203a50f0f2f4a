// Netlink handles opened `offLoop`: the sendmsg/recvmsg of every request happen on the addon's netlink
// threads (nl_worker.cc), counted at the addon, against a real kernel checked with iproute2 — requests,
// dumps, the kernel's errors (errno and reason), pipelines (several requests in one sendmsg, a failed one
// named and the rest still run), a dump bigger than one chunk of replies, a socket closed with an
// exchange in flight.
import t from 'tap';
import fs from 'node:fs';
import { Netlink, NetlinkError } from '../../../src/dataplane/index.js';
import { requests } from '../../../src/dataplane/netlink/netlink.js';
import { lastSeqOf } from '../../../src/dataplane/netlink/offloop.js';
import { NlSocket } from '../../../src/dataplane/netlink/socket.js';
import { NlWriter } from '../../../src/dataplane/netlink/wire.js';
import { native } from '../../../src/native/index.js';
import { isRoot, ipIn, makeNetns, waitUntil } from '../../helpers/dataplane-netns.js';

const skip = isRoot() ? false : 'needs root (network namespaces)';

/** Count the exchanges the addon's threads make (each is one sendmsg). */
function countExchanges(t: { teardown(fn: () => unknown): void }): { n: number } {
  const count = { n: 0 };
  const n = native();
  const real = n.nlExchange;
  n.nlExchange = (...a: Parameters<typeof real>) => {
    count.n++;
    return real(...a);
  };
  t.teardown(() => {
    n.nlExchange = real;
  });
  return count;
}

t.test('the last sequence number of a buffer of messages', async (t) => {
  const w = new NlWriter(256);
  for (const seq of [7, 8, 0xfffffffe]) {
    const s = w.beginMessage(16, 1, seq, 0);
    w.attrU32(1, seq);
    w.endMessage(s);
  }
  t.equal(lastSeqOf(w.finish()), 0xfffffffe);
  t.equal(lastSeqOf(Buffer.alloc(0)), 0, 'nothing in it');
});

t.test('an off-loop handle', { skip }, async (t) => {
  const a = makeNetns(t, 'oa');
  const b = makeNetns(t, 'ob');
  const nl = new Netlink({ netnsPath: a.path, offLoop: true });
  t.teardown(() => nl.close());

  t.test('requests and dumps go through the netlink threads', async (t) => {
    const count = countExchanges(t);
    await nl.createVeth({ name: 'v0', mac: 'ee:ee:ee:ee:ee:ee', peer: { name: 'p0', netnsPath: b.path } });
    const v0 = await nl.mustGetLink('v0');
    await nl.setLinkUp(v0.index);
    await nl.addAddress(v0.index, '192.0.2.1', 24);
    t.match(ipIn(a.name, 'addr', 'show', 'v0'), /inet 192\.0\.2\.1\/24/, 'the kernel has the address');
    t.ok(
      (await nl.listAddresses(4)).some((x) => x.address === '192.0.2.1'),
      'and the dump lists it',
    );
    t.equal(count.n, 5, 'one exchange per request and per dump');
    t.equal(await nl.getLink('nope'), undefined, 'a missing link is undefined, not an error');
  });

  t.test("the kernel's errors keep their errno and reason", async (t) => {
    const err = await nl.addAddress(9999, '192.0.2.9', 32).catch((e: unknown) => e);
    t.ok(err instanceof NetlinkError, 'typed error');
    t.equal((err as NetlinkError).code, 'ENODEV');
    t.match((err as NetlinkError).message, /add address 192\.0\.2\.9\/32 on 9999: ENODEV/, 'names the step');
    const dup = await nl.createVeth({ name: 'v0', peer: { name: 'p1', netnsPath: b.path } }).catch((e: unknown) => e);
    t.equal((dup as NetlinkError).code, 'EEXIST');
  });

  t.test('a pipeline: one sendmsg, each answer in order, a failure does not stop the rest', async (t) => {
    const v0 = await nl.mustGetLink('v0');
    const count = countExchanges(t);
    const res = await nl.pipeline([
      requests.replaceRoute({ dst: '198.51.100.0/24', oif: v0.index, scope: 253 }),
      requests.addAddress(9999, '192.0.2.7', 32),
      requests.replaceRoute({ dst: '203.0.113.0/24', gateway: '192.0.2.2', oif: v0.index }),
      requests.getLink('v0'),
    ]);
    t.equal(count.n, 1, 'one exchange');
    t.notOk(res[0] instanceof NetlinkError, 'the first route went in');
    t.equal((res[1] as NetlinkError).code, 'ENODEV', 'the address on a missing link failed');
    t.notOk(res[2] instanceof NetlinkError, 'the route after it still went in');
    t.ok(Array.isArray(res[3]) && (res[3] as unknown[]).length === 1, 'the link read came back');
    t.same(await nl.pipeline([]), [], 'an empty pipeline answers at once (nothing is sent)');
    const routes = ipIn(a.name, 'route', 'show');
    t.match(routes, /198\.51\.100\.0\/24 dev v0/);
    t.match(routes, /203\.0\.113\.0\/24 via 192\.0\.2\.2 dev v0/);
  });

  t.test('a dump bigger than one chunk of replies arrives whole', async (t) => {
    const v0 = await nl.mustGetLink('v0');
    const n = 12_000; // ~1.5 MB of RTM_NEWROUTE replies: more than one chunk (1 MiB)
    const failed = await nl.routeBatchTo(
      'replace',
      n,
      () => ({ oif: v0.index, scope: 253 }),
      (i) => `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`,
    );
    t.equal(failed.length, 0, 'the batch went in');
    const routes = await nl.listRoutes(4);
    t.equal(routes.filter((r) => r.oif === v0.index && r.dst.startsWith('10.')).length, n, `all ${n} dumped`);
  });

  t.test('closing with an exchange in flight: rejected at once, the socket closed after it', async (t) => {
    const target = (f: string): string => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${f}`);
      } catch {
        return ''; // the directory's own fd, gone once read
      }
    };
    const sockets = (): number => fs.readdirSync('/proc/self/fd').filter((f) => target(f).startsWith('socket:')).length;
    const before = sockets();
    const nc = new Netlink({ netnsPath: a.path, offLoop: true });
    t.equal(sockets(), before + 1, 'one socket opened');
    const pending = nc.getLink('v0');
    nc.close();
    t.equal(((await pending.catch((e: unknown) => e)) as NetlinkError).code, 'EBADF', 'the request is refused as on the loop');
    t.ok(await waitUntil(() => sockets() === before, 10_000), 'the addon closed the socket');
    t.equal(((await nc.getLink('v0').catch((e: unknown) => e)) as NetlinkError).code, 'EBADF', 'so is a request after close');
  });
});

t.test('an event socket cannot be off the loop', async (t) => {
  t.throws(() => new NlSocket({ offLoop: true, groups: [1] }), TypeError);
});
