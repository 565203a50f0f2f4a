// Which datastore to open, chosen the way calicoctl chooses: flags > environment > config file > defaults.
//   env:  DATASTORE_TYPE (file|etcdv3|memory), TABBY_DATASTORE_DIR, ETCD_ENDPOINTS (comma list),
//         ETCD_CA_CERT_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE, TABBY_CONFIG (path of the config file)
//   file: /etc/tabby/tabbyctl.cfg (or $TABBY_CONFIG), calicoctl's CalicoAPIConfig shape, YAML or JSON:
//         { apiVersion: projectcalico.org/v3, kind: CalicoAPIConfig,
//           spec: { datastoreType, datastoreDir, etcdEndpoints, etcdCACertFile, etcdCertFile, etcdKeyFile } }
import { readBounded } from '../common/bounded-read.js';
import { createRequire } from 'node:module';

// yaml is loaded only when a config file exists (it costs ~50-100 ms of start-up, and the CNI
// plugin, a process per pod, usually has no config file).
const parseYaml = (text: string): unknown => (createRequire(import.meta.url)('yaml') as typeof import('yaml')).parse(text);

export type DatastoreType = 'file' | 'etcdv3' | 'memory';

export interface DatastoreConfig {
  type: DatastoreType;
  /** file backend: the directory (default /var/lib/tabby/datastore). */
  dir?: string;
  /** etcdv3 backend: e.g. ["http://127.0.0.1:2379"]. */
  etcdEndpoints?: string[];
  etcdCaCertFile?: string;
  etcdCertFile?: string;
  etcdKeyFile?: string;
}

/** A real (non-memory) datastore with its directory resolved: what the agent and the CNI installer carry. */
export type NodeDatastoreConfig = DatastoreConfig & { type: 'file' | 'etcdv3'; dir: string };

export const DEFAULT_DATASTORE_DIR = '/var/lib/tabby/datastore';
export const DEFAULT_CONFIG_FILE = '/etc/tabby/tabbyctl.cfg';
export const DEFAULT_ETCD_ENDPOINTS = ['http://127.0.0.1:2379'];

export class DatastoreConfigError extends Error {
  readonly code = 'EDATASTORECONFIG';
  constructor(
    readonly source: string,
    message: string,
  ) {
    super(`${source}: ${message}`);
    this.name = 'DatastoreConfigError';
  }
}

const TYPES: readonly DatastoreType[] = ['file', 'etcdv3', 'memory'];

/** Accepts calicoctl's spellings too ("etcd" → etcdv3). */
export function parseDatastoreType(value: string, source: string): DatastoreType {
  const v = value.trim().toLowerCase();
  if (v === 'etcd' || v === 'etcdv3') return 'etcdv3';
  if (v === 'file' || v === 'memory') return v;
  throw new DatastoreConfigError(source, `datastore type "${value}" is not one of ${TYPES.join(', ')}`);
}

/** "http://a:2379, b:2379" → ["http://a:2379", "http://b:2379"] (a bare host:port gets http://). */
export function parseEndpoints(value: string, source: string): string[] {
  const eps = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (eps.length === 0) throw new DatastoreConfigError(source, 'no etcd endpoint given');
  return eps.map((ep) => {
    const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(ep) ? ep : `http://${ep}`;
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch {
      throw new DatastoreConfigError(source, `etcd endpoint "${ep}" is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new DatastoreConfigError(source, `etcd endpoint "${ep}" must be http:// or https://`);
    }
    return withScheme.replace(/\/+$/, '');
  });
}

type Partialish = Partial<DatastoreConfig>;

function fromEnv(env: NodeJS.ProcessEnv): Partialish {
  const out: Partialish = {};
  if (env.DATASTORE_TYPE) out.type = parseDatastoreType(env.DATASTORE_TYPE, 'DATASTORE_TYPE');
  if (env.TABBY_DATASTORE_DIR) out.dir = env.TABBY_DATASTORE_DIR;
  if (env.ETCD_ENDPOINTS) out.etcdEndpoints = parseEndpoints(env.ETCD_ENDPOINTS, 'ETCD_ENDPOINTS');
  if (env.ETCD_CA_CERT_FILE) out.etcdCaCertFile = env.ETCD_CA_CERT_FILE;
  if (env.ETCD_CERT_FILE) out.etcdCertFile = env.ETCD_CERT_FILE;
  if (env.ETCD_KEY_FILE) out.etcdKeyFile = env.ETCD_KEY_FILE;
  return out;
}

/** Read a CalicoAPIConfig-style file; a missing file is an empty config unless `required`. */
export function readConfigFile(file: string, required = false): Partialish {
  let text: string;
  try {
    text = readBounded(file, 1 << 20).toString('utf8'); // a config file of a few lines: 1 MiB is plenty
  } catch (e) {
    if (!required && (e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new DatastoreConfigError(file, `cannot read: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = text.trim() === '' ? null : parseYaml(text);
  } catch (e) {
    throw new DatastoreConfigError(file, `not YAML/JSON: ${(e as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object') throw new DatastoreConfigError(file, 'expected a mapping');
  const d = doc as Record<string, unknown>;
  const spec = (typeof d.spec === 'object' && d.spec !== null ? d.spec : d) as Record<string, unknown>;
  const str = (k: string): string | undefined => {
    const v = spec[k];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') throw new DatastoreConfigError(file, `spec.${k} must be a string`);
    return v;
  };
  const out: Partialish = {};
  const type = str('datastoreType');
  if (type) out.type = parseDatastoreType(type, `${file}: spec.datastoreType`);
  const dir = str('datastoreDir');
  if (dir) out.dir = dir;
  const eps = spec.etcdEndpoints;
  if (Array.isArray(eps)) out.etcdEndpoints = parseEndpoints(eps.map(String).join(','), `${file}: spec.etcdEndpoints`);
  else if (typeof eps === 'string' && eps !== '') out.etcdEndpoints = parseEndpoints(eps, `${file}: spec.etcdEndpoints`);
  const ca = str('etcdCACertFile');
  if (ca) out.etcdCaCertFile = ca;
  const cert = str('etcdCertFile');
  if (cert) out.etcdCertFile = cert;
  const key = str('etcdKeyFile');
  if (key) out.etcdKeyFile = key;
  return out;
}

const defined = (o: Partialish): Partialish => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partialish;

/** The effective datastore configuration: overrides (flags) > env > config file > defaults. */
export function datastoreConfigFromEnv(env: NodeJS.ProcessEnv = process.env, overrides: Partialish = {}): DatastoreConfig {
  const file = env.TABBY_CONFIG ? readConfigFile(env.TABBY_CONFIG, true) : readConfigFile(DEFAULT_CONFIG_FILE);
  const merged: Partialish = { ...defined(file), ...defined(fromEnv(env)), ...defined(overrides) };
  const type = merged.type ?? 'file';
  if (!TYPES.includes(type)) throw new DatastoreConfigError('datastore type', `"${String(type)}" is not one of ${TYPES.join(', ')}`);
  const cfg: DatastoreConfig = { type };
  if (type === 'file') cfg.dir = merged.dir ?? DEFAULT_DATASTORE_DIR;
  if (type === 'etcdv3') {
    cfg.etcdEndpoints = merged.etcdEndpoints ?? DEFAULT_ETCD_ENDPOINTS;
    if (merged.etcdCaCertFile) cfg.etcdCaCertFile = merged.etcdCaCertFile;
    if (merged.etcdCertFile) cfg.etcdCertFile = merged.etcdCertFile;
    if (merged.etcdKeyFile) cfg.etcdKeyFile = merged.etcdKeyFile;
    if (Boolean(cfg.etcdCertFile) !== Boolean(cfg.etcdKeyFile)) {
      throw new DatastoreConfigError('etcd TLS', 'ETCD_CERT_FILE and ETCD_KEY_FILE must be given together');
    }
  }
  return cfg;
}

/** Datastore settings from a CNI netconf (`datastore_type`, `datastore_dir`, `etcd_endpoints`, …), over env. */
export function datastoreConfigFromNetconf(conf: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): DatastoreConfig {
  const s = (k: string): string | undefined => (typeof conf[k] === 'string' && conf[k] !== '' ? (conf[k] as string) : undefined);
  const o: Partialish = {};
  const t = s('datastore_type');
  if (t) o.type = parseDatastoreType(t, 'netconf datastore_type');
  const d = s('datastore_dir');
  if (d) o.dir = d;
  const e = s('etcd_endpoints');
  if (e) o.etcdEndpoints = parseEndpoints(e, 'netconf etcd_endpoints');
  const ca = s('etcd_ca_cert_file');
  if (ca) o.etcdCaCertFile = ca;
  const c = s('etcd_cert_file');
  if (c) o.etcdCertFile = c;
  const k = s('etcd_key_file');
  if (k) o.etcdKeyFile = k;
  return datastoreConfigFromEnv(env, o);
}
