// Batched veth deletion for CNI DEL, in real network namespaces: DELs retire their veths (routes to the
// pods gone at once, links in the retired group), one RTM_DELLINK by group then deletes all of them and
// their pod ends; a re-ADD of a retired pod gets a fresh pair that the batch does not touch.
import t from 'tap';
import { wireWorkload, unwireWorkload, checkWorkload, workloadIfName } from '../../../src/dataplane/index.js';
import { VethReaper } from '../../../src/dataplane/workload-reaper.js';
import { WORKLOAD_RETIRED_GROUP } from '../../../src/dataplane/ownership.js';
import { isRoot, ipIn, makeNetns } from '../../helpers/dataplane-netns.js';
import { waitFor } from '../../helpers/netns.js';
import { native } from '../../../src/native/index.js';

const skip = isRoot() ? false : 'needs root (network namespaces)';
const N = 12;

t.test('DEL of 12 pods: retired at once, deleted by one group deletion', { skip }, async (t) => {
  const host = makeNetns(t, 'rh');
  const pods = Array.from({ length: N }, (_, i) => makeNetns(t, `rp${i}`));
  const w = pods.map((p, i) => ({
    hostIfName: workloadIfName('reap', `pod-${i}`),
    containerNetnsPath: p.path,
    hostNetnsPath: host.path,
    ipv4: `10.66.0.${i + 2}`,
  }));
  for (const x of w) await wireWorkload(x);
  const reaper = new VethReaper({ netnsPath: host.path, delayMs: 60_000 });
  t.teardown(() => reaper.close());
  const group = String(WORKLOAD_RETIRED_GROUP);
  const inGroup = () => ipIn(host.name, '-o', 'link', 'show', 'group', group).split('\n').filter(Boolean).length;

  const addon = native();
  const realExchange = addon.nlExchange;
  let exchanges = 0;
  addon.nlExchange = (...a: Parameters<typeof realExchange>) => {
    exchanges++;
    return realExchange(...a);
  };
  t.teardown(() => {
    addon.nlExchange = realExchange;
  });
  for (const x of w) t.equal(await unwireWorkload(x, reaper), true, `DEL ${x.hostIfName}: retired`);
  addon.nlExchange = realExchange;
  // per DEL: the host side read, then [into the group, the route through it deleted] in one sendmsg
  t.equal(exchanges, 2 * N, 'two sendmsg per retire');
  t.equal(inGroup(), N, `${N} links wait in the retired group`);
  t.notMatch(ipIn(host.name, 'route', 'show'), /10\.66\.0\./, 'no route to any deleted pod is left');
  t.equal(reaper.reaps, 0, 'nothing deleted yet (batch deadline not reached)');
  t.ok(
    (await checkWorkload(w[3]!)).some((p) => /retired/.test(p)),
    'CHECK reports a retired pod',
  );
  t.equal(await unwireWorkload(w[5]!, reaper), true, 'a repeated DEL is fine');

  // A re-ADD of pod 0 while its old pair waits: a new pair, not the retired one.
  const before = ipIn(host.name, '-o', 'link', 'show', w[0]!.hostIfName).split(':')[0];
  await wireWorkload(w[0]!);
  const after = ipIn(host.name, '-o', 'link', 'show', w[0]!.hostIfName).split(':')[0];
  t.not(after, before, 're-ADD made a new interface');
  t.same(await checkWorkload(w[0]!), [], 'the re-ADDed pod is wired');

  await reaper.drain();
  t.equal(reaper.reaps, 1, 'one group deletion for all of them');
  t.equal(inGroup(), 0, 'the retired group is empty');
  const left = ipIn(host.name, '-o', 'link', 'show', 'type', 'veth');
  for (const x of w.slice(1)) t.notOk(left.includes(x.hostIfName), `${x.hostIfName} is gone`);
  for (const p of pods.slice(1)) t.notOk(ipIn(p.name, 'link', 'show').includes('eth0'), `no eth0 left in ${p.name}`);
  t.same(await checkWorkload(w[0]!), [], 'the re-ADDed pod survived the batch');
  t.match(ipIn(host.name, 'route', 'show', '10.66.0.2'), /10\.66\.0\.2 dev/, 'and keeps its route');
});

t.test('the batch deadline deletes without a drain; a later batch starts after it', { skip }, async (t) => {
  const host = makeNetns(t, 'rq');
  const pods = Array.from({ length: 3 }, (_, i) => makeNetns(t, `rq${i}`));
  const w = pods.map((p, i) => ({
    hostIfName: workloadIfName('reapq', `p${i}`),
    containerNetnsPath: p.path,
    hostNetnsPath: host.path,
    ipv4: `10.67.0.${i + 2}`,
  }));
  for (const x of w) await wireWorkload(x);
  const reaper = new VethReaper({ netnsPath: host.path, delayMs: 50 });
  t.teardown(() => reaper.close());
  await unwireWorkload(w[0]!, reaper);
  await unwireWorkload(w[1]!, reaper);
  const gone = (names: string[]) => !names.some((n) => ipIn(host.name, '-o', 'link', 'show', 'type', 'veth').includes(n));
  await waitFor(() => reaper.reaps >= 1 && gone([w[0]!.hostIfName, w[1]!.hostIfName]), 20_000, 25);
  t.ok(gone([w[0]!.hostIfName, w[1]!.hostIfName]), 'deleted after the deadline');
  t.equal(reaper.reaps, 1, 'in one group deletion');
  await unwireWorkload(w[2]!, reaper);
  await waitFor(() => reaper.reaps >= 2 && gone([w[2]!.hostIfName]), 20_000, 25);
  t.ok(gone([w[2]!.hostIfName]), 'the next one too');
  t.equal(reaper.reaps, 2, 'by the next deletion');
});

t.test('unroute after the release: only the routes through the retired link go', { skip }, async (t) => {
  const host = makeNetns(t, 'ru');
  const pods = Array.from({ length: 2 }, (_, i) => makeNetns(t, `ru${i}`));
  const old = {
    hostIfName: workloadIfName('reapu', 'old'),
    containerNetnsPath: pods[0]!.path,
    hostNetnsPath: host.path,
    ipv4: '10.69.0.2',
  };
  const reaper = new VethReaper({ netnsPath: host.path, delayMs: 60_000 });
  t.teardown(() => reaper.close());
  await wireWorkload(old);
  t.equal(await unwireWorkload({ hostIfName: old.hostIfName, hostNetnsPath: host.path }, reaper), true, 'retired without addresses');
  t.match(ipIn(host.name, 'route', 'show', '10.69.0.2'), new RegExp(`dev ${old.hostIfName}`), 'its route is still there');
  await reaper.unroute(old.hostIfName, ['10.69.0.2/32']);
  t.equal(ipIn(host.name, 'route', 'show', '10.69.0.2').trim(), '', 'gone after unroute');
  // The address reused by a new pod before the old DEL's unroute: the new route stays.
  const old2 = { ...old, containerNetnsPath: pods[1]!.path, hostIfName: workloadIfName('reapu', 'old2') };
  await wireWorkload(old2);
  await unwireWorkload({ hostIfName: old2.hostIfName, hostNetnsPath: host.path }, reaper);
  const fresh = { ...old, hostIfName: workloadIfName('reapu', 'new') };
  await wireWorkload(fresh);
  await reaper.unroute(old2.hostIfName, ['10.69.0.2/32']);
  t.match(ipIn(host.name, 'route', 'show', '10.69.0.2'), new RegExp(`dev ${fresh.hostIfName}`), "the new pod's route is untouched");
  await reaper.drain();
  t.same(await checkWorkload(fresh), [], 'the new pod is wired after the batch');
});
