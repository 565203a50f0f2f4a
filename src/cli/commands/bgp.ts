// `tabbyctl bgp …`: BGP views of the local tabby-node (over $TABBY_STATE_DIR/tabby.sock).
//   tabbyctl bgp routes [--peer P] [--advertised|--received] [-o text|json]
// lists, per peer, every prefix this node sends (or would send, and why not) or got from the peer,
// and which BGPFilter rule decided — its name, list and index (`tor-policy exportV4[1] Reject`),
// `default Accept`, or the protocol rule that held a route back. More `bgp` subcommands: add them to
// BGP_SUBCOMMANDS.
import type { CommandModule } from 'yargs';
import { DEFAULT_STATE_DIR, BGP_ROUTES_PATH } from '../../agent/constants.js';
import type { RouteReportEntry } from '../../bgp/route-report.js';
import { agentSocketPath, queryRunningAgent, renderTable } from './node.js';
import { bgpDiagnoseCommand } from './bgp-diagnose.js';

interface PeerRoutes {
  peer: string;
  direction: 'received' | 'advertised';
  routes: RouteReportEntry[];
}

/** Prefixes in address order (IPv4 first), then by length. */
function prefixOrder(a: string, b: string): number {
  const key = (p: string) => {
    const [addr, len] = p.split('/') as [string, string];
    if (!addr.includes(':'))
      return `4${addr
        .split('.')
        .map((x) => x.padStart(3, '0'))
        .join('.')}/${len.padStart(3, '0')}`;
    return `6${addr}/${len.padStart(3, '0')}`;
  };
  return key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
}

export function renderBgpRoutes(list: readonly PeerRoutes[]): string {
  const out: string[] = [];
  for (const pr of list) {
    out.push(pr.direction === 'received' ? `Routes received from ${pr.peer}` : `Routes toward ${pr.peer}`);
    if (pr.routes.length === 0) {
      out.push('No routes.', '');
      continue;
    }
    const rows = [...pr.routes]
      .sort((a, b) => prefixOrder(a.prefix, b.prefix))
      .map((r) => [r.prefix, r.state, r.nextHop ?? '', r.asPath.join(' '), r.communities.join(' '), r.decidedBy]);
    out.push(renderTable(['PREFIX', 'STATE', 'NEXT HOP', 'AS PATH', 'COMMUNITIES', 'DECIDED BY'], rows), '');
  }
  return `${out.join('\n')}\n`;
}

interface RoutesArgs {
  'state-dir'?: string;
  peer?: string;
  advertised?: boolean;
  received?: boolean;
  output: string;
}

const routesCommand: CommandModule<object, RoutesArgs> = {
  command: 'routes',
  describe: 'prefixes this node advertises to a peer (or got from it) and which BGPFilter rule decided',
  builder: (y) =>
    y
      .option('peer', { type: 'string', describe: 'peer address (default: every peer of this node)' })
      .option('advertised', { type: 'boolean', describe: 'what this node sends to the peer (default)' })
      .option('received', { type: 'boolean', describe: 'what the peer sent to this node' })
      .conflicts('advertised', 'received')
      .option('state-dir', { type: 'string', describe: `tabby-node's state directory [env TABBY_STATE_DIR, default ${DEFAULT_STATE_DIR}]` })
      .option('output', { alias: 'o', type: 'string', choices: ['text', 'json'], default: 'text', describe: 'output format' }) as never,
  handler: async (argv) => {
    const q = new URLSearchParams({ dir: argv.received ? 'received' : 'advertised', ...(argv.peer ? { peer: argv.peer } : {}) });
    const r = await queryRunningAgent<PeerRoutes[] | { error: string }>(
      agentSocketPath(argv['state-dir']),
      `${BGP_ROUTES_PATH}?${q.toString()}`,
    );
    if (!r) return;
    if (!Array.isArray(r.body)) {
      process.stderr.write(`${r.body.error}\n`);
      process.exitCode = 1;
      return;
    }
    process.stdout.write(argv.output === 'json' ? `${JSON.stringify(r.body, null, 2)}\n` : renderBgpRoutes(r.body));
  },
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const BGP_SUBCOMMANDS: CommandModule<any, any>[] = [routesCommand, bgpDiagnoseCommand];

export const bgpCommand: CommandModule = {
  command: 'bgp <command>',
  describe: "BGP views of this node's tabby-node (routes per peer, filter decisions)",
  builder: (y) => {
    for (const c of BGP_SUBCOMMANDS) y.command(c);
    return y.demandCommand(1, 'name a bgp command: routes, diagnose');
  },
  handler: () => {
    /* subcommands only */
  },
};
