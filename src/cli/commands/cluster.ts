// `tabbyctl cluster status [-o json] [--stale-after S]`: every node from the datastore (file or etcd),
// each with its published status (agent/node-status-publisher.ts), checked expected against actual
// (agent/cluster-check.ts): the sessions the mesh/BGPPeers/selectors/route reflectors imply versus
// those Established, every confirmed block in every other node's kernel, stale or missing status.
// Exit 0 when everything matches, 1 on any mismatch (each named with its node), 2-style usage errors
// by yargs. Needs no root and no agent on this machine — only the datastore settings.
import type { Argv, CommandModule } from 'yargs';
import { openDatastore } from '../../datastore/index.js';
import { checkCluster, type ClusterReport } from '../../agent/cluster-check.js';
import { loadClusterInput } from '../../agent/cluster-input.js';
import { withDatastoreFlags, datastoreConfigFromFlags, type DatastoreFlags } from './resources.js';
import { renderTable } from './node.js';

const ago = (iso: string | undefined, now: Date): string => {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((now.getTime() - new Date(iso).getTime()) / 1000));
  return s < 120 ? `${s}s ago` : `${Math.round(s / 60)}m ago`;
};

export function renderClusterReport(r: ClusterReport, now: Date): string {
  const rows = r.nodes.map((n) => [
    n.node,
    n.role,
    n.status === 'ok' ? 'ok' : n.status.toUpperCase(),
    `${n.sessionsEstablished}/${n.sessionsExpected}`,
    n.role === 'route-reflector' ? '-' : `${n.blocksRouted}/${n.blocksExpected}`,
    ago(n.updatedAt, now),
    n.version ?? '-',
  ]);
  const lines = [renderTable(['NODE', 'ROLE', 'STATUS', 'BGP UP/EXPECTED', 'BLOCKS ROUTED', 'STATUS AGE', 'VERSION'], rows), ''];
  lines.push(
    `sessions: ${r.sessions.established}/${r.sessions.expected} expected sessions Established; blocks: ${r.blocks.confirmed} confirmed, ${r.blocks.missingRoutes} missing route(s) in kernels`,
  );
  for (const n of r.notes) lines.push(`note: ${n.node}: ${n.detail}`);
  if (r.converged) lines.push('cluster converged: every expected session is Established and every block is in every kernel');
  else {
    lines.push(`${r.findings.length} problem(s):`);
    for (const f of r.findings) lines.push(`  - ${f.node}: ${f.detail} [${f.kind}]`);
  }
  return `${lines.join('\n')}\n`;
}

interface Args extends DatastoreFlags {
  output: string;
  'stale-after'?: number;
}

const statusCommand: CommandModule<object, Args> = {
  command: 'status',
  describe:
    "every node's published status, checked: expected BGP sessions Established, every block in every kernel, no stale node (exit 1 on a mismatch)",
  builder: (y) =>
    withDatastoreFlags(y)
      .option('output', { alias: 'o', type: 'string', choices: ['text', 'json'], default: 'text' })
      .option('stale-after', {
        type: 'number',
        describe: "seconds after which a node's status counts as stale (default: 3x its TABBY_STATUS_INTERVAL, 90 s by default)",
      }) as unknown as Argv<Args>,
  handler: async (argv) => {
    const ds = await openDatastore(datastoreConfigFromFlags(argv));
    let report: ClusterReport;
    const now = new Date();
    try {
      report = checkCluster(
        await loadClusterInput(ds, { now, ...(argv['stale-after'] !== undefined ? { staleAfterMs: argv['stale-after'] * 1000 } : {}) }),
      );
    } finally {
      await ds.close();
    }
    process.stdout.write(argv.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : renderClusterReport(report, now));
    if (!report.converged) process.exitCode = 1;
  },
};

export const clusterCommand: CommandModule = {
  command: 'cluster <command>',
  describe: 'the whole cluster, from the datastore',
  builder: (y) => y.command(statusCommand as CommandModule).demandCommand(1, 'name a cluster command: status'),
  handler: () => {
    /* subcommands only */
  },
};
