// `tabbyctl bgp diagnose [PEER] [-o json]`: for each BGP session of the local tabby-node (or one),
// its state, a classified cause with a one-line fix (agent/session-diagnosis.ts), and the last
// transitions, NOTIFICATIONs (decoded) and TCP errors from the agent's bounded history (/sessions on
// $TABBY_STATE_DIR/tabby.sock). Exits 0 when every session shown is Established, 1 otherwise.
import type { CommandModule } from 'yargs';
import { DEFAULT_STATE_DIR, HEALTH_PATHS } from '../../agent/constants.js';
import type { SessionEvent, SessionsJson } from '../../agent/session-history.js';
import { diagnoseSession, describeNotification, type Diagnosis } from '../../agent/session-diagnosis.js';
import { agentSocketPath, queryRunningAgent, formatSince } from './node.js';

const clock = (iso: string): string => {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().slice(11, 19);
};

export function describeEvent(e: SessionEvent): string {
  switch (e.kind) {
    case 'state':
      return `${e.from} -> ${e.to}${e.info && e.info !== e.to ? `  (${e.info})` : ''}${e.count && e.count > 1 ? ` x${e.count}, last ${clock(e.lastAt ?? e.at)}` : ''}`;
    case 'notification':
      return describeNotification(e);
    case 'connect-error':
      return `TCP ${e.code === 'ECLOSED' ? 'closed by the peer' : `connect failed: ${e.code}`} (${e.message})${e.count && e.count > 1 ? ` x${e.count}, last ${clock(e.lastAt ?? e.at)}` : ''}`;
  }
}

export function renderDiagnosis(d: Diagnosis, events: readonly SessionEvent[], now: Date, historyLines = 10): string {
  const head = `PEER ${d.peer}${d.peerNode ? ` (${d.peerNode})` : ''}: ${d.state} since ${formatSince(new Date(d.since), now)} — ${d.cause === 'established' ? 'ok' : d.cause.toUpperCase().replace(/-/g, ' ')}`;
  const lines = [head, `  cause: ${d.summary}`, `  fix:   ${d.fix}`];
  const shown = events.slice(-historyLines);
  if (shown.length > 0) {
    lines.push(`  history (UTC, last ${shown.length} of ${events.length}):`);
    for (const e of shown) lines.push(`    ${clock(e.at)}  ${describeEvent(e)}`);
  }
  return `${lines.join('\n')}\n`;
}

interface Args {
  peer?: string;
  'state-dir'?: string;
  output: string;
  history: number;
}

export const bgpDiagnoseCommand: CommandModule<object, Args> = {
  command: 'diagnose [peer]',
  describe: 'why each BGP session of this node is (not) up: classified cause, fix, transitions and NOTIFICATIONs',
  builder: (y) =>
    y
      .positional('peer', { type: 'string', describe: 'one peer address or node name (default: every peer)' })
      .option('state-dir', { type: 'string', describe: `tabby-node's state directory [env TABBY_STATE_DIR, default ${DEFAULT_STATE_DIR}]` })
      .option('history', { type: 'number', default: 10, describe: 'history lines per peer' })
      .option('output', { alias: 'o', type: 'string', choices: ['text', 'json'], default: 'text' }) as never,
  handler: async (argv) => {
    const socketPath = agentSocketPath(argv['state-dir']);
    const r = await queryRunningAgent<SessionsJson>(socketPath, HEALTH_PATHS.sessions);
    if (!r) return;
    if (r.status !== 200) throw new Error(`tabby-node at ${socketPath} does not serve ${HEALTH_PATHS.sessions} (an older version?)`);
    const body = r.body;
    const now = new Date(body.now);
    let peers = body.peers;
    if (argv.peer) {
      peers = peers.filter((p) => p.status.address === argv.peer || p.config.peerNode === argv.peer);
      if (peers.length === 0) {
        process.stderr.write(
          `no BGP peer "${argv.peer}" on ${body.nodeName} (peers: ${body.peers.map((p) => (p.config.peerNode ? `${p.status.address} (${p.config.peerNode})` : p.status.address)).join(', ') || 'none'})\n`,
        );
        process.exitCode = 1;
        return;
      }
    }
    const diags = peers.map((p) => ({ d: diagnoseSession(p, now), events: p.events, dropped: p.dropped }));
    if (argv.output === 'json') {
      process.stdout.write(
        `${JSON.stringify({ node: body.nodeName, now: body.now, peers: diags.map((x) => ({ ...x.d, history: x.events, dropped: x.dropped })) }, null, 2)}\n`,
      );
    } else {
      const up = diags.filter((x) => x.d.cause === 'established').length;
      process.stdout.write(`${body.nodeName}: ${up}/${diags.length} BGP session(s) Established\n`);
      if (diags.length === 0) process.stdout.write('no BGP peers configured (mesh off and no BGPPeer selects this node?)\n');
      for (const x of diags) process.stdout.write(`\n${renderDiagnosis(x.d, x.events, now, argv.history)}`);
    }
    if (diags.some((x) => x.d.cause !== 'established')) process.exitCode = 1;
  },
};
