// tabbyctl lab up|down|status|exec|env|add-node|remove-node|add-pod — the local lab (src/lab): N tabby
// nodes as network namespaces on this machine, one tabby-node each, pods through the real CNI plugin.
// Rendering only; the mechanics live in src/lab.
import type { Argv, CommandModule } from 'yargs';
import path from 'node:path';
import {
  createLab,
  destroyLab,
  Lab,
  agentMainPath,
  DEFAULT_LAB_PREFIX,
  DEFAULT_LAB_STATE_DIR,
  type LabMode,
  type PingResult,
} from '../../lab/lab.js';
import { spawnIn } from '../../lab/netns.js';
import { waitConverged, progressLine } from '../../lab/converge.js';
import { planPairs } from '../../lab/probe.js';
import { policyDemo } from '../../lab/policy-demo.js';
import { renderEnvExports, resolveCommand } from '../../lab/env.js';
import { SUBNETS } from '../../lab/topology.js';
import { parseLabels } from '../../datastore/labels.js';
import { renderNodeStatus, renderTable } from './node.js';

interface CommonArgs {
  'state-dir': string;
  prefix: string;
}

const common = <T>(y: Argv<T>): Argv<T & CommonArgs> =>
  y
    .option('state-dir', {
      type: 'string',
      default: process.env.TABBY_LAB_DIR ?? DEFAULT_LAB_STATE_DIR,
      describe: "the lab's state directory [env TABBY_LAB_DIR]",
    })
    .option('prefix', { type: 'string', default: DEFAULT_LAB_PREFIX, describe: 'name prefix of everything the lab creates' }) as Argv<
    T & CommonArgs
  >;

// `tabbyctl lab status | head` closes stdout early: stop quietly instead of crashing on EPIPE.
let epipeHandled = false;
const out = (s: string): void => {
  if (!epipeHandled) {
    epipeHandled = true;
    process.stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      else throw e;
    });
  }
  process.stdout.write(s);
};

function openOrFail(stateDir: string): Lab {
  const lab = Lab.open(stateDir);
  if (!lab) {
    process.stderr.write(`no lab in ${stateDir} (start one with "tabbyctl lab up")\n`);
    process.exit(1);
  }
  return lab;
}

export function renderPingMatrix(pods: readonly string[], results: readonly PingResult[]): string {
  const ok = new Map(results.map((r) => [`${r.from}>${r.to}`, r.ok]));
  const rows = pods.map((a) => [a, ...pods.map((b) => (a === b ? '-' : ok.get(`${a}>${b}`) ? 'ok' : 'FAIL'))]);
  return renderTable(['FROM \\ TO', ...pods], rows);
}

function describeLab(lab: Lab): string {
  const s = lab.state;
  const lines = [
    `tabby lab "${s.prefix}" — state ${s.stateDir}`,
    `encapsulation: ${s.modeReason}`,
    `BGP: node-to-node mesh ${s.meshEnabled ? 'on' : 'off'}${
      s.nodes.some((n) => n.role === 'route-reflector')
        ? `, route reflectors ${s.nodes
            .filter((n) => n.role === 'route-reflector')
            .map((n) => n.name)
            .join(', ')}`
        : ''
    }; pool ${s.poolCidr}${s.pool6Cidr ? `, IPv6 pool ${s.pool6Cidr} (/122 blocks; IPv4 and IPv6 sessions to every peer)` : ''}`,
    `underlay: netns ${s.underlayNetns} (bridge${s.crossSubnet ? `s br-a ${SUBNETS.a.cidr}, br-b ${SUBNETS.b.cidr}` : ` br-a ${SUBNETS.a.cidr}`}); default gateway: netns ${s.routerNetns}${s.crossSubnet ? ', the only path between the subnets' : ''}; the root namespace is not touched`,
    '',
    renderTable(
      ['NODE', 'ROLE', 'NETNS', 'ADDRESS', 'AGENT'],
      s.nodes.map((n) => [
        n.name,
        n.role,
        n.netns,
        n.address,
        n.agent ? `${lab.agentRunning(n.name) ? 'running' : 'DEAD'} pid ${n.agent.pid}` : 'not started',
      ]),
    ),
  ];
  if (s.pods.length > 0)
    lines.push(
      '',
      renderTable(
        ['POD', 'NODE', 'NETNS', 'IP', ...(s.pool6Cidr ? ['IPV6'] : [])],
        s.pods.map((p) => [p.name, p.node, p.netns, p.ip, ...(s.pool6Cidr ? [p.ip6 ?? ''] : [])]),
      ),
    );
  return `${lines.join('\n')}\n`;
}

async function printNodeStatuses(lab: Lab): Promise<void> {
  for (const n of lab.nodes) {
    out(`\n== ${n.name}: tabbyctl node status\n`);
    const st = await lab.agentStatus(n.name);
    out(st ? renderNodeStatus(st) : 'tabby-node process is not running.\n');
  }
}

interface UpArgs extends CommonArgs {
  nodes: number;
  mode: string;
  ipv6: boolean;
  'route-reflectors': number;
  mesh?: boolean;
  pods: number;
  timeout: number;
  'ping-pairs': number;
  'ping-parallel': number;
  'policy-demo'?: boolean;
}

/** Up to this many pods the ping results are drawn as a matrix; beyond it, a summary and the failures. */
const MATRIX_MAX_PODS = 12;

const upCommand: CommandModule<object, UpArgs> = {
  command: 'up',
  describe: 'create the lab: nodes, tabby-node per node, pods, then BGP status and a pod-to-pod ping matrix',
  builder: (y) =>
    common(y)
      .option('nodes', { type: 'number', default: 3, describe: 'number of tabby nodes' })
      .option('mode', {
        type: 'string',
        default: 'auto',
        choices: ['auto', 'routed', 'vxlan', 'ipip', 'crosssubnet'],
        describe: 'encapsulation (auto: routed — every node shares one subnet, pod routes come from BGP)',
      })
      .option('ipv6', {
        type: 'boolean',
        default: false,
        describe:
          'dual stack: IPv6 underlay, IPv6 BGP sessions, an IPv6 pool (/122 blocks; over vxlan-v6.calico with --mode vxlan, crosssubnet), pods with an IPv6 address too',
      })
      .option('route-reflectors', {
        type: 'number',
        default: 0,
        describe: 'route-reflector nodes (tabby-node --mode route-reflector); the mesh is off with them',
      })
      .option('mesh', { type: 'boolean', describe: 'node-to-node mesh (default: on, off with route reflectors)' })
      .option('pods', { type: 'number', default: 1, describe: 'pods per node' })
      .option('timeout', {
        type: 'number',
        default: 90,
        describe: 'seconds to wait for convergence (sessions Established, every block in every kernel)',
      })
      .option('ping-pairs', {
        type: 'number',
        default: 400,
        describe: 'ping every pod pair up to this many pairs, beyond it a sample spread over every pod (0: all)',
      })
      .option('ping-parallel', { type: 'number', default: 8, describe: 'pings in flight at once' })
      .option('policy-demo', {
        type: 'boolean',
        describe: 'then pods web, client, other in namespace demo and one policy: explain and pings show it working',
      }) as Argv<UpArgs>,
  handler: async (argv) => {
    const t0 = Date.now();
    const lab = await createLab({
      nodes: argv.nodes,
      mode: argv.mode as LabMode | 'auto',
      routeReflectors: argv['route-reflectors'],
      ipv6: argv.ipv6,
      ...(argv.mesh !== undefined ? { mesh: argv.mesh } : {}),
      stateDir: argv['state-dir'],
      prefix: argv.prefix,
    });
    out(describeLab(lab));
    let failed = false;
    if (!agentMainPath()) {
      out('\ntabby-node is not built (dist/src/agent/main.js): the lab runs without agents — no BGP, no routes between nodes.\n');
    } else {
      out(
        `\nwaiting until the cluster check says converged — every BGP session Established, every block in every kernel (up to ${argv.timeout} s)…\n`,
      );
      const w = await waitConverged(lab, {
        timeoutMs: argv.timeout * 1000,
        onProgress: (r, ms) => out(`  ${(ms / 1000).toFixed(0)} s: ${progressLine(r)}\n`),
      });
      if (w.ok) out(`converged after ${((Date.now() - t0) / 1000).toFixed(1)} s: ${w.report ? progressLine(w.report) : ''}\n`);
      else {
        failed = true;
        out(`not converged after ${(w.elapsedMs / 1000).toFixed(0)} s${w.report ? ` (${progressLine(w.report)})` : ''}:\n`);
        for (const d of w.dead) out(`  ${d}\n`);
        for (const f of (w.report?.findings ?? []).slice(0, 20)) out(`  ${f.node}: ${f.detail}\n`);
        if ((w.report?.findings.length ?? 0) > 20) out(`  … ${w.report!.findings.length - 20} more (tabbyctl cluster status)\n`);
        out(`  logs: ${path.join(lab.stateDir, 'nodes', '<node>', 'agent.log')}\n`);
      }
      if (lab.nodes.length <= MATRIX_MAX_PODS) await printNodeStatuses(lab);
    }
    const workers = lab.nodes.filter((n) => n.role === 'node');
    try {
      for (const n of workers)
        for (let i = 1; i <= argv.pods; i++) await lab.addPod(n.name, argv.pods === 1 ? `pod-${n.ordinal}` : `pod-${n.ordinal}-${i}`);
    } catch (err) {
      failed = true;
      out(`\ncannot create pods: ${(err as Error).message}\n`);
    }
    if (lab.pods.length > 0) {
      const v6 = !!lab.state.pool6Cidr;
      if (lab.pods.length <= MATRIX_MAX_PODS)
        out(
          `\n${renderTable(
            ['POD', 'NODE', 'IP', ...(v6 ? ['IPV6'] : [])],
            lab.pods.map((p) => [p.name, p.node, p.ip, ...(v6 ? [p.ip6 ?? ''] : [])]),
          )}\n`,
        );
      for (const family of v6 ? ([4, 6] as const) : ([4] as const)) {
        const plan = planPairs(
          lab.pods.map((p) => ({ name: p.name, ip: family === 6 ? (p.ip6 ?? '') : p.ip })),
          argv['ping-pairs'],
        );
        if (v6) out(`\nIPv${family}:`);
        out(
          `\npinging ${plan.pairs.length}${plan.sampled ? ` of ${plan.total} pod pairs (a sample: every pod sends and answers ${Math.round(plan.pairs.length / lab.pods.length)}; --ping-pairs 0 for all)` : ' pod pairs'}, ${argv['ping-parallel']} at a time…\n`,
        );
        let lastShown = Date.now();
        const results = await lab.pingMatrix(10_000, {
          pairs: plan.pairs,
          concurrency: argv['ping-parallel'],
          onResult: (_r, done) => {
            if (Date.now() - lastShown >= 5000) {
              lastShown = Date.now();
              out(`  ${done}/${plan.pairs.length} pinged\n`);
            }
          },
        });
        const bad = results.filter((r) => !r.ok);
        if (lab.pods.length <= MATRIX_MAX_PODS && !plan.sampled)
          out(
            `\npod-to-pod ${v6 ? `IPv${family} ` : ''}ping matrix:\n${renderPingMatrix(
              lab.pods.map((p) => p.name),
              results,
            )}\n`,
          );
        else for (const r of bad.slice(0, 20)) out(`  FAIL ${r.from} -> ${r.to} (${r.toIp})\n`);
        if (bad.length > 0) failed = true;
        out(
          `${results.length - bad.length}/${results.length} pod pairs reach each other${v6 ? ` over IPv${family}` : ''}${plan.sampled ? ' (sampled)' : ''}\n`,
        );
      }
    }
    if (argv['policy-demo'] && !failed && agentMainPath()) failed = !(await policyDemo(lab, out));
    out(
      `\nlab up in ${((Date.now() - t0) / 1000).toFixed(1)} s. Try: tabbyctl lab exec ${lab.pods[0]?.name ?? workers[0]?.name ?? 'node-1'} -- ip route; tabbyctl lab down\n`,
    );
    if (failed) process.exitCode = 1;
  },
};

const downCommand: CommandModule<object, CommonArgs> = {
  command: 'down',
  describe: 'remove everything the lab created: processes, namespaces <prefix>-*, the state directory',
  builder: (y) => common(y),
  handler: async (argv) => {
    const r = await destroyLab({ prefix: argv.prefix, stateDir: argv['state-dir'] });
    out(
      `lab down: stopped ${r.processes} process(es), deleted ${r.namespaces.length} namespace(s)${r.namespaces.length ? ` (${r.namespaces.join(', ')})` : ''}, removed ${argv['state-dir']}\n`,
    );
  },
};

interface StatusArgs extends CommonArgs {
  output: string;
}

const statusCommand: CommandModule<object, StatusArgs> = {
  command: 'status',
  describe: "the lab's nodes, agents, pods and each node's BGP status",
  builder: (y) =>
    common(y).option('output', { alias: 'o', type: 'string', choices: ['text', 'json'], default: 'text' }) as Argv<StatusArgs>,
  handler: async (argv) => {
    const lab = openOrFail(argv['state-dir']);
    if (argv.output === 'json') {
      const statuses: Record<string, unknown> = {};
      for (const n of lab.nodes) statuses[n.name] = (await lab.agentStatus(n.name)) ?? null;
      out(`${JSON.stringify({ ...lab.state, agentStatus: statuses }, null, 2)}\n`);
      return;
    }
    out(describeLab(lab));
    await printNodeStatuses(lab);
  },
};

interface ExecArgs extends CommonArgs {
  target: string;
  cmd?: string[];
}

const execCommand: CommandModule<object, ExecArgs> = {
  command: 'exec <target> [cmd..]',
  describe: "run a command in a lab node's or pod's network namespace: tabbyctl lab exec node-1 -- ip route",
  builder: (y) =>
    common(y)
      .positional('target', { type: 'string', describe: 'node name, pod name, underlay or router' })
      .parserConfiguration({ 'populate--': true }) as unknown as Argv<ExecArgs>,
  handler: async (argv) => {
    const lab = openOrFail(argv['state-dir']);
    const rest = [...(argv.cmd ?? []), ...(((argv as unknown as Record<string, unknown>)['--'] as string[] | undefined) ?? [])].map(String);
    if (rest.length === 0) throw new Error('name a command: tabbyctl lab exec <node|pod> -- <command> [args…]');
    const ns = lab.netnsOf(argv.target);
    const [cmd, ...args] = resolveCommand(rest);
    const child = spawnIn(ns, cmd!, args, { stdio: 'inherit', env: lab.execEnv(argv.target) });
    const code = await new Promise<number>((resolve) => {
      child.on('error', (e) => {
        process.stderr.write(`tabbyctl lab exec: ${e.message}\n`);
        resolve(127);
      });
      child.on('close', (c, sig) => resolve(c ?? (sig ? 128 : 1)));
    });
    process.exitCode = code;
  },
};

interface EnvArgs extends CommonArgs {
  node?: string;
}

const envCommand: CommandModule<object, EnvArgs> = {
  command: 'env [node]',
  describe: 'print shell exports for the lab\'s datastore (and a node\'s agent): eval "$(tabbyctl lab env node-1)"',
  builder: (y) =>
    common(y).positional('node', {
      type: 'string',
      describe: 'a lab node: also its TABBY_STATE_DIR (node status) and NODENAME',
    }) as unknown as Argv<EnvArgs>,
  handler: (argv) => {
    const lab = openOrFail(argv['state-dir']);
    if (argv.node) lab.node(argv.node);
    out(renderEnvExports(lab.state, argv.node));
  },
};

interface AddNodeArgs extends CommonArgs {
  name: string;
  subnet?: string;
}

const addNodeCommand: CommandModule<object, AddNodeArgs> = {
  command: 'add-node <name>',
  describe: 'add a node (namespace + tabby-node) to the running lab',
  builder: (y) =>
    common(y)
      .positional('name', { type: 'string' })
      .option('subnet', { type: 'string', choices: ['a', 'b'] }) as unknown as Argv<AddNodeArgs>,
  handler: async (argv) => {
    const lab = openOrFail(argv['state-dir']);
    const n = await lab.addNode(argv.name, argv.subnet ? { subnet: argv.subnet as 'a' | 'b' } : {});
    out(`added ${n.name}: netns ${n.netns}, ${n.address}${n.agent ? `, tabby-node pid ${n.agent.pid}` : ''}\n`);
  },
};

interface NameArgs extends CommonArgs {
  name: string;
}

const removeNodeCommand: CommandModule<object, NameArgs> = {
  command: 'remove-node <name>',
  describe: "stop a node's agent, delete its namespace, pods and Node resource",
  builder: (y) => common(y).positional('name', { type: 'string' }) as unknown as Argv<NameArgs>,
  handler: async (argv) => {
    const lab = openOrFail(argv['state-dir']);
    await lab.removeNode(argv.name);
    out(`removed ${argv.name}\n`);
  },
};

interface AddPodArgs extends CommonArgs {
  node: string;
  name: string;
  namespace?: string;
  labels?: string;
}

const addPodCommand: CommandModule<object, AddPodArgs> = {
  command: 'add-pod <node> <name>',
  describe: 'create a pod on a lab node through the tabby CNI plugin',
  builder: (y) =>
    common(y)
      .positional('node', { type: 'string' })
      .positional('name', { type: 'string' })
      .option('namespace', { type: 'string', describe: 'the pod\'s Kubernetes namespace (default "default")' })
      .option('labels', { type: 'string', describe: 'pod labels k=v,k2=v2 (set on its WorkloadEndpoint)' }) as unknown as Argv<AddPodArgs>,
  handler: async (argv) => {
    const lab = openOrFail(argv['state-dir']);
    const p = await lab.addPod(argv.node, argv.name, {
      ...(argv.namespace ? { namespace: argv.namespace } : {}),
      ...(argv.labels ? { labels: parseLabels(argv.labels) } : {}),
    });
    out(`pod ${argv.name} on ${argv.node}: ${p.ip} (netns ${p.netns})\n`);
  },
};

export const labCommand: CommandModule = {
  command: 'lab <command>',
  describe: 'the local lab: tabby nodes as network namespaces on this machine (root)',
  builder: (y) =>
    y
      .command(upCommand as CommandModule)
      .command(downCommand as CommandModule)
      .command(statusCommand as CommandModule)
      .command(execCommand as CommandModule)
      .command(envCommand as CommandModule)
      .command(addNodeCommand as CommandModule)
      .command(removeNodeCommand as CommandModule)
      .command(addPodCommand as CommandModule)
      .demandCommand(1, 'name a lab command: up, down, status, exec, env, add-node, remove-node, add-pod'),
  handler: () => {
    /* subcommands only */
  },
};
