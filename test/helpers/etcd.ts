// A real etcd for tests: `const etcd = await startEtcd(t)` starts Debian's etcd (3.4) on 127.0.0.1 with
// random ports and a temporary data dir, and stops it (and removes the dir) in t.teardown.
// `restart()` stops and starts it again on the same ports and data (clients must reconnect);
// `stop()` / `start()` for outage tests. Skip a test when `etcdMissing()` returns a reason.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { runTag } from './run-tag.js';

export interface EtcdInstance {
  endpoints: string[];
  clientUrl: string;
  dataDir: string;
  /** Stop the server (SIGTERM, SIGKILL after 5 s). Data stays. */
  stop(): Promise<void>;
  /** Start it again on the same ports with the same data. */
  start(): Promise<void>;
  restart(): Promise<void>;
  /** The server's log so far (for failure messages). */
  output(): string;
}

interface Teardownable {
  teardown(fn: () => unknown): void;
}

/** undefined when etcd can be started here, else a one-line reason to skip. */
export function etcdMissing(): string | undefined {
  const r = spawnSync('etcd', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? undefined : 'etcd is not installed (Debian package etcd-server)';
}

/** n distinct free ports on 127.0.0.1: every one is held until all are picked (so no two are the same). */
export async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const srv = net.createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', resolve);
      });
    }
    return servers.map((srv) => (srv.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((srv) => new Promise((r) => srv.close(r))));
  }
}

export async function freePort(): Promise<number> {
  return (await freePorts(1))[0] as number;
}

const live = new Set<ChildProcess>();
const dirs = new Set<string>();
const killLive = () => {
  for (const c of live) c.kill('SIGKILL');
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
};
process.once('exit', killLive);
// A test process stopped by a timeout (SIGTERM) or ^C must not leave an etcd behind.
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.once(sig, () => {
    killLive();
    process.exit(128 + ({ SIGTERM: 15, SIGINT: 2, SIGHUP: 1 } as const)[sig]);
  });
}

export interface EtcdTls {
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  /** Client certificate used by the health check (and required from clients with clientCertAuth). */
  clientCertFile: string;
  clientKeyFile: string;
  clientCertAuth?: boolean;
}

/** One https GET with the test CA and client certificate; resolves to the body. */
function httpsGet(url: string, tls: EtcdTls): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      url,
      {
        ca: fs.readFileSync(tls.caFile),
        cert: fs.readFileSync(tls.clientCertFile),
        key: fs.readFileSync(tls.clientKeyFile),
        timeout: 1000,
      },
      (res) => {
        let body = '';
        res.on('data', (b: Buffer) => {
          body += b.toString();
        });
        res.on('end', () => resolve(body));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** openssl-made CA, server (127.0.0.1) and client certificates in `dir`; undefined when openssl is missing. */
export function makeTestCerts(dir: string): EtcdTls | undefined {
  if (spawnSync('openssl', ['version']).status !== 0) return undefined;
  const f = (n: string) => path.join(dir, n);
  const run = (args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  };
  fs.writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  fs.writeFileSync(f('client.ext'), 'extendedKeyUsage=clientAuth\n');
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=tabby-test-ca']);
  for (const who of ['server', 'client']) {
    run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=tabby-test-${who}`]);
    run([
      'x509',
      '-req',
      '-in',
      `${who}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${who}.crt`,
      '-days',
      '2',
      '-extfile',
      `${who}.ext`,
    ]);
  }
  return {
    caFile: f('ca.crt'),
    serverCertFile: f('server.crt'),
    serverKeyFile: f('server.key'),
    clientCertFile: f('client.crt'),
    clientKeyFile: f('client.key'),
    clientCertAuth: true,
  };
}

export async function startEtcd(t: Teardownable, opts: { name?: string; tls?: EtcdTls } = {}): Promise<EtcdInstance> {
  const tag = `${runTag()}etcd`;
  // tmpfs when there is one: etcd fsyncs every write, which on a slow CI disk dominates test time.
  const base = fs.existsSync('/dev/shm') && fs.statSync('/dev/shm').isDirectory() ? '/dev/shm' : os.tmpdir();
  const dataDir = fs.mkdtempSync(path.join(base, `${tag}-`));
  dirs.add(dataDir);
  const name = opts.name ?? 'tb';
  const tls = opts.tls;
  let clientUrl = '';
  let peerUrl = '';
  let child: ChildProcess | undefined;
  let log = '';

  const argsNow = (): string[] => [
    '--name',
    name,
    '--data-dir',
    path.join(dataDir, 'data'),
    '--listen-client-urls',
    clientUrl,
    '--advertise-client-urls',
    clientUrl,
    '--listen-peer-urls',
    peerUrl,
    '--initial-advertise-peer-urls',
    peerUrl,
    '--initial-cluster',
    `${name}=${peerUrl}`,
    '--initial-cluster-state',
    'new',
    '--log-level',
    'warn',
    '--logger',
    'zap',
    ...(tls
      ? [
          '--cert-file',
          tls.serverCertFile,
          '--key-file',
          tls.serverKeyFile,
          '--trusted-ca-file',
          tls.caFile,
          ...(tls.clientCertAuth ? ['--client-cert-auth'] : []),
        ]
      : []),
  ];

  async function start(): Promise<void> {
    if (child) return;
    const c = spawn('etcd', argsNow(), { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    live.add(c);
    c.stdout?.on('data', (b: Buffer) => {
      log += b.toString();
    });
    c.stderr?.on('data', (b: Buffer) => {
      log += b.toString();
    });
    c.once('exit', () => {
      live.delete(c);
      if (child === c) child = undefined;
    });
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (!child) throw new Error(`etcd exited during start:\n${log.slice(-2000)}`);
      try {
        const text = tls
          ? await httpsGet(`${clientUrl}/health`, tls)
          : await (await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1000) })).text();
        if ((JSON.parse(text) as { health?: string }).health === 'true') return;
      } catch {
        /* not up yet */
      }
      if (Date.now() > deadline) throw new Error(`etcd did not become healthy within 20 s:\n${log.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async function stop(): Promise<void> {
    const c = child;
    if (!c) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    child = undefined;
  }

  t.teardown(async () => {
    await stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
    dirs.delete(dataDir);
  });
  // The ports were free when picked, but another process can take one before etcd binds it: then
  // etcd exits at once, and a new pair is tried (restart() keeps the pair that worked).
  for (let attempt = 1; ; attempt++) {
    const [clientPort, peerPort] = await freePorts(2);
    clientUrl = `${tls ? 'https' : 'http'}://127.0.0.1:${clientPort}`;
    peerUrl = `http://127.0.0.1:${peerPort}`;
    try {
      await start();
      break;
    } catch (e) {
      if (attempt >= 3 || !/address already in use/.test(log)) throw e;
      log = '';
      fs.rmSync(path.join(dataDir, 'data'), { recursive: true, force: true }); // its member list names the old ports
    }
  }
  return {
    endpoints: [clientUrl],
    clientUrl,
    dataDir,
    stop,
    start,
    restart: async () => {
      await stop();
      await start();
    },
    output: () => log,
  };
}
