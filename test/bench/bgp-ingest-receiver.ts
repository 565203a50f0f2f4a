// The tabby receiver of the ingest benchmark (bgp-ingest.ts), a process of its own inside its netns.
// Config as JSON in TABBY_BENCH_RX: {asn, routerId, listen, feeder, feederAsn, expect, slowUs?}
// (slowUs: every best-route event costs that many µs — a consumer slower than the feeder, to show
// that the inbound queue stays bounded: inboundPeak and the peak RSS are reported).
// Prints JSON lines: {"event":"ready"}, {"event":"done", rssBefore, rss, heapUsed, attrSets, firstUpdateMs, doneMs}.
// first, as in tabby-node (main.ts): its V8 heap flags
import '../../src/agent/heap-policy.js';
import { BgpSpeaker, tcpSessions } from '../../src/bgp/index.js';

if (!process.env.TABBY_BENCH_RX) {
  // `make bench` runs every script here: this one is only a helper process of bgp-ingest.js.
  process.stdout.write('bgp-ingest-receiver: helper of bgp-ingest.js (needs TABBY_BENCH_RX); nothing to do alone\n');
  process.exit(0);
}
const cfg = JSON.parse(process.env.TABBY_BENCH_RX) as {
  asn: number;
  routerId: string;
  listen: string;
  feeder: string;
  feederAsn: number;
  expect: number;
  slowUs?: number;
};
const out = (o: object): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
const s = new BgpSpeaker({ sessions: tcpSessions(), asn: cfg.asn, routerId: cfg.routerId, listenAddress: cfg.listen });
s.addPeer({ address: cfg.feeder, asn: cfg.feederAsn, localAddress: cfg.listen, families: ['ipv4'], passive: true, holdTime: 90 });
// Like the agent: listen to every best-route change.
let events = 0;
const slowMs = (cfg.slowUs ?? 0) / 1000;
s.on('best', () => {
  events++;
  if (slowMs > 0) {
    const end = performance.now() + slowMs;
    while (performance.now() < end) {
      /* a slow consumer */
    }
  }
});
let rssPeak = 0;
await s.start();
if (global.gc) global.gc();
const rssBefore = process.memoryUsage().rss;
let cpuStart = process.cpuUsage();
out({ event: 'ready', rssBefore });
let first = 0;
const timer = setInterval(() => {
  const n = s.locRib().size;
  rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
  if (n > 0 && first === 0) first = performance.now();
  if (n === 0) cpuStart = process.cpuUsage(); // CPU from the first UPDATE on (±10 ms)
  if (n >= cfg.expect) {
    clearInterval(timer);
    const doneMs = performance.now();
    const c = process.cpuUsage(cpuStart);
    const m1 = process.memoryUsage();
    if (global.gc) global.gc();
    const m2 = process.memoryUsage();
    out({
      event: 'done',
      rssBefore,
      rss: m1.rss,
      rssAfterGc: m2.rss,
      heapUsed: m2.heapUsed,
      attrSets: s.attributeSets,
      events,
      inboundPeak: s.peers()[0]?.inboundPeak ?? 0,
      rssPeak,
      firstSeenMs: first,
      doneMs,
      cpuSeconds: (c.user + c.system) / 1e6,
    });
  }
}, 10);
process.on('SIGTERM', () => {
  void s.stop().then(() => process.exit(0));
});
