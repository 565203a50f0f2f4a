#!/usr/bin/env node
// `tabby` — the CNI plugin the container runtime runs for every pod (CNI spec 1.0.0, answers 0.3.x, 0.4.0
// and 1.1.0 configs). The same program is installed as `tabby-ipam` (IPAM only): it knows which one it is
// from TABBY_CNI_PLUGIN_NAME (set by the installer's wrapper), its own file name, or a netconf whose
// type is tabby-ipam. Reads the netconf on stdin and CNI_* from the environment; writes the result or a
// CNI error object on stdout (exit 1 on error); logs to log_file_path, never to stdout.
// Startup is kept short: only the netconf parser loads eagerly; the datastore, IPAM and the dataplane
// are imported when a command needs them.
import fs from 'node:fs';
import { hostNodeName } from '../common/node-name.js';
import path from 'node:path';
import { CNI_ERR, CniError, MAX_NETCONF_BYTES, parseCniEnv, parseNetConf, type NetConf } from './netconf.js';
import { isNetworkNamespace } from './netns.js';
import { runCommand, type Outcome, type PluginDeps, type PluginName, type Wiring } from './plugin.js';
import { fileLogger, nullLogger } from './logger.js';

export { parseNetConf } from './netconf.js';

const DEFAULT_STATE_DIR = '/var/run/tabby';
/** The kubelet gives a CNI call a few minutes; answer well before. */
const COMMAND_TIMEOUT_MS = 90_000;

/** Node name: netconf "nodename", else $TABBY_STATE_DIR/nodename (written by tabby-node), else the hostname. */
export function resolveNodename(conf: NetConf, env: NodeJS.ProcessEnv = process.env): string {
  if (conf.nodename) return conf.nodename;
  const file = path.join(env.TABBY_STATE_DIR || DEFAULT_STATE_DIR, 'nodename');
  try {
    const n = fs.readFileSync(file, 'utf8').trim();
    if (n) return n;
  } catch {
    /* not written (tabby-node not running here): fall back */
  }
  return hostNodeName();
}

function pluginName(argv1: string | undefined, env: NodeJS.ProcessEnv, stdin: Buffer): PluginName {
  if (env.TABBY_CNI_PLUGIN_NAME === 'tabby-ipam') return 'tabby-ipam';
  if (env.TABBY_CNI_PLUGIN_NAME === 'tabby') return 'tabby';
  if (argv1 && path.basename(argv1).replace(/\.js$/, '') === 'tabby-ipam') return 'tabby-ipam';
  try {
    if ((JSON.parse(stdin.toString()) as { type?: unknown }).type === 'tabby-ipam') return 'tabby-ipam';
  } catch {
    /* parsed later */
  }
  return 'tabby';
}

/** Stdin, but at most MAX_NETCONF_BYTES + 1 bytes (parseNetConf refuses more, with a clear error). */
function readStdin(): Buffer {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  let total = 0;
  while (total <= MAX_NETCONF_BYTES) {
    let n: number;
    try {
      n = fs.readSync(0, buf, 0, buf.length, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
        continue;
      } // non-blocking pipe, no data yet
      if (code === 'EOF' || code === 'EBADF') break;
      throw e;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
    total += n;
  }
  return Buffer.concat(chunks);
}

/** The file store the netconf (or DATASTORE_TYPE / TABBY_DATASTORE_DIR) names outright, if it does: then
 *  nothing else can change the configuration (they win over the tabbyctl config file, and a file store
 *  has no other setting), so it is read without that file, the YAML reader or the etcd client. */
export function namedFileStore(c: NetConf, env: NodeJS.ProcessEnv): { type: 'file'; dir: string } | undefined {
  const str = (k: string): string | undefined => (typeof c.raw[k] === 'string' && c.raw[k] !== '' ? (c.raw[k] as string) : undefined);
  const type = (str('datastore_type') ?? env.DATASTORE_TYPE ?? '').trim().toLowerCase();
  const dir = str('datastore_dir') ?? env.TABBY_DATASTORE_DIR;
  return type === 'file' && dir ? { type, dir } : undefined;
}

/** The datastore the netconf names (netconf keys over DATASTORE_TYPE/TABBY_DATASTORE_DIR/ETCD_* env over
 *  the tabbyctl config file). */
async function openDatastoreFor(c: NetConf, env: NodeJS.ProcessEnv): Promise<import('../datastore/types.js').Datastore> {
  const file = namedFileStore(c, env);
  if (file) {
    const { FileDatastore } = await import('../datastore/file.js');
    return new FileDatastore(file.dir);
  }
  const { datastoreConfigFromNetconf, openDatastore } = await import('../datastore/index.js');
  return openDatastore(datastoreConfigFromNetconf(c.raw, env));
}

/** Real dependencies: datastore from the netconf (+ env), IPAM over it, the dataplane's wiring. */
export function realDeps(conf: NetConf | undefined, env: NodeJS.ProcessEnv): PluginDeps {
  const logger = conf
    ? fileLogger(conf.logFilePath, env.TABBY_LOG_LEVEL || conf.logLevel, { component: 'cni', pid: process.pid })
    : nullLogger;
  return {
    logger,
    nodename: (c) => resolveNodename(c, env),
    netnsExists: isNetworkNamespace,
    async openIpam(c) {
      const [ds, { Ipam }] = await Promise.all([openDatastoreFor(c, env), import('../ipam/index.js')]);
      return { ipam: new Ipam(ds, { logger }), close: () => ds.close() };
    },
    async wiring(): Promise<Wiring> {
      const { dataplaneWiring } = await import('./wiring.js');
      return dataplaneWiring();
    },
  };
}

/** One CNI invocation, start to answer: the CNI_* environment and the netconf checked, the command run
 *  within COMMAND_TIMEOUT_MS, any failure turned into a CNI error object. The one path for both the
 *  in-process plugin (main below) and tabby-node's resident CNI server (resident.ts): every input check
 *  and the ADD/DEL code are the same on both. `name` is how the program was called (argv[1] or the
 *  client's name); `depsFor` builds the real dependencies for the parsed netconf. */
export async function executeCni(
  name: string | undefined,
  env: NodeJS.ProcessEnv,
  stdin: Buffer,
  depsFor: (conf: NetConf | undefined) => PluginDeps,
): Promise<Outcome> {
  try {
    const cniEnv = parseCniEnv(env);
    let conf: NetConf | undefined;
    try {
      conf = parseNetConf(stdin);
    } catch {
      conf = undefined; /* runCommand reports it */
    }
    // Keep the event loop alive until the command finishes: a library waiting on an unref'd handle must
    // not let the process end with exit 0 and no result. A command that takes too long gives error 11.
    let keepalive: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      const started = Date.now();
      keepalive = setInterval(() => {
        if (Date.now() - started > COMMAND_TIMEOUT_MS)
          reject(new CniError(CNI_ERR.TRY_AGAIN_LATER, `${cniEnv.command} did not finish within ${COMMAND_TIMEOUT_MS / 1000} s`));
      }, 250);
    });
    try {
      return await Promise.race([runCommand(pluginName(name, env, stdin), cniEnv, stdin, depsFor(conf)), deadline]);
    } finally {
      clearInterval(keepalive);
    }
  } catch (e) {
    const err = e instanceof CniError ? e : new CniError(CNI_ERR.INTERNAL, (e as Error).message);
    let version = '1.0.0';
    try {
      const v = (JSON.parse(stdin.toString()) as { cniVersion?: unknown }).cniVersion;
      if (typeof v === 'string') version = v;
    } catch {
      /* default */
    }
    return { stdout: JSON.stringify(err.toJSON(version)), exitCode: 1 };
  }
}

export async function main(argv: string[] = process.argv, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  // A runtime always gives a pipe; on a terminal (someone trying VERSION by hand) stdin is not read.
  let stdin: Buffer = Buffer.alloc(0);
  try {
    if (!process.stdin.isTTY) stdin = readStdin();
  } catch (e) {
    fs.writeSync(1, `${JSON.stringify(new CniError(CNI_ERR.IO_FAILURE, `cannot read stdin: ${(e as Error).message}`).toJSON('1.0.0'))}\n`);
    return 1;
  }
  const out = await executeCni(argv[1], env, stdin, (conf) => realDeps(conf, env));
  if (out.stdout) fs.writeSync(1, `${out.stdout}\n`);
  return out.exitCode;
}

const invokedDirectly = (() => {
  try {
    return fs.realpathSync(process.argv[1] ?? '') === fs.realpathSync(new URL(import.meta.url).pathname);
  } catch {
    return false;
  }
})();
if (invokedDirectly) {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      fs.writeSync(1, `${JSON.stringify({ cniVersion: '1.0.0', code: CNI_ERR.INTERNAL, msg: String((e as Error)?.message ?? e) })}\n`);
      process.exit(1);
    },
  );
}
