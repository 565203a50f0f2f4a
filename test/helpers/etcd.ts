// A real etcd for tests: `const etcd = await startEtcd(t)` starts Debian's etcd (3.4) on 127.0.0.1 with
// random ports and a temporary data dir, and stops it (and removes the dir) in t.teardown.
// `restart()` stops and starts it again on the same ports and data (clients must reconnect);
// `stop()` / `start()` for outage tests. Skip a test when `etcdMissing()` returns a reason.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

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

interface Teardownable { teardown(fn: () => unknown): void }

/** undefined when etcd can be started here, else a one-line reason to skip. */
export function etcdMissing(): string | undefined {
  const r = spawnSync('etcd', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? undefined : 'etcd is not installed (Debian package etcd-server)';
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

const live = new Set<ChildProcess>();
process.once('exit', () => { for (const c of live) c.kill('SIGKILL'); });

export async function startEtcd(t: Teardownable, opts: { name?: string } = {}): Promise<EtcdInstance> {
  const tag = `tb${process.env.TABBY_TEST_RUN ?? process.pid}etcd`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-`));
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const name = opts.name ?? 'tb';
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  let child: ChildProcess | undefined;
  let log = '';

  const args = [
    '--name', name, '--data-dir', path.join(dataDir, 'data'),
    '--listen-client-urls', clientUrl, '--advertise-client-urls', clientUrl,
    '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', `${name}=${peerUrl}`, '--initial-cluster-state', 'new',
    '--log-level', 'warn', '--logger', 'zap',
  ];

  async function start(): Promise<void> {
    if (child) return;
    const c = spawn('etcd', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    live.add(c);
    c.stdout?.on('data', (b: Buffer) => { log += b.toString(); });
    c.stderr?.on('data', (b: Buffer) => { log += b.toString(); });
    c.once('exit', () => { live.delete(c); if (child === c) child = undefined; });
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (!child) throw new Error(`etcd exited during start:\n${log.slice(-2000)}`);
      try {
        const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
        const body = (await res.json()) as { health?: string };
        if (body.health === 'true') return;
      } catch { /* not up yet */ }
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
  });
  await start();
  return {
    endpoints: [clientUrl], clientUrl, dataDir, stop, start,
    restart: async () => { await stop(); await start(); },
    output: () => log,
  };
}
