// The client side of the RR fan-out benchmark (rr-fanout.ts), a process of its own inside the
// clients' netns: C counting route-reflector clients (test/helpers/bgp-count.ts), each from its own
// address, then — once every client is Established — one feeder (tabby's BgpSession writing the
// pre-encoded feed of bgp-feed.ts) that is a client too. Config as JSON in TABBY_BENCH_RR:
// {rr, feeder, clients: [address…], asn, n}. Prints JSON lines: {"event":"ready"} (all clients up),
// {"event":"feeding", startMs} (first UPDATE written), {"event":"done", startMs, lastMs, firstMs, …}
// (times as epoch ms, the same clock as the parent), {"event":"progress", …} every 5 s.
import { BgpSession } from '../../src/bgp/session.js';
import { CountingPeer } from '../helpers/bgp-count.js';
import { buildFeed } from '../helpers/bgp-feed.js';

if (!process.env.TABBY_BENCH_RR) {
  process.stdout.write('rr-fanout-clients: helper of rr-fanout.js (needs TABBY_BENCH_RR); nothing to do alone\n');
  process.exit(0);
}
const cfg = JSON.parse(process.env.TABBY_BENCH_RR) as { rr: string; feeder: string; clients: string[]; asn: number; n: number };
const out = (o: object): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nowMs = (): number => performance.timeOrigin + performance.now();

const { msgs } = buildFeed(cfg.n, cfg.feeder);
const clients = cfg.clients.map((local) => new CountingPeer({ local, remote: cfg.rr, asn: cfg.asn, goal: cfg.n }));
const upBy = Date.now() + 120_000;
while (!clients.every((c) => c.established)) {
  if (Date.now() > upBy) {
    out({
      event: 'error',
      message: `clients not Established: ${clients.filter((c) => !c.established).length}`,
      closed: clients.map((c) => c.closed),
    });
    process.exit(1);
  }
  await sleep(50);
}
out({ event: 'ready' });
await sleep(500); // let the reflector settle every session

const feeder = new BgpSession({
  address: cfg.rr,
  localAddress: cfg.feeder,
  localAsn: cfg.asn,
  peerAsn: cfg.asn,
  routerId: cfg.feeder,
  families: ['ipv4'],
  holdTime: 240,
  connectRetryTime: 1,
});
const up = new Promise<void>((r) => feeder.once('established', () => r()));
feeder.start();
await up;
await sleep(300);
const startMs = nowMs();
out({ event: 'feeding', startMs });
const sent = feeder.sendUpdates(msgs);
let sentAtMs = 0;
void sent.then(() => {
  sentAtMs = nowMs();
});
const progress = setInterval(() => {
  const counts = clients.map((c) => c.count);
  out({ event: 'progress', min: Math.min(...counts), max: Math.max(...counts), done: clients.filter((c) => c.goalAtMs > 0).length });
}, 5000);
while (!clients.every((c) => c.goalAtMs > 0)) {
  const broken = clients.find((c) => c.closed);
  if (broken) {
    out({ event: 'error', message: `a client session closed: ${broken.closed}` });
    process.exit(1);
  }
  await sleep(5);
}
clearInterval(progress);
const times = clients.map((c) => c.goalAtMs);
out({
  event: 'done',
  startMs,
  sentMs: sentAtMs,
  firstMs: Math.min(...times),
  lastMs: Math.max(...times),
  updates: clients.reduce((a, c) => a + c.updates, 0),
  bytes: clients.reduce((a, c) => a + c.bytes, 0),
});
process.on('SIGTERM', () => {
  for (const c of clients) c.close();
  feeder.stop();
  process.exit(0);
});
