import t from 'tap';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderNodeStatus, renderTable, formatSince, queryAgent, AgentNotRunning } from '../../../src/cli/commands/node.js';
import type { AgentStatusJson } from '../../../src/agent/status-types.js';

const now = new Date(2026, 10, 24, 12, 0, 0);
const status: AgentStatusJson = {
  nodeName: 'n1',
  mode: 'node',
  version: '0.1.0',
  pid: 1,
  startedAt: now.toISOString(),
  address: { ipv4: '172.17.8.101/24' },
  asNumber: 64512,
  routerId: '172.17.8.101',
  peers: [
    {
      address: '172.17.8.102',
      family: 4,
      asn: 64512,
      type: 'node-to-node mesh',
      state: 'Established',
      since: new Date(2026, 10, 24, 9, 30, 4).toISOString(),
      info: 'Established',
      prefixesReceived: 1,
      prefixesAccepted: 1,
    },
    {
      address: '172.17.8.103',
      family: 4,
      asn: 65000,
      type: 'global',
      state: 'Active',
      since: new Date(2026, 10, 23, 23, 0, 0).toISOString(),
      info: 'Active Socket: Connection refused',
      prefixesReceived: 0,
      prefixesAccepted: 0,
    },
  ],
  routes: [],
  blocks: [],
  exports: [],
  problems: [],
  readiness: { ready: false, reasons: [], datastore: 'up', dataplaneInSync: true, bgp: { configured: 2, established: 1 } },
};

t.test('renders exactly like calicoctl node status', async (t) => {
  t.equal(
    renderNodeStatus(status, now),
    [
      'tabby-node process is running.',
      '',
      'IPv4 BGP status',
      '+--------------+-------------------+-------+------------+-----------------------------------+',
      '| PEER ADDRESS |     PEER TYPE     | STATE |   SINCE    |               INFO                |',
      '+--------------+-------------------+-------+------------+-----------------------------------+',
      '| 172.17.8.102 | node-to-node mesh | up    | 09:30:04   | Established                       |',
      '| 172.17.8.103 | global            | start | 2026-11-23 | Active Socket: Connection refused |',
      '+--------------+-------------------+-------+------------+-----------------------------------+',
      '',
      'IPv6 BGP status',
      'No IPv6 peers found.',
      '',
      'BGP prefixes per peer',
      '+--------------+----------+----------+------------+',
      '| PEER ADDRESS | RECEIVED | ACCEPTED | ADVERTISED |',
      '+--------------+----------+----------+------------+',
      '| 172.17.8.102 | 1        | 1        | 0          |',
      '| 172.17.8.103 | 0        | 0        | 0          |',
      '+--------------+----------+----------+------------+',
      '',
      '',
    ].join('\n'),
  );
});

t.test('calicoctl header centring (tablewriter: extra space on the right)', async (t) => {
  t.equal(
    renderTable(
      ['PEER ADDRESS', 'PEER TYPE', 'STATE', 'SINCE', 'INFO'],
      [['172.17.8.102', 'node-to-node mesh', 'up', '23:30:04', 'Established']],
    ).split('\n')[1],
    '| PEER ADDRESS |     PEER TYPE     | STATE |  SINCE   |    INFO     |',
  );
});

t.test('no peers at all, and problems shown first', async (t) => {
  const out = renderNodeStatus({ ...status, peers: [], problems: ['kernel has no ipip support: use vxlanMode or ipipMode Never'] }, now);
  t.match(
    out,
    /^tabby-node process is running\.\n\nWARNING: kernel has no ipip support: use vxlanMode or ipipMode Never\n\nIPv4 BGP status\nNo IPv4 peers found\.\n\nIPv6 BGP status\nNo IPv6 peers found\.\n/,
  );
});

t.test('formatSince', async (t) => {
  t.equal(formatSince(new Date(2026, 10, 24, 0, 0, 1), now), '00:00:01');
  t.equal(formatSince(new Date(2025, 0, 2, 0, 0, 1), now), '2025-01-02');
});

t.test('reads the agent over its unix socket; clear message when it is not running', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tb${process.pid}ns-`));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const sock = path.join(dir, 'tabby.sock');
  await t.rejects(queryAgent(sock, '/status'), AgentNotRunning);
  await t.rejects(queryAgent(sock, '/status'), /tabby-node process is not running .*the socket does not exist/);
  const srv = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(req.url === '/status' ? status : {}));
  });
  await new Promise<void>((r) => srv.listen(sock, r));
  t.teardown(() => srv.close());
  const got = await queryAgent<AgentStatusJson>(sock, '/status');
  t.equal(got.status, 200);
  t.same(
    got.body.peers.map((p) => p.address),
    ['172.17.8.102', '172.17.8.103'],
  );

  // The real CLI, as a user runs it.
  const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src/cli/main.js');
  const run = (d: string): Promise<{ code: number | null; stdout: string }> =>
    new Promise((resolve) => {
      import('node:child_process').then(({ execFile }) => {
        execFile(process.execPath, [cli, 'node', 'status', '--state-dir', d], (err, stdout) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout }),
        );
      });
    });
  const ok = await run(dir);
  t.equal(ok.code, 1, 'a configured peer (172.17.8.103, Active) is not up: exit 1, unlike calicoctl');
  t.match(ok.stdout, /^tabby-node process is running\.\n\nIPv4 BGP status\n\+-/);
  const missing = await run(path.join(dir, 'nowhere'));
  t.equal(missing.code, 1);
  t.equal(missing.stdout, 'tabby-node process is not running.\n');
});
