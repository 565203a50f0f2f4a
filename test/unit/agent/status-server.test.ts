import t from 'tap';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StatusServer, type StatusSource } from '../../../src/agent/status-server.js';
import { computeReadiness } from '../../../src/agent/health.js';
import { HEALTH_PATHS, METRICS_PATH } from '../../../src/agent/constants.js';
import type { AgentStatusJson } from '../../../src/agent/status-types.js';

t.test('readiness: each unmet condition is a reason', async (t) => {
  const ok = computeReadiness({
    peers: [{ address: '10.0.0.2', state: 'Established', info: 'Established' }],
    dataplaneInSync: true,
    datastoreUp: true,
    problems: [],
  });
  t.same(ok, { ready: true, reasons: [], datastore: 'up', dataplaneInSync: true, bgp: { configured: 1, established: 1 } });
  t.equal(computeReadiness({ peers: [], datastoreUp: true, problems: [] }).ready, true, 'no peers configured: ready');
  const bad = computeReadiness({
    peers: [{ address: '10.0.0.2', state: 'Active', info: 'Active Socket: Connection refused' }],
    dataplaneInSync: false,
    datastoreUp: false,
    datastoreError: 'connect ECONNREFUSED',
    problems: ['kernel has no ipip support: use vxlanMode or ipipMode Never'],
  });
  t.equal(bad.ready, false);
  t.same(bad.reasons, [
    'BGP not established with 10.0.0.2: Active Socket: Connection refused',
    'dataplane not in sync: kernel routes still being programmed',
    'datastore down: connect ECONNREFUSED',
    'kernel has no ipip support: use vxlanMode or ipipMode Never',
  ]);
  t.equal(bad.datastore, 'down');
});

const get = (opts: http.RequestOptions): Promise<{ status: number; text: string }> =>
  new Promise((resolve, reject) => {
    http
      .get(opts, (res) => {
        let s = '';
        res.on('data', (c) => {
          s += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: s }));
      })
      .on('error', reject);
  });

t.test('serves liveness/readiness/status over HTTP and the unix socket, metrics over HTTP', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tb${process.pid}st-`));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  let ready = true;
  const status: AgentStatusJson = {
    nodeName: 'n1',
    mode: 'node',
    version: '0',
    pid: 1,
    startedAt: new Date().toISOString(),
    address: { ipv4: '10.0.0.1/24' },
    asNumber: 64512,
    routerId: '10.0.0.1',
    peers: [
      {
        address: '10.0.0.2',
        family: 4,
        asn: 64512,
        type: 'node-to-node mesh',
        state: 'Established',
        since: new Date().toISOString(),
        info: 'Established',
        prefixesReceived: 3,
        prefixesAccepted: 2,
      },
      {
        address: '10.0.0.9',
        family: 4,
        asn: 65000,
        type: 'global',
        state: 'Active',
        since: new Date().toISOString(),
        info: 'BFD session down (Control Detection Time Expired)',
        prefixesReceived: 0,
        prefixesAccepted: 0,
        bfd: {
          state: 'Down',
          diag: 'Control Detection Time Expired',
          detectionTimeMs: 900,
          downs: 2,
          lastDownDiag: 'Control Detection Time Expired',
        },
      },
    ],
    routes: [{ dst: '192.168.1.0/26', type: 'blackhole' }],
    blocks: [{ cidr: '192.168.1.0/26', state: 'confirmed' }],
    exports: ['192.168.1.0/26'],
    problems: [],
    readiness: computeReadiness({ peers: [], datastoreUp: true, problems: [] }),
  };
  const source: StatusSource = {
    status: () => status,
    readiness: () => computeReadiness({ peers: [], datastoreUp: ready, problems: [] }),
    liveness: () => ({ live: true, reasons: [] }),
    ipamFigures: () => ({ blocks: 1, addressesAllocated: 5, addressesTotal: 64 }),
  };
  const sock = path.join(dir, 'tabby.sock');
  const srv = new StatusServer(source, {
    healthAddr: { host: '127.0.0.1', port: 0 },
    metricsAddr: { host: '127.0.0.1', port: 0 },
    socketPath: sock,
  });
  await srv.start();
  t.teardown(() => srv.stop());
  const [health, , metrics] = srv.addresses() as [{ port: number }, string, { port: number }];
  const live = await get({ host: '127.0.0.1', port: health.port, path: HEALTH_PATHS.liveness });
  t.equal(live.status, 200);
  let r = await get({ host: '127.0.0.1', port: health.port, path: HEALTH_PATHS.readiness });
  t.equal(r.status, 200);
  ready = false;
  r = await get({ host: '127.0.0.1', port: health.port, path: HEALTH_PATHS.readiness });
  t.equal(r.status, 503);
  t.same(JSON.parse(r.text).reasons, ['datastore down']);
  const s = await get({ socketPath: sock, path: HEALTH_PATHS.status });
  t.equal(s.status, 200);
  t.equal(JSON.parse(s.text).peers[0].address, '10.0.0.2');
  t.equal((await get({ socketPath: sock, path: '/nope' })).status, 404);
  const m = await get({ host: '127.0.0.1', port: metrics.port, path: METRICS_PATH });
  t.equal(m.status, 200);
  t.match(m.text, /tabby_bgp_session_established\{peer="10\.0\.0\.2",type="node-to-node mesh"\} 1/);
  t.match(m.text, /tabby_bfd_session_up\{peer="10\.0\.0\.9",state="Down"\} 0/, 'BFD state in the metrics');
  t.match(m.text, /tabby_bfd_session_downs_total\{peer="10\.0\.0\.9"\} 2/);
  t.notMatch(m.text, /tabby_bfd_session_up\{peer="10\.0\.0\.2"/, 'no BFD series for a peer without BFD');
  t.match(m.text, /tabby_bgp_prefixes_received\{peer="10\.0\.0\.2"\} 3/);
  t.match(m.text, /tabby_ipam_blocks\{state="confirmed"\} 1/);
  t.match(m.text, /tabby_ipam_addresses_allocated 5/);
  // prom-client's default metrics start with the first scrape (status-server.ts): they are in it
  t.match(m.text, /^tabby_node_process_cpu_user_seconds_total \d/m, 'process metrics in the first scrape');
  t.match(m.text, /^tabby_node_nodejs_heap_size_used_bytes \d/m, 'heap metrics in the first scrape');
  t.match(m.text, /tabby_datastore_up 0/);
  t.match(m.text, /tabby_route_sync_duration_seconds_bucket/);
  await srv.stop();
  t.notOk(fs.existsSync(sock), 'socket removed on stop');
});
