// tabby-node's resident CNI server: answers the `tabby` client executable (src/native/cni_client.c) on
// the unix socket $TABBY_STATE_DIR/cni.sock (mode 0600, root only). Each request is one CNI invocation —
// the client's name, environment and stdin — run through executeCni (main.ts), the very function the
// in-process plugin runs, with warm dependencies: the datastore client and IPAM stay open across
// requests (the agent's own client when the netconf names the agent's datastore), the log file stays
// open, the dataplane wiring module is loaded once. Requests run concurrently; only the datastore's
// compare-and-swap orders them. The handshake (resident-protocol.ts) means a command starts only after
// the client committed to this path ('G'), so it never runs twice; a stopping server answers 'F' and
// the client runs the in-process plugin instead.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Datastore } from '../datastore/types.js';
import type { DatastoreConfig } from '../datastore/config.js';
import type { Ipam } from '../ipam/index.js';
import { executeCni, namedFileStore, resolveNodename } from './main.js';
import { isNetworkNamespace } from './netns.js';
import { fileLogger, nullLogger } from './logger.js';
import type { Logger, PluginDeps, Wiring } from './plugin.js';
import type { NetConf } from './netconf.js';
import { ACCEPT, FALL_BACK, GO, ProtocolError, decodeRequest, encodeAnswer, type ResidentRequest } from './resident-protocol.js';

export const CNI_SOCKET_NAME = 'cni.sock';

export interface ResidentCniOptions {
  socketPath: string;
  /** The agent's own datastore: reused when a netconf names the same one. */
  agentDatastore?: { config: DatastoreConfig; ds: Datastore };
  /** The agent's logger (server events; each command logs to the netconf's log_file_path). */
  logger: Logger;
  /** A client that connects but does not send its request (or 'G') within this is dropped. */
  requestTimeoutMs?: number;
}

interface Store {
  ds: Datastore;
  ipam: Ipam;
  owned: boolean;
}

/** Identity of a datastore (what makes two configs the same store). */
const storeKey = (c: DatastoreConfig): string =>
  JSON.stringify([
    c.type,
    c.type === 'file' ? path.resolve(c.dir ?? '') : '',
    c.etcdEndpoints ?? [],
    c.etcdCaCertFile ?? '',
    c.etcdCertFile ?? '',
    c.etcdKeyFile ?? '',
  ]);

const MAX_LOGGERS = 16;

export class ResidentCniServer {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly inflight = new Set<Promise<void>>();
  private readonly stores = new Map<string, Promise<Store>>();
  private readonly loggers = new Map<string, Logger>();
  private wiring: Promise<Wiring> | undefined;
  private reaper: { close(): Promise<void> } | undefined;
  private stopping = false;
  /** Commands answered (for status and tests). */
  served = 0;

  constructor(private readonly opts: ResidentCniOptions) {}

  async start(): Promise<void> {
    const { socketPath } = this.opts;
    fs.mkdirSync(path.dirname(socketPath), { recursive: true });
    try {
      fs.unlinkSync(socketPath);
    } catch {
      /* absent */
    }
    const server = net.createServer((s) => this.onConnection(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // The socket is created 0600 (umask around bind), so no one but root can connect even for an instant.
      const old = process.umask(0o177);
      try {
        server.listen(socketPath, () => {
          server.off('error', reject);
          resolve();
        });
      } finally {
        process.umask(old);
      }
    });
    fs.chmodSync(socketPath, 0o600);
    server.on('error', (err) => this.opts.logger.error({ err }, 'resident CNI server error'));
    this.server = server;
    this.opts.logger.info({ socket: socketPath }, 'resident CNI server listening');
  }

  /** Stop accepting; waiting clients are told to fall back; commands already running finish (bounded). */
  async stop(waitMs = 10_000): Promise<void> {
    this.stopping = true;
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((r) => server.close(() => r()));
    try {
      fs.unlinkSync(this.opts.socketPath);
    } catch {
      /* gone */
    }
    if (this.inflight.size) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.inflight]),
        new Promise((r) => {
          timer = setTimeout(r, waitMs);
        }),
      ]);
      clearTimeout(timer);
    }
    for (const s of this.sockets) s.destroy();
    await this.reaper?.close(); // the veths DELs retired are deleted before the agent stops
    for (const [, p] of this.stores) {
      const st = await p.catch(() => undefined);
      if (st?.owned) await st.ds.close().catch(() => undefined);
    }
    this.stores.clear();
  }

  private onConnection(sock: net.Socket): void {
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => undefined); // a client that went away: nothing to answer
    sock.setTimeout(this.opts.requestTimeoutMs ?? 10_000, () => sock.destroy());
    let buf: Buffer = Buffer.alloc(0);
    let request: ResidentRequest | undefined;
    const onData = (chunk: Buffer): void => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      try {
        if (!request) {
          const got = decodeRequest(buf);
          if (!got) return;
          request = got.request;
          buf = buf.subarray(got.used);
          const serve = !this.stopping && this.canSee(request);
          sock.write(Buffer.of(serve ? ACCEPT : FALL_BACK));
          if (!serve) {
            sock.end();
            return;
          }
        }
        if (buf.length === 0) return;
        sock.off('data', onData);
        if (buf[0] !== GO) throw new ProtocolError('expected the go byte');
        sock.setTimeout(0);
        this.run(sock, request);
      } catch (e) {
        this.opts.logger.warn({ err: e }, 'resident CNI: dropped a malformed request');
        sock.destroy();
      }
    };
    sock.on('data', onData);
  }

  /** The pod's netns as the runtime named it must be that netns here too (ADD, CHECK; a DEL works without
   *  it), else the in-process plugin on the host does the command:
   *  - an agent in a container with its own mount namespace may see /var/run/netns/<x> as an empty file
   *    (the bind mount did not propagate): the path must be an nsfs inode (same device as our own netns);
   *  - /proc/<pid>/ns/net names a pid of the runtime's pid namespace, which may be another process here. */
  private canSee(req: ResidentRequest): boolean {
    const cmd = req.env.CNI_COMMAND;
    const netns = req.env.CNI_NETNS;
    if ((cmd !== 'ADD' && cmd !== 'CHECK') || !netns) return true;
    if (path.resolve(netns).startsWith('/proc/')) return false;
    try {
      return fs.statSync(netns).dev === fs.statSync('/proc/self/ns/net').dev;
    } catch {
      return false;
    }
  }

  private run(sock: net.Socket, req: ResidentRequest): void {
    const p = executeCni(req.name, req.env, req.stdin, (conf) => this.depsFor(conf, req.env))
      .then(
        (out) => {
          this.served++;
          sock.end(encodeAnswer(out.exitCode, out.stdout ? `${out.stdout}\n` : ''));
        },
        (err: unknown) => {
          // executeCni turns every failure into an answer; this is a bug: let the client fall back.
          this.opts.logger.error({ err }, 'resident CNI: command failed without an answer');
          sock.destroy();
        },
      )
      .finally(() => this.inflight.delete(p));
    this.inflight.add(p);
  }

  /** The plugin's dependencies, warm: the same shapes realDeps (main.ts) builds per process. */
  private depsFor(conf: NetConf | undefined, env: NodeJS.ProcessEnv): PluginDeps {
    const logger = conf ? this.loggerFor(conf.logFilePath, env.TABBY_LOG_LEVEL || conf.logLevel) : nullLogger;
    return {
      logger,
      nodename: (c) => resolveNodename(c, env),
      netnsExists: isNetworkNamespace,
      openIpam: async (c) => ({ ipam: (await this.storeFor(c, env)).ipam, close: async () => undefined }),
      wiring: () => (this.wiring ??= this.loadWiring()),
    };
  }

  /** The dataplane wiring, with a reaper that deletes DEL's veths in batches (workload-reaper.ts);
   *  veths a crashed agent had retired are deleted at once. */
  private async loadWiring(): Promise<Wiring> {
    const [{ dataplaneWiring }, { VethReaper }] = await Promise.all([import('./wiring.js'), import('../dataplane/workload-reaper.js')]);
    const reaper = new VethReaper({ onError: (err) => this.opts.logger.error({ err }, 'deleting retired pod veths failed') });
    this.reaper = reaper;
    await reaper.drain().catch((err: unknown) => this.opts.logger.error({ err }, 'deleting retired pod veths failed'));
    return dataplaneWiring(reaper);
  }

  private loggerFor(file: string, level: string): Logger {
    const key = `${file}\0${level}`;
    let l = this.loggers.get(key);
    if (!l) {
      if (this.loggers.size >= MAX_LOGGERS) return this.opts.logger; // many different log files: the agent's log
      l = fileLogger(file, level, { component: 'cni', pid: process.pid, resident: true });
      this.loggers.set(key, l);
    }
    return l;
  }

  /** One open datastore + IPAM per distinct datastore the netconfs name (normally exactly one: the agent's). */
  private async storeFor(c: NetConf, env: NodeJS.ProcessEnv): Promise<Store> {
    // The usual netconf names its file store: no config file read per command (it was ~1.5 % of the loop).
    const cfg = namedFileStore(c, env) ?? (await import('../datastore/index.js')).datastoreConfigFromNetconf(c.raw, env);
    const key = storeKey(cfg);
    let p = this.stores.get(key);
    if (!p) {
      p = (async () => {
        const { Ipam } = await import('../ipam/index.js');
        const own = this.opts.agentDatastore;
        const ipamLogger = this.opts.logger;
        if (own && storeKey(own.config) === key) return { ds: own.ds, ipam: new Ipam(own.ds, { logger: ipamLogger }), owned: false };
        const { openDatastore } = await import('../datastore/index.js');
        const ds = await openDatastore(cfg);
        return { ds, ipam: new Ipam(ds, { logger: ipamLogger }), owned: true };
      })();
      this.stores.set(key, p);
      p.catch(() => this.stores.delete(key)); // a failed open is retried by the next request
    }
    return p;
  }
}
