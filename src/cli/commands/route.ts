// `tabbyctl route explain IP|PREFIX [--node N] [-o json]`: the chain that makes an address reachable
// from this node (agent/route-explain.ts), gathered from the datastore (pool, block, allocation, the
// owner's published status), the local tabby-node's route record (GET /route on its status socket)
// and this node's kernel over netlink (routes, the pod's cali link and neighbour). With --node N for
// another node, its published status stands in for its agent and kernel. Exit 0 when the chain is
// whole, 1 with the broken step named.
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { openDatastore } from '../../datastore/index.js';
import { ResourceStore } from '../../datastore/resources.js';
import { Ipam } from '../../ipam/index.js';
import { tryParseCidr, cidrContains, parseCidr, parseIp } from '../../common/ip.js';
import { DEFAULT_STATE_DIR, STATUS_SOCKET_NAME, HEALTH_PATHS, ROUTE_PATH } from '../../agent/constants.js';
import type { AgentStatusJson } from '../../agent/status-types.js';
import { readStatusRecords } from '../../agent/cluster-input.js';
import {
  explainChain,
  type AgentRouteAnswer,
  type ExplainInput,
  type ExplainKernelRoute,
  type Explanation,
} from '../../agent/route-explain.js';
import { withDatastoreFlags, datastoreConfigFromFlags, type DatastoreFlags } from './resources.js';
import { queryAgent } from './node.js';

/** tabby's route protocol number (dataplane ownership mark). */
const TABBY_PROTO = 81;

async function kernelView(ip: string): Promise<{
  routes: ExplainKernelRoute[];
  link: (dev: string) => Promise<{ name: string; up: boolean } | undefined>;
  neighbour: (dev: string) => Promise<string | undefined>;
}> {
  const { openNetlink } = await import('../../dataplane/index.js');
  const nl = await openNetlink();
  try {
    const a = parseIp(ip);
    const links = await nl.listLinks();
    const name = new Map(links.map((l) => [l.index, l]));
    const routes = (await nl.listRoutes(a.family))
      .filter((r) => r.table === 254 && cidrContains(parseCidr(r.dst), a))
      .sort((x, y) => parseCidr(y.dst).prefixLen - parseCidr(x.dst).prefixLen)
      .map((r) => {
        const k: ExplainKernelRoute = { dst: r.dst, type: r.type === 'blackhole' ? 'blackhole' : String(r.type), protocol: r.protocol };
        if (r.gateway) k.gateway = r.gateway;
        const dev = r.oif !== undefined ? name.get(r.oif)?.name : undefined;
        if (dev) k.dev = dev;
        return k;
      });
    const neigh = new Map<string, string>();
    for (const l of links) {
      if (!l.name.startsWith('cali')) continue;
      for (const n of await nl.listNeighbors(a.family, l.index)) if (n.dst === ip && n.lladdr) neigh.set(l.name, n.lladdr);
    }
    return {
      routes,
      link: async (dev) => {
        const l = links.find((x) => x.name === dev);
        return l ? { name: l.name, up: l.up } : undefined;
      },
      neighbour: async (dev) => neigh.get(dev),
    };
  } finally {
    nl.close();
  }
}

export async function gatherExplain(query: string, a: DatastoreFlags & { node?: string; 'state-dir'?: string }): Promise<Explanation> {
  const c = tryParseCidr(query);
  if (!c) throw new Error(`"${query}" is not an IP address or prefix`);
  const ip = query.split('/')[0]!;
  const ds = await openDatastore(datastoreConfigFromFlags(a));
  try {
    const rs = new ResourceStore(ds);
    const ipam = new Ipam(ds);
    const [pools, nodes, blocks, info, records] = await Promise.all([
      rs.list('IPPool'),
      rs.list('Node'),
      ipam.listBlocks(),
      ipam.ipInfo(ip),
      readStatusRecords(ds),
    ]);
    const block = blocks.find((b) => {
      try {
        return cidrContains(parseCidr(b.cidr), parseIp(ip));
      } catch {
        return false;
      }
    });
    // This node: its agent (socket), unless --node names another one.
    const sock = path.join(a['state-dir'] ?? process.env.TABBY_STATE_DIR ?? DEFAULT_STATE_DIR, STATUS_SOCKET_NAME);
    const status = await queryAgent<AgentStatusJson>(sock, HEALTH_PATHS.status).then(
      (r) => r.body,
      () => undefined,
    );
    const remote = a.node !== undefined && a.node !== status?.nodeName;
    const here = remote ? a.node! : (status?.nodeName ?? process.env.NODENAME ?? '');
    const owner =
      info.allocated && info.attrs.node && block?.node && info.attrs.node !== block.node ? info.attrs.node : (block?.node ?? undefined);
    const ownerRecord = owner ? records.get(owner) : undefined;
    const stale = ownerRecord ? Date.now() - new Date(ownerRecord.updatedAt).getTime() > 3 * (ownerRecord.intervalMs ?? 30_000) : false;
    const input: ExplainInput = {
      query,
      here,
      pools: pools.items.map((p) => ({
        name: p.metadata.name,
        cidr: p.spec.cidr,
        ipipMode: p.spec.ipipMode ?? 'Never',
        vxlanMode: p.spec.vxlanMode ?? 'Never',
        disabled: Boolean(p.spec.disabled),
      })),
      ownerExists: owner ? nodes.items.some((n) => n.metadata.name === owner) : false,
      agentRunning: false,
      kernelRoutes: [],
      tabbyProtocol: TABBY_PROTO,
    };
    if (block) input.block = { cidr: block.cidr, node: block.node, affinityState: block.affinityState };
    input.allocation = { allocated: info.allocated, handle: info.handle, attrs: info.attrs };
    if (ownerRecord) input.ownerRecord = ownerRecord;
    input.reflectorRecords = [...records.values()].filter((r) => r.mode === 'route-reflector');
    input.ownerRecordStale = stale;
    if (remote) {
      // Another node: its published status stands in for its agent; its kernel is not visible from here.
      const rec = records.get(here);
      input.agentRunning = Boolean(rec);
      if (rec?.address) input.hereAddress = rec.address;
      const covering = rec?.routes.find((r) => {
        try {
          return cidrContains(parseCidr(r), parseIp(ip));
        } catch {
          return false;
        }
      });
      if (covering) input.agent = { origin: 'bgp', prefix: covering, nextHops: [], source: '' };
      const e = explainChain(input);
      return { ...e, steps: e.steps.filter((s) => s.step !== 'kernel' && s.step !== 'workload') };
    }
    if (status) {
      input.agentRunning = true;
      if (status.address.ipv4) input.hereAddress = status.address.ipv4;
      const r = await queryAgent<AgentRouteAnswer & { error?: string }>(sock, `${ROUTE_PATH}?prefix=${encodeURIComponent(query)}`).catch(
        () => undefined,
      );
      if (r && r.status === 200) input.agent = r.body;
      const k = await kernelView(ip);
      input.kernelRoutes = k.routes;
      const pod = k.routes.find((x) => x.dst === `${ip}/32` && x.dev?.startsWith('cali'));
      if (pod?.dev) {
        const l = await k.link(pod.dev);
        if (l) input.workloadLink = l;
        const n = await k.neighbour(pod.dev);
        if (n) input.workloadNeighbour = n;
      }
    }
    return explainChain(input);
  } finally {
    await ds.close();
  }
}

export function renderExplanation(e: Explanation): string {
  const width = Math.max(...e.steps.map((s) => s.step.length));
  const lines = [`route explain ${e.query} on ${e.here || '(no agent)'}`];
  let seenBroken = false;
  for (const s of e.steps) {
    const mark = s.ok ? 'ok    ' : seenBroken ? 'also  ' : 'BROKEN';
    if (!s.ok) seenBroken = true;
    lines.push(`  ${mark} ${s.step.padEnd(width)}  ${s.detail}`);
    if (!s.ok && s.fix) lines.push(`  ${' '.repeat(6)} ${' '.repeat(width)}  fix: ${s.fix}`);
  }
  lines.push(e.broken ? `the chain breaks at: ${e.broken}` : 'the chain is whole');
  return `${lines.join('\n')}\n`;
}

interface Args extends DatastoreFlags {
  target: string;
  node?: string;
  'state-dir'?: string;
  output: string;
}

const explainCommand: CommandModule<object, Args> = {
  command: 'explain <target>',
  describe: 'the chain that routes an address or prefix to this node, step by step, and the first step that breaks (exit 1)',
  builder: (y) =>
    withDatastoreFlags(y)
      .positional('target', { type: 'string', describe: "an IP address (a pod's) or a prefix (a block)" })
      .option('node', { type: 'string', describe: 'explain from another node (its published status; its kernel is not visible from here)' })
      .option('state-dir', { type: 'string', describe: `tabby-node's state directory [env TABBY_STATE_DIR, default ${DEFAULT_STATE_DIR}]` })
      .option('output', { alias: 'o', type: 'string', choices: ['text', 'json'], default: 'text' }) as unknown as Argv<Args>,
  handler: async (argv) => {
    const e = await gatherExplain(argv.target, argv);
    process.stdout.write(argv.output === 'json' ? `${JSON.stringify(e, null, 2)}\n` : renderExplanation(e));
    if (e.broken) process.exitCode = 1;
  },
};

export const routeCommand: CommandModule = {
  command: 'route <command>',
  describe: 'how an address is routed',
  builder: (y) => y.command(explainCommand as CommandModule).demandCommand(1, 'name a route command: explain'),
  handler: () => {
    /* subcommands only */
  },
};
