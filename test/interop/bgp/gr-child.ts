// A tabby speaker as its own process, for the graceful-restart interop test (it gets kill -9).
// Run inside the netns (`ip netns exec`); config as JSON in TABBY_GR_CHILD. Prints one JSON line per
// event on stdout: {"event":"established"|"dump-done"|"deferral-done"|"best", …}.
import { BgpSpeaker, tcpSessions, type PeerConfig } from '../../../src/bgp/index.js';

interface ChildConfig {
  asn: number;
  routerId: string;
  listen: string;
  peers: PeerConfig[];
  prefixes: string[];
  restarting: boolean;
  restartTime: number;
  deferralTime: number;
}

const cfg = JSON.parse(process.env.TABBY_GR_CHILD ?? '{}') as ChildConfig;
const out = (o: object): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
const s = new BgpSpeaker({
  sessions: tcpSessions(),
  asn: cfg.asn,
  routerId: cfg.routerId,
  listenAddress: cfg.listen,
  gracefulRestart: { restartTime: cfg.restartTime, restarting: cfg.restarting, deferralTime: cfg.deferralTime },
});
for (const p of cfg.peers) s.addPeer(p);
for (const p of cfg.prefixes) s.originate(p);
s.on('peer', (e: { address: string; state: string }) => {
  if (e.state === 'Established') out({ event: 'established', peer: e.address });
});
s.on('dump-done', (e: { address: string }) => out({ event: 'dump-done', peer: e.address }));
s.on('deferral-done', (e: { why: string }) => out({ event: 'deferral-done', why: e.why }));
s.on('best', (e: { prefix: string }) => out({ event: 'best', prefix: e.prefix }));
await s.start();
out({ event: 'started', restarting: cfg.restarting });
