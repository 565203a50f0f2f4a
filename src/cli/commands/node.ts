// `tabbyctl node status`: what `calicoctl node status` prints, read from the local tabby-node over
// its unix socket ($TABBY_STATE_DIR/tabby.sock, GET /status):
//
//   tabby-node process is running.
//
//   IPv4 BGP status
//   +--------------+-------------------+-------+----------+-------------+
//   | PEER ADDRESS |     PEER TYPE     | STATE |  SINCE   |    INFO     |
//   +--------------+-------------------+-------+----------+-------------+
//   | 10.0.0.2     | node-to-node mesh | up    | 09:12:01 | Established |
//   +--------------+-------------------+-------+----------+-------------+
//
//   IPv6 BGP status
//   No IPv6 peers found.
//
// STATE is BIRD's protocol state (`up` when Established, `start` otherwise), SINCE is the time of day
// when the state changed today and the date before that, INFO is `Established` or the reason.
// Exit status: 0 when every configured peer is Established, 1 when one is not or no agent answers.
import http from 'node:http';
import path from 'node:path';
import type { CommandModule } from 'yargs';
import type { AgentStatusJson, PeerStatusJson } from '../../agent/status-types.js';
import { DEFAULT_STATE_DIR, STATUS_SOCKET_NAME, HEALTH_PATHS } from '../../agent/constants.js';
import { nodeAutodetectCommand } from './node-autodetect.js';
import { nodeDiagsCommand } from './node-diags.js';

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** BIRD's "since": hh:mm:ss today, else YYYY-MM-DD (local time, as BIRD prints it). */
export function formatSince(since: Date, now: Date): string {
  if (Number.isNaN(since.getTime())) return '';
  const sameDay = since.getFullYear() === now.getFullYear() && since.getMonth() === now.getMonth() && since.getDate() === now.getDate();
  return sameDay
    ? `${pad2(since.getHours())}:${pad2(since.getMinutes())}:${pad2(since.getSeconds())}`
    : `${since.getFullYear()}-${pad2(since.getMonth() + 1)}-${pad2(since.getDate())}`;
}

/** A table as Go's tablewriter draws it for calicoctl: centred headers, left-aligned cells. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const center = (s: string, w: number): string => {
    const gap = w - s.length;
    const left = Math.floor(gap / 2);
    return ' '.repeat(left) + s + ' '.repeat(gap - left);
  };
  const out = [line, `|${headers.map((h, i) => ` ${center(h, widths[i]!)} `).join('|')}|`, line];
  for (const r of rows) out.push(`|${widths.map((w, i) => ` ${(r[i] ?? '').padEnd(w)} `).join('|')}|`);
  out.push(line);
  return out.join('\n');
}

function peerRow(p: PeerStatusJson, now: Date): string[] {
  return [
    p.address,
    p.type,
    p.state === 'Established' ? 'up' : 'start',
    formatSince(new Date(p.since), now),
    p.bfd ? `${p.info} (BFD ${p.bfd.state})` : p.info,
  ];
}

/** The whole `node status` text for a running agent. */
export function renderNodeStatus(s: AgentStatusJson, now: Date = new Date()): string {
  const lines: string[] = ['tabby-node process is running.', ''];
  for (const problem of s.problems) lines.push(`WARNING: ${problem}`, '');
  for (const fam of [4, 6] as const) {
    lines.push(`IPv${fam} BGP status`);
    const peers = s.peers.filter((p) => p.family === fam);
    if (peers.length === 0) lines.push(`No IPv${fam} peers found.`);
    else
      lines.push(
        renderTable(
          ['PEER ADDRESS', 'PEER TYPE', 'STATE', 'SINCE', 'INFO'],
          peers.map((p) => peerRow(p, now)),
        ),
      );
    lines.push('');
  }
  if (s.peers.length > 0) {
    // Beyond calicoctl: per-peer prefix counts (accepted = after import filters; see `tabbyctl bgp routes`).
    lines.push('BGP prefixes per peer');
    lines.push(
      renderTable(
        ['PEER ADDRESS', 'RECEIVED', 'ACCEPTED', 'ADVERTISED'],
        s.peers.map((p) => [p.address, String(p.prefixesReceived), String(p.prefixesAccepted), String(p.prefixesAdvertised ?? 0)]),
      ),
    );
    lines.push('');
  }
  return `${lines.join('\n')}\n`;
}

export class AgentNotRunning extends Error {
  readonly code = 'EAGENTNOTRUNNING';
  constructor(
    readonly socketPath: string,
    reason: string,
  ) {
    super(`tabby-node process is not running (no answer on ${socketPath}: ${reason})`);
    this.name = 'AgentNotRunning';
  }
}

/** GET a path from the local agent over its unix socket; resolves with the status code and parsed body. */
export function queryAgent<T = unknown>(socketPath: string, urlPath: string, timeoutMs = 5000): Promise<{ status: number; body: T }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: urlPath, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as T });
        } catch {
          reject(new AgentNotRunning(socketPath, `unexpected answer: ${text.slice(0, 200)}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e: NodeJS.ErrnoException) => {
      const reason =
        e.code === 'ENOENT'
          ? 'the socket does not exist'
          : e.code === 'ECONNREFUSED'
            ? 'connection refused (stale socket)'
            : e.code === 'EACCES'
              ? 'permission denied (run as root)'
              : e.message;
      reject(new AgentNotRunning(socketPath, reason));
    });
  });
}

/** The local agent's status socket: --state-dir, else TABBY_STATE_DIR, else the default state directory. */
export function agentSocketPath(stateDir?: string): string {
  return path.join(stateDir ?? process.env.TABBY_STATE_DIR ?? DEFAULT_STATE_DIR, STATUS_SOCKET_NAME);
}

/** queryAgent for a CLI verb: when the agent does not run, say so on stderr, set exit code 1, resolve undefined. */
export async function queryRunningAgent<T>(socketPath: string, urlPath: string): Promise<{ status: number; body: T } | undefined> {
  try {
    return await queryAgent<T>(socketPath, urlPath);
  } catch (e) {
    if (!(e instanceof AgentNotRunning)) throw e;
    process.stderr.write(`${e.message}\n`);
    process.exitCode = 1;
    return undefined;
  }
}

interface NodeStatusArgs {
  'state-dir'?: string;
  output: string;
}

export const nodeCommand: CommandModule = {
  command: 'node <command>',
  describe: "commands about this node's tabby-node agent",
  builder: (y) =>
    y
      .command<NodeStatusArgs>({
        command: 'status',
        describe: 'BGP peers and health of the tabby-node running on this host (like calicoctl node status)',
        builder: (yy) =>
          yy
            .option('state-dir', {
              type: 'string',
              describe: `tabby-node's state directory [env TABBY_STATE_DIR, default ${DEFAULT_STATE_DIR}]`,
            })
            .option('output', {
              alias: 'o',
              type: 'string',
              choices: ['text', 'json'],
              default: 'text',
              describe: 'output format',
            }) as never,
        handler: async (argv) => {
          const socketPath = agentSocketPath(argv['state-dir']);
          let status: AgentStatusJson;
          try {
            status = (await queryAgent<AgentStatusJson>(socketPath, HEALTH_PATHS.status)).body;
          } catch (e) {
            if (e instanceof AgentNotRunning) {
              process.stdout.write('tabby-node process is not running.\n');
              process.stderr.write(`${e.message}\n`);
              process.exitCode = 1;
              return;
            }
            throw e;
          }
          process.stdout.write(argv.output === 'json' ? `${JSON.stringify(status, null, 2)}\n` : renderNodeStatus(status));
          // Unlike calicoctl (exit 0 whatever the sessions), a configured peer that is not up is a failure.
          const down = status.peers.filter((p) => p.state !== 'Established');
          if (down.length > 0) {
            process.stderr.write(
              `${down.length} of ${status.peers.length} BGP peer(s) not Established: ${down.map((p) => p.address).join(', ')} (tabbyctl bgp diagnose says why)\n`,
            );
            process.exitCode = 1;
          }
        },
      })
      .command(nodeAutodetectCommand as CommandModule)
      .command(nodeDiagsCommand as CommandModule)
      .demandCommand(1, 'name a node command: status, autodetect, diags'),
  handler: () => {
    /* subcommands only */
  },
};
