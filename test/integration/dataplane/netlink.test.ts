// The typed netlink layer against a real kernel, checked with iproute2: links (veth with the peer
// created in another netns, up/MTU/MAC/rename, move to a netns), addresses, routes (multipath, v6,
// tables), neighbours, events, typed errors, listInterfaces; the native netns helpers.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { Netlink, NetlinkError, listInterfaces, type NetlinkEvent, type RouteDataplane } from '../../../src/dataplane/index.js';
import { native } from '../../../src/native/index.js';
import { isRoot, ipIn, makeNetns, runId, waitUntil } from '../../helpers/dataplane-netns.js';

const skip = isRoot() ? false : 'needs root (network namespaces)';
// compile-time: a Netlink handle is what the RouteReconciler takes
const asDataplane = (nl: Netlink): RouteDataplane => nl;

t.test('netlink layer', { skip }, async (t) => {
  const a = makeNetns(t, 'la');
  const b = makeNetns(t, 'lb');
  const nl = new Netlink({ netnsPath: a.path });
  const nb = new Netlink({ netnsPath: b.path });
  t.teardown(() => {
    nl.close();
    nb.close();
  });
  void asDataplane(nl);

  t.test('veth with the peer created directly in another netns', async (t) => {
    await nl.createVeth({ name: 'v0', mtu: 1400, mac: 'ee:ee:ee:ee:ee:ee', peer: { name: 'p0', mtu: 1400, netnsPath: b.path } });
    t.match(ipIn(a.name, 'link', 'show', 'v0'), /v0@if\d+: .* mtu 1400 .*\n\s+link\/ether ee:ee:ee:ee:ee:ee/);
    t.match(ipIn(b.name, 'link', 'show', 'p0'), /mtu 1400/);
    const err = await nl.createVeth({ name: 'v0', peer: { name: 'p1', netnsPath: b.path } }).catch((e: unknown) => e);
    t.ok(err instanceof NetlinkError, 'typed error');
    t.equal((err as NetlinkError).code, 'EEXIST');
    t.equal((err as NetlinkError).errno, 17);
  });

  t.test('set up / MTU / MAC / name; move to another netns', async (t) => {
    const v0 = await nl.mustGetLink('v0');
    await nl.setLink({ index: v0.index, up: true, mtu: 1300, mac: '02:00:00:00:00:01' });
    const l = await nl.mustGetLink(v0.index);
    t.equal(l.up, true);
    t.equal(l.mtu, 1300);
    t.equal(l.mac, '02:00:00:00:00:01');
    t.equal(l.kind, 'veth');
    await nl.setLinkUp(l.index, false);
    t.equal((await nl.mustGetLink(l.index)).up, false);
    ipIn(a.name, 'link', 'add', 'm0', 'type', 'veth', 'peer', 'name', 'm1');
    const m0 = await nl.mustGetLink('m0');
    await nl.moveLink(m0.index, b.path, 'moved0');
    t.equal(await nl.getLink('m0'), undefined, 'gone from here');
    t.match(ipIn(b.name, 'link', 'show', 'moved0'), /moved0/);
    t.equal(await nl.deleteLink('m1'), true);
    t.equal(await nl.deleteLink('m1'), false, 'deleting what is gone is not an error');
  });

  t.test('addresses and listInterfaces', async (t) => {
    const v0 = await nl.mustGetLink('v0');
    await nl.setLinkUp(v0.index);
    await nl.addAddress(v0.index, '192.0.2.1', 24);
    await nl.addAddress(v0.index, '192.0.2.1', 24); // replace: idempotent
    await nl.addAddress(v0.index, '2001:db8::1', 64);
    t.match(ipIn(a.name, 'addr', 'show', 'v0'), /inet 192\.0\.2\.1\/24/);
    const ifs = await listInterfaces(nl);
    const v = ifs.find((i) => i.name === 'v0')!;
    t.same(
      v.addresses
        .filter((x) => x.scope === 'global')
        .map((x) => `${x.address}/${x.prefixLen}/${x.family}`)
        .sort(),
      ['192.0.2.1/24/4', '2001:db8::1/64/6'],
    );
    t.equal(ifs.find((i) => i.name === 'lo')!.loopback, true);
    t.equal(await nl.deleteAddress(v0.index, '192.0.2.1', 24), true);
    t.equal(await nl.deleteAddress(v0.index, '192.0.2.1', 24), false);
    await nl.addAddress(v0.index, '192.0.2.1', 24);
  });

  t.test('routes: tables, multipath, blackhole, v6, replace, delete', async (t) => {
    const v0 = await nl.mustGetLink('v0');
    ipIn(a.name, 'link', 'add', 'w0', 'type', 'veth', 'peer', 'name', 'w1');
    ipIn(a.name, 'link', 'set', 'w0', 'up');
    ipIn(a.name, 'addr', 'add', '198.51.100.1/24', 'dev', 'w0');
    const w0 = await nl.mustGetLink('w0');
    await nl.addRoute({
      dst: '10.1.0.0/16',
      multipath: [
        { gateway: '192.0.2.2', oif: v0.index },
        { gateway: '198.51.100.2', oif: w0.index, weight: 3 },
      ],
      protocol: 81,
    });
    t.match(
      ipIn(a.name, 'route', 'show', '10.1.0.0/16'),
      /10\.1\.0\.0\/16 proto 81 .*\n\s+nexthop via 192\.0\.2\.2 dev v0 weight 1 .*\n\s+nexthop via 198\.51\.100\.2 dev w0 weight 3/,
    );
    const got = (await nl.listRoutes(4)).find((r) => r.dst === '10.1.0.0/16')!;
    t.equal(got.multipath?.length, 2);
    await nl.addRoute({ dst: '10.2.0.0/24', type: 'blackhole', table: 1234, protocol: 81 });
    t.match(ipIn(a.name, 'route', 'show', 'table', '1234'), /blackhole 10\.2\.0\.0\/24 proto 81/);
    await nl.replaceRoute({ dst: '2001:db8:1::/48', gateway: '2001:db8::2', oif: v0.index, protocol: 81 });
    t.match(ipIn(a.name, '-6', 'route', 'show', '2001:db8:1::/48'), /via 2001:db8::2 dev v0 proto 81/);
    await nl.replaceRoute({ dst: '10.3.0.0/24', gateway: '203.0.113.9', oif: v0.index, onlink: true, protocol: 81 });
    t.match(ipIn(a.name, 'route', 'show', '10.3.0.0/24'), /via 203\.0\.113\.9 dev v0 proto 81 onlink/);
    t.equal(await nl.deleteRoute({ dst: '10.2.0.0/24', type: 'blackhole', table: 1234 }), true);
    t.equal(await nl.deleteRoute({ dst: '10.2.0.0/24', type: 'blackhole', table: 1234 }), false);
    const err = await nl.addRoute({ dst: '10.4.0.0/24', gateway: '203.0.113.9', oif: v0.index }).catch((e: unknown) => e);
    t.equal((err as NetlinkError).code, 'ENETUNREACH', 'gateway not on link, no onlink: kernel refuses');
  });

  t.test('neighbours and bridge FDB', async (t) => {
    const v0 = await nl.mustGetLink('v0');
    await nl.setNeighbor({ family: 4, ifindex: v0.index, dst: '192.0.2.9', lladdr: '02:11:22:33:44:55' });
    t.match(ipIn(a.name, 'neigh', 'show', 'dev', 'v0'), /192\.0\.2\.9 lladdr 02:11:22:33:44:55 PERMANENT/);
    t.ok((await nl.listNeighbors(4, v0.index)).some((n) => n.dst === '192.0.2.9' && n.lladdr === '02:11:22:33:44:55'));
    t.equal(await nl.deleteNeighbor({ family: 4, ifindex: v0.index, dst: '192.0.2.9' }), true);
    ipIn(a.name, 'link', 'add', 'vx0', 'type', 'vxlan', 'id', '7', 'local', '192.0.2.1', 'dstport', '4789', 'nolearning');
    const vx = await nl.mustGetLink('vx0');
    await nl.setFdb(vx.index, '66:00:00:00:00:07', '192.0.2.7');
    t.match(
      spawnSync('bridge', ['-netns', a.name, 'fdb', 'show', 'dev', 'vx0'], { encoding: 'utf8' }).stdout,
      /66:00:00:00:00:07 dst 192\.0\.2\.7 self permanent/,
    );
    t.equal(await nl.deleteFdb(vx.index, '66:00:00:00:00:07', '192.0.2.7'), true);
  });

  t.test('events: link and route changes', async (t) => {
    const sub = nl.subscribe(['link', 'route']);
    t.teardown(() => sub.close());
    const seen: NetlinkEvent[] = [];
    sub.on('event', (e: NetlinkEvent) => seen.push(e));
    ipIn(a.name, 'link', 'add', 'e0', 'type', 'veth', 'peer', 'name', 'e1');
    ipIn(a.name, 'route', 'add', 'blackhole', '10.9.0.0/24', 'proto', '81');
    ipIn(a.name, 'route', 'del', 'blackhole', '10.9.0.0/24');
    t.ok(
      await waitUntil(() => seen.some((e) => e.kind === 'route' && e.type === 'del' && e.route.dst === '10.9.0.0/24'), 2000),
      'route del seen',
    );
    t.ok(
      seen.some((e) => e.kind === 'link' && e.type === 'new' && e.link.name === 'e0'),
      'link new seen',
    );
    t.ok(
      seen.some((e) => e.kind === 'route' && e.type === 'new' && e.route.type === 'blackhole' && e.route.protocol === 81),
      'route new seen',
    );
  });
});

t.test('native netns helpers', { skip }, async (t) => {
  const name = `${runId()}nh`;
  native().deleteNetns(name);
  const p = native().createNetns(name);
  t.teardown(() => {
    native().deleteNetns(name);
  });
  t.equal(p, `/var/run/netns/${name}`);
  t.match(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout, new RegExp(`^${name}\\b`, 'm'));
  t.throws(() => native().createNetns(name), { code: 'ESYSCALL' }, 'EEXIST for a taken name');
  ipIn(name, 'link', 'add', 'only0', 'type', 'veth', 'peer', 'name', 'only1');
  // enterNetns is permanent: check it in a child process that lists its links after entering
  const here = path.dirname(fileURLToPath(import.meta.url));
  const nativeJs = path.resolve(here, '../../../src/native/index.js');
  const dpJs = path.resolve(here, '../../../src/dataplane/index.js');
  const script = `const { native } = await import(${JSON.stringify(nativeJs)});
    const { openNetlink } = await import(${JSON.stringify(dpJs)});
    native().enterNetns(${JSON.stringify(p)});
    const nl = await openNetlink();
    console.log((await nl.listLinks()).map((l) => l.name).sort().join(','));
    nl.close();`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  t.equal(r.stdout.trim(), 'lo,only0,only1', r.stderr);
  t.equal(native().deleteNetns(name), true);
  t.equal(native().deleteNetns(name), false, 'second delete: already gone');
  t.notMatch(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout, new RegExp(`^${name}\\b`, 'm'));
});
