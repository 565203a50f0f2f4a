// tabby as the reflector of the RR fan-out benchmark (rr-fanout.ts), a process of its own inside its
// netns: the BGP speaker as tabby-node's route-reflector mode runs it (cluster ID, every peer an
// iBGP route-reflector client, a 'changes' listener like the agent's) — route-reflector mode
// programs no kernel, so this is the whole work of such a node. Config as JSON in TABBY_BENCH_RRX:
// {asn, routerId, listen, peers: [address…]}. Prints {"event":"ready"}, then on SIGUSR2 {"event":"stats", …}.
// first, as in tabby-node (main.ts): its V8 heap flags
import '../../src/agent/heap-policy.js';
import { BgpSpeaker, tcpSessions } from '../../src/bgp/index.js';

if (!process.env.TABBY_BENCH_RRX) {
  process.stdout.write('rr-fanout-reflector: helper of rr-fanout.js (needs TABBY_BENCH_RRX); nothing to do alone\n');
  process.exit(0);
}
const cfg = JSON.parse(process.env.TABBY_BENCH_RRX) as { asn: number; routerId: string; listen: string; peers: string[] };
const out = (o: object): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
const s = new BgpSpeaker({
  sessions: tcpSessions(),
  asn: cfg.asn,
  routerId: cfg.routerId,
  listenAddress: cfg.listen,
  clusterId: '244.0.0.1',
});
for (const a of cfg.peers) {
  s.addPeer({
    address: a,
    asn: cfg.asn,
    localAddress: cfg.listen,
    families: ['ipv4'],
    passive: true,
    holdTime: 240,
    routeReflectorClient: true,
  });
}
let changes = 0;
s.on('changes', (b) => {
  changes += b.count;
});
await s.start();
out({ event: 'ready' });
process.on('SIGUSR2', () => {
  const m = process.memoryUsage();
  out({
    event: 'stats',
    changes,
    heapUsed: m.heapUsed,
    rss: m.rss,
    attrSets: s.attributeSets,
    advertised: s.peers().reduce((a, p) => a + p.prefixesAdvertised, 0),
  });
});
process.on('SIGTERM', () => {
  void s.stop().then(() => process.exit(0));
});
