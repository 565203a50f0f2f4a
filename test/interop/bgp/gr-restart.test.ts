// Graceful restart (RFC 4724) with real processes: a tabby speaker (a child process in its netns)
// peers with BIRD 2 (`graceful restart on`) and an in-process tabby helper. kill -9 of the child:
// both peers keep its routes (stale) — nothing is withdrawn at any point. The child starts again
// (Restart State bit), re-announces two of its three routes and sends End-of-RIB: the third is then
// removed at both peers, and only it.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { BgpSpeaker, tcpSessions } from '../../../src/bgp/index.js';
import { isRoot, waitFor } from '../../helpers/netns.js';
import { haveBird, startBird } from '../../helpers/bird.js';
import { makeStar, birdConfig } from './rr-lab.js';

const skip = !isRoot() ? 'needs root (network namespaces)' : !haveBird() ? 'bird2 not installed' : false;
const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'gr-child.js');
const KEEP = ['10.121.1.0/24', '10.121.2.0/24'];
const GONE = '10.121.3.0/24';

t.test('kill -9 and restart of a tabby speaker: BIRD 2 and tabby keep its routes, stale swept after End-of-RIB', { skip }, async (t) => {
  const [n1, n2, n3] = makeStar(t, 'gr', 69, 3);
  const tb = n1!,
    br = n2!,
    hp = n3!;
  const bird = await startBird(t, {
    netns: br.name,
    config: birdConfig({
      routerId: br.address,
      asn: 65000,
      local: br.address,
      gracefulRestart: true,
      neighbors: [{ address: tb.address, asn: 65000 }],
      routes: ['10.122.0.0/24'],
    }),
  });
  const helper = new BgpSpeaker({
    asn: 65000,
    routerId: hp.address,
    listenAddress: hp.address,
    sessions: tcpSessions({ netns: hp.path }),
    gracefulRestart: { restartTime: 120 },
  });
  helper.addPeer({ address: tb.address, asn: 65000, localAddress: hp.address, families: ['ipv4'], holdTime: 30 });
  helper.originate('10.123.0.0/24');
  t.teardown(() => helper.stop());
  await helper.start();

  let proc: ChildProcess | undefined;
  const lines: { event: string; [k: string]: unknown }[] = [];
  const startChild = (prefixes: string[], restarting: boolean): void => {
    const cfg = {
      asn: 65000,
      routerId: tb.address,
      listen: tb.address,
      prefixes,
      restarting,
      restartTime: 120,
      deferralTime: 30,
      peers: [br.address, hp.address].map((a) => ({ address: a, asn: 65000, localAddress: tb.address, families: ['ipv4'], holdTime: 30 })),
    };
    const p = spawn('ip', ['netns', 'exec', tb.name, process.execPath, child], {
      env: { ...process.env, TABBY_GR_CHILD: JSON.stringify(cfg), TABBY_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let buf = '';
    p.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        try {
          lines.push(JSON.parse(buf.slice(0, i)));
        } catch {
          /* not ours */
        }
        buf = buf.slice(i + 1);
      }
    });
    proc = p;
  };
  t.teardown(() => {
    proc?.kill('SIGKILL');
  });

  startChild([...KEEP, GONE], false);
  const birdHas = async (p: string): Promise<boolean> => (await bird.birdc(`show route ${p}`).catch(() => '')).includes(p);
  t.ok(await bird.waitEstablished('p1', 30_000), 'BIRD: Established with tabby');
  t.ok(await waitFor(async () => (await Promise.all([...KEEP, GONE].map(birdHas))).every(Boolean), 20_000), 'BIRD has the 3 routes');
  t.ok(
    await waitFor(() => helper.locRib().size === 4, 20_000),
    "tabby helper has the 3 routes (+ its own; BIRD's is iBGP-learned, not re-sent)",
  );

  // Watch for any withdrawal of the routes that must survive, at both peers, from now on.
  const helperWithdrawn: string[] = [];
  helper.on('withdrawn', (e: { prefix: string }) => helperWithdrawn.push(e.prefix));
  const birdMissing = new Set<string>();
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      for (const p of KEEP) if (!(await birdHas(p))) birdMissing.add(p);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();

  proc!.kill('SIGKILL');
  await new Promise((r) => proc!.once('exit', r));
  t.ok(await waitFor(() => helper.peers()[0]!.state !== 'Established', 10_000), 'helper saw the session drop');
  t.ok(await waitFor(async () => !(await bird.protocolState('p1')).includes('Established'), 10_000), 'BIRD saw the session drop');
  t.equal(helper.peers()[0]!.prefixesStale, 3, 'helper: 3 routes kept stale');
  t.ok((await Promise.all([...KEEP, GONE].map(birdHas))).every(Boolean), 'BIRD: all 3 routes kept');
  t.equal(helper.locRib().get(KEEP[0]!)?.stale, true, 'helper: marked stale, still the best path');

  lines.length = 0;
  startChild(KEEP, true);
  t.ok(
    await waitFor(() => lines.some((l) => l.event === 'deferral-done'), 40_000),
    `restarted speaker ended its deferral (${JSON.stringify(lines.find((l) => l.event === 'deferral-done'))})`,
  );
  t.ok(await waitFor(() => helperWithdrawn.includes(GONE), 20_000), 'helper removed the route not re-announced');
  t.ok(await waitFor(async () => !(await birdHas(GONE)), 20_000), 'BIRD removed the route not re-announced');
  watching = false;
  await watcher;
  t.same(helperWithdrawn, [GONE], 'helper withdrew nothing else at any point');
  t.same([...birdMissing], [], 'BIRD never lost the re-announced routes');
  t.equal(helper.peers()[0]!.prefixesStale, 0, 'no stale route left at the helper');
  t.ok(
    lines.some((l) => l.event === 'best' && l.prefix === '10.122.0.0/24'),
    "the restarted speaker learned BIRD's route again",
  );
  t.match(await bird.birdc(`show route all ${KEEP[0]}`), /via 10\.69\.0\.1/, 'BIRD: route via the restarted speaker');
});
