// tabbyctl lab up|down|status|exec|add-node|remove-node|add-pod — the local lab (src/lab): N tabby
// nodes as network namespaces on this machine, one tabby-node each, pods through the real CNI plugin.
// Rendering only; the mechanics live in src/lab.
import type { Argv, CommandModule } from 'yargs';
import path from 'node:path';
import {
  createLab, destroyLab, Lab, agentMainPath, DEFAULT_LAB_PREFIX, DEFAULT_LAB_STATE_DIR,
  type LabMode, type PingResult,
} from '../../lab/lab.js';
import { spawnIn } from '../../lab/netns.js';
import { SUBNETS } from '../../lab/topology.js';
import { renderNodeStatus, renderTable } from './node.js';

interface CommonArgs { 'state-dir': string; prefix: string }

const common = <T>(y: Argv<T>): Argv<T & CommonArgs> => y
  .option('state-dir', { type: 'string', default: process.env.TABBY_LAB_DIR ?? DEFAULT_LAB_STATE_DIR, describe: 'the lab\'s state directory [env TABBY_LAB_DIR]' })
  .option('prefix', { type: 'string', default: DEFAULT_LAB_PREFIX, describe: 'name prefix of everything the lab creates' }) as Argv<T & CommonArgs>;

// `tabbyctl lab status | head` closes stdout early: stop quietly instead of crashing on EPIPE.
let epipeHandled = false;
const out = (s: string): void => {
  if (!epipeHandled) {
    epipeHandled = true;
    process.stdout.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0); else throw e; });
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
    `BGP: node-to-node mesh ${s.meshEnabled ? 'on' : 'off'}${s.nodes.some((n) => n.role === 'route-reflector') ? `, route reflectors ${s.nodes.filter((n) => n.role === 'route-reflector').map((n) => n.name).join(', ')}` : ''}; pool ${s.poolCidr}`,
    `underlay: netns ${s.underlayNetns} (bridge${s.crossSubnet ? `s br-a ${SUBNETS.a.cidr}, br-b ${SUBNETS.b.cidr}` : ` br-a ${SUBNETS.a.cidr}`}); default gateway: netns ${s.routerNetns}${s.crossSubnet ? ', the only path between the subnets' : ''}; the root namespace is not touched`,
    '',
    renderTable(['NODE', 'ROLE', 'NETNS', 'ADDRESS', 'AGENT'], s.nodes.map((n) => [
      n.name, n.role, n.netns, n.address, n.agent ? `${lab.agentRunning(n.name) ? 'running' : 'DEAD'} pid ${n.agent.pid}` : 'not started',
    ])),
  ];
  if (s.pods.length > 0) lines.push('', renderTable(['POD', 'NODE', 'NETNS', 'IP'], s.pods.map((p) => [p.name, p.node, p.netns, p.ip])));
  return `${lines.join('\n')}\n`;
}

async function printNodeStatuses(lab: Lab): Promise<void> {
  for (const n of lab.nodes) {
    out(`\n== ${n.name}: tabbyctl node status\n`);
    const st = await lab.agentStatus(n.name);
    out(st ? renderNodeStatus(st) : 'tabby-node process is not running.\n');
  }
}

interface UpArgs extends CommonArgs { nodes: number; mode: string; 'route-reflectors': number; mesh?: boolean; pods: number; timeout: number }

const upCommand: CommandModule<object, UpArgs> = {
  command: 'up',
  describe: 'create the lab: nodes, tabby-node per node, pods, then BGP status and a pod-to-pod ping matrix',
  builder: (y) => common(y)
    .option('nodes', { type: 'number', default: 3, describe: 'number of tabby nodes' })
    .option('mode', { type: 'string', default: 'auto', choices: ['auto', 'routed', 'vxlan', 'ipip', 'crosssubnet'], describe: 'encapsulation (auto: IPIP when the kernel has ipip, else VXLAN)' })
    .option('route-reflectors', { type: 'number', default: 0, describe: 'route-reflector nodes (tabby-node --mode route-reflector); the mesh is off with them' })
    .option('mesh', { type: 'boolean', describe: 'node-to-node mesh (default: on, off with route reflectors)' })
    .option('pods', { type: 'number', default: 1, describe: 'pods per node' })
    .option('timeout', { type: 'number', default: 90, describe: 'seconds to wait for BGP sessions' }) as Argv<UpArgs>,
  handler: async (argv) => {
    const t0 = Date.now();
    const lab = await createLab({
      nodes: argv.nodes, mode: argv.mode as LabMode | 'auto', routeReflectors: argv['route-reflectors'],
      ...(argv.mesh !== undefined ? { mesh: argv.mesh } : {}), stateDir: argv['state-dir'], prefix: argv.prefix,
    });
    out(describeLab(lab));
    let failed = false;
    if (!agentMainPath()) {
      out('\ntabby-node is not built (dist/src/agent/main.js): the lab runs without agents — no BGP, no routes between nodes.\n');
    } else {
      out(`\nwaiting for BGP sessions (up to ${argv.timeout} s)…\n`);
      const w = await lab.waitForBgp(argv.timeout * 1000);
      if (w.ok) out(`all BGP sessions Established after ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
      else { failed = true; out(`BGP not up after ${argv.timeout} s: ${w.pending.join(', ')} (logs: ${path.join(lab.stateDir, 'nodes', '<node>', 'agent.log')})\n`); }
      await printNodeStatuses(lab);
    }
    const workers = lab.nodes.filter((n) => n.role === 'node');
    try {
      for (const n of workers) for (let i = 1; i <= argv.pods; i++) await lab.addPod(n.name, argv.pods === 1 ? `pod-${n.ordinal}` : `pod-${n.ordinal}-${i}`);
    } catch (err) {
      failed = true;
      out(`\ncannot create pods: ${(err as Error).message}\n`);
    }
    if (lab.pods.length > 0) {
      out(`\n${renderTable(['POD', 'NODE', 'IP'], lab.pods.map((p) => [p.name, p.node, p.ip]))}\n`);
      const results = await lab.pingMatrix(10_000);
      out(`\npod-to-pod ping matrix:\n${renderPingMatrix(lab.pods.map((p) => p.name), results)}\n`);
      const bad = results.filter((r) => !r.ok).length;
      if (bad > 0) failed = true;
      out(`${results.length - bad}/${results.length} pod pairs reach each other\n`);
    }
    out(`\nlab up in ${((Date.now() - t0) / 1000).toFixed(1)} s. Try: tabbyctl lab exec ${lab.pods[0]?.name ?? workers[0]?.name ?? 'node-1'} -- ip route; tabbyctl lab down\n`);
    if (failed) process.exitCode = 1;
  },
};

const downCommand: CommandModule<object, CommonArgs> = {
  command: 'down',
  describe: 'remove everything the lab created: processes, namespaces <prefix>-*, the state directory',
  builder: (y) => common(y),
  handler: async (argv) => {
    const r = await destroyLab({ prefix: argv.prefix, stateDir: argv['state-dir'] });
    out(`lab down: stopped ${r.processes} process(es), deleted ${r.namespaces.length} namespace(s)${r.namespaces.length ? ` (${r.namespaces.join(', ')})` : ''}, removed ${argv['state-dir']}\n`);
  },
};

interface StatusArgs extends CommonArgs { output: string }

const statusCommand: CommandModule<object, StatusArgs> = {
  command: 'status',
  describe: 'the lab\'s nodes, agents, pods and each node\'s BGP status',
  builder: (y) => common(y).option('output', { alias: 'o', type: 'string', choices: ['text', 'json'], default: 'text' }) as Argv<StatusArgs>,
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

interface ExecArgs extends CommonArgs { target: string; cmd?: string[] }

const execCommand: CommandModule<object, ExecArgs> = {
  command: 'exec <target> [cmd..]',
  describe: 'run a command in a lab node\'s or pod\'s network namespace: tabbyctl lab exec node-1 -- ip route',
  builder: (y) => common(y).positional('target', { type: 'string', describe: 'node name, pod name, underlay or router' }).parserConfiguration({ 'populate--': true }) as unknown as Argv<ExecArgs>,
  handler: async (argv) => {
    const lab = openOrFail(argv['state-dir']);
    const rest = [...(argv.cmd ?? []), ...(((argv as unknown as Record<string, unknown>)['--'] as string[] | undefined) ?? [])].map(String);
    if (rest.length === 0) throw new Error('name a command: tabbyctl lab exec <node|pod> -- <command> [args…]');
    const ns = lab.netnsOf(argv.target);
    const node = lab.nodes.find((n) => n.name === argv.target);
    const env = node ? { ...process.env, TABBY_STATE_DIR: path.join(lab.stateDir, 'nodes', node.name) } : process.env;
    const child = spawnIn(ns, rest[0]!, rest.slice(1), { stdio: 'inherit', env });
    const code = await new Promise<number>((resolve) => {
      child.on('error', (e) => { process.stderr.write(`tabbyctl lab exec: ${e.message}\n`); resolve(127); });
      child.on('close', (c, sig) => resolve(c ?? (sig ? 128 : 1)));
    });
    process.exitCode = code;
  },
};

interface AddNodeArgs extends CommonArgs { name: string; subnet?: string }

const addNodeCommand: CommandModule<object, AddNodeArgs> = {
  command: 'add-node <name>',
  describe: 'add a node (namespace + tabby-node) to the running lab',
  builder: (y) => common(y).positional('name', { type: 'string' }).option('subnet', { type: 'string', choices: ['a', 'b'] }) as unknown as Argv<AddNodeArgs>,
  handler: async (argv) => {
    const lab = openOrFail(argv['state-dir']);
    const n = await lab.addNode(argv.name, argv.subnet ? { subnet: argv.subnet as 'a' | 'b' } : {});
    out(`added ${n.name}: netns ${n.netns}, ${n.address}${n.agent ? `, tabby-node pid ${n.agent.pid}` : ''}\n`);
  },
};

interface NameArgs extends CommonArgs { name: string }

const removeNodeCommand: CommandModule<object, NameArgs> = {
  command: 'remove-node <name>',
  describe: 'stop a node\'s agent, delete its namespace, pods and Node resource',
  builder: (y) => common(y).positional('name', { type: 'string' }) as unknown as Argv<NameArgs>,
  handler: async (argv) => {
    const lab = openOrFail(argv['state-dir']);
    await lab.removeNode(argv.name);
    out(`removed ${argv.name}\n`);
  },
};

interface AddPodArgs extends CommonArgs { node: string; name: string }

const addPodCommand: CommandModule<object, AddPodArgs> = {
  command: 'add-pod <node> <name>',
  describe: 'create a pod on a lab node through the tabby CNI plugin',
  builder: (y) => common(y).positional('node', { type: 'string' }).positional('name', { type: 'string' }) as unknown as Argv<AddPodArgs>,
  handler: async (argv) => {
    const lab = openOrFail(argv['state-dir']);
    const p = await lab.addPod(argv.node, argv.name);
    out(`pod ${argv.name} on ${argv.node}: ${p.ip} (netns ${p.netns})\n`);
  },
};

export const labCommand: CommandModule = {
  command: 'lab <command>',
  describe: 'the local lab: tabby nodes as network namespaces on this machine (root)',
  builder: (y) => y
    .command(upCommand as CommandModule)
    .command(downCommand as CommandModule)
    .command(statusCommand as CommandModule)
    .command(execCommand as CommandModule)
    .command(addNodeCommand as CommandModule)
    .command(removeNodeCommand as CommandModule)
    .command(addPodCommand as CommandModule)
    .demandCommand(1, 'name a lab command: up, down, status, exec, add-node, remove-node, add-pod'),
  handler: () => { /* subcommands only */ },
};
