// tabbyctl get | create | apply | replace | delete — calicoctl's resource commands over tabby's datastore.
// Input: `-f file` (YAML or JSON, several documents, a `List`, `-` for stdin) or `kind [name]`
// (calicoctl's aliases: ippool/ippools/pool, bgppeer, bgpconfig/bgpconfiguration, node).
// All-or-nothing: every document is validated and checked against the store first (exists / missing /
// stale resourceVersion / overlapping pools); if any is bad, each bad one is named and nothing changes.
// Datastore: --datastore-type/--datastore-dir/--etcd-endpoints/… override the environment and the
// config file (see src/datastore/config.ts).
import { InputTooLarge, readBounded } from '../../common/bounded-read.js';
import type { Argv, CommandModule } from 'yargs';
import { parseAllDocuments, visit, isScalar } from 'yaml';
import { cidrsOverlap, parseCidr } from '../../common/ip.js';
import {
  datastoreConfigFromEnv,
  openDatastore,
  parseEndpoints,
  parseDatastoreType,
  type Datastore,
  type DatastoreConfig,
} from '../../datastore/index.js';
import {
  ResourceStore,
  resolveKind,
  validateResource,
  formatAsnDot,
  KINDS,
  ValidationError,
  storeName,
  isNamespaced,
  type Resource,
  type ResourceKind,
} from '../../datastore/resources.js';
import { echo } from '../../common/echo.js';
import { policyRows } from './policy-rows.js';
import { parseOutputFormat, renderTable, toJson, toYaml, type OutputFormat } from '../output.js';
import { printDryRun } from './dry-run.js';

// ------------------------------------------------------------------ datastore flags (reusable)

export interface DatastoreFlags {
  config?: string;
  'datastore-type'?: string;
  'datastore-dir'?: string;
  'etcd-endpoints'?: string;
  'etcd-ca-cert-file'?: string;
  'etcd-cert-file'?: string;
  'etcd-key-file'?: string;
}

/** Adds the datastore flags (they override DATASTORE_TYPE, TABBY_DATASTORE_DIR, ETCD_* and the config file). */
export function withDatastoreFlags<T>(y: Argv<T>): Argv<T & DatastoreFlags> {
  return y
    .option('config', { alias: 'c', type: 'string', describe: 'datastore config file (default $TABBY_CONFIG or /etc/tabby/tabbyctl.cfg)' })
    .option('datastore-type', { type: 'string', describe: 'file | etcdv3 (default $DATASTORE_TYPE or file)' })
    .option('datastore-dir', {
      type: 'string',
      describe: 'file datastore directory (default $TABBY_DATASTORE_DIR or /var/lib/tabby/datastore)',
    })
    .option('etcd-endpoints', { type: 'string', describe: 'comma-separated etcd URLs (default $ETCD_ENDPOINTS)' })
    .option('etcd-ca-cert-file', { type: 'string', describe: 'CA for etcd TLS' })
    .option('etcd-cert-file', { type: 'string', describe: 'client certificate for etcd TLS' })
    .option('etcd-key-file', { type: 'string', describe: 'client key for etcd TLS' }) as Argv<T & DatastoreFlags>;
}

export function datastoreConfigFromFlags(a: DatastoreFlags, env: NodeJS.ProcessEnv = process.env): DatastoreConfig {
  const o: Partial<DatastoreConfig> = {};
  if (a['datastore-type']) o.type = parseDatastoreType(a['datastore-type'], '--datastore-type');
  if (a['datastore-dir']) o.dir = a['datastore-dir'];
  if (a['etcd-endpoints']) o.etcdEndpoints = parseEndpoints(a['etcd-endpoints'], '--etcd-endpoints');
  if (a['etcd-ca-cert-file']) o.etcdCaCertFile = a['etcd-ca-cert-file'];
  if (a['etcd-cert-file']) o.etcdCertFile = a['etcd-cert-file'];
  if (a['etcd-key-file']) o.etcdKeyFile = a['etcd-key-file'];
  return datastoreConfigFromEnv(a.config ? { ...env, TABBY_CONFIG: a.config } : env, o);
}

/** Open the datastore the flags name, run `fn` over it and close it whatever happens. */
export async function withStore<R>(a: DatastoreFlags, fn: (rs: ResourceStore, ds: Datastore) => Promise<R>): Promise<R> {
  const ds = await openDatastore(datastoreConfigFromFlags(a));
  try {
    return await fn(new ResourceStore(ds), ds);
  } finally {
    await ds.close();
  }
}

// ------------------------------------------------------------------ input

/** A failure that has already been explained on stderr: exit 1 without a second message. */
class Reported extends Error {
  constructor() {
    super('reported');
  }
}

function fail(lines: string[], tail = 'nothing was changed'): never {
  process.stderr.write(`${lines.join('\n')}\n${tail ? `${tail}\n` : ''}`);
  throw new Reported();
}

interface Doc {
  index: number;
  where: string;
  raw: unknown;
}

/** Largest resource file tabbyctl reads (chose 4 MiB: thousands of resources; far more is a mistake,
 *  and parsing it would cost gigabytes). */
export const MAX_RESOURCE_FILE_BYTES = 4 << 20;

/** Parse a YAML/JSON file (or stdin for "-") into documents; `kind: List` documents are flattened. */
export function readDocuments(file: string): { docs: Doc[]; errors: string[] } {
  let text: string;
  try {
    text = readBounded(file, MAX_RESOURCE_FILE_BYTES).toString('utf8');
  } catch (e) {
    fail([e instanceof InputTooLarge ? e.message : `cannot read ${file === '-' ? 'stdin' : echo(file, 200)}: ${(e as Error).message}`], '');
  }
  const src = file === '-' ? 'stdin' : file;
  const docs: Doc[] = [];
  const errors: string[] = [];
  let n = 0;
  for (const d of parseAllDocuments(text)) {
    n++;
    if (!('errors' in d)) continue; // an empty stream item
    const line = text.slice(0, d.contents?.range?.[0] ?? d.range?.[0] ?? 0).split('\n').length;
    if (d.errors.length) {
      errors.push(
        `${src} document ${n} (line ${line}): invalid YAML: ${d.errors.map((e) => e.message.split('\n')[0]!.replace(/:$/, '')).join('; ')}`,
      );
      continue;
    }
    // An unquoted asdot AS number (asNumber: 64512.100) is a float to YAML: keep the text as written.
    visit(d, {
      Pair(_, pair) {
        if (
          isScalar(pair.key) &&
          pair.key.value === 'asNumber' &&
          isScalar(pair.value) &&
          pair.value.type === 'PLAIN' &&
          typeof pair.value.value === 'number' &&
          pair.value.range
        ) {
          pair.value.value = text.slice(pair.value.range[0], pair.value.range[1]).trim();
        }
      },
    });
    const raw: unknown = d.toJS();
    if (raw === null || raw === undefined) continue;
    const items =
      typeof raw === 'object' && !Array.isArray(raw) && (raw as { kind?: unknown }).kind === 'List'
        ? ((raw as { items?: unknown[] }).items ?? [])
        : Array.isArray(raw)
          ? raw
          : [raw];
    items.forEach((item, i) =>
      docs.push({
        index: n,
        where: `${src} document ${n}${items.length > 1 || Array.isArray(raw) ? ` item ${i + 1}` : ''} (line ${line})`,
        raw: item,
      }),
    );
  }
  if (docs.length === 0 && errors.length === 0) errors.push(`${src}: no resources found`);
  return { docs, errors };
}

type Action = 'create' | 'apply' | 'replace' | 'delete' | 'get';

interface Target {
  where: string;
  kind: ResourceKind;
  name: string;
  res?: Resource;
  resourceVersion?: string;
}

/** Validate every document; for get/delete only kind and name matter. */
function targetsFromFile(file: string, action: Action): Target[] {
  const { docs, errors } = readDocuments(file);
  const targets: Target[] = [];
  for (const d of docs) {
    try {
      if (action === 'get' || action === 'delete') {
        const o = (d.raw ?? {}) as { kind?: unknown; metadata?: { name?: unknown; resourceVersion?: unknown } };
        const kind = resolveKind(String(o.kind ?? ''));
        const bare = typeof o.metadata?.name === 'string' ? o.metadata.name : '';
        if (!bare) throw new ValidationError(kind, '', ['metadata.name is required']);
        const ns = (o.metadata as { namespace?: unknown } | undefined)?.namespace;
        const name = isNamespaced(kind) ? `${typeof ns === 'string' && ns ? ns : 'default'}/${bare}` : bare;
        const rv = o.metadata?.resourceVersion;
        targets.push({
          where: d.where,
          kind,
          name,
          ...(rv !== undefined && rv !== null && rv !== '' ? { resourceVersion: String(rv) } : {}),
        });
      } else {
        const res = validateResource(d.raw);
        targets.push({
          where: d.where,
          kind: res.kind,
          name: storeName(res),
          res,
          ...(res.metadata.resourceVersion ? { resourceVersion: res.metadata.resourceVersion } : {}),
        });
      }
    } catch (e) {
      errors.push(`${d.where}: ${(e as Error).message}`);
    }
  }
  // The same resource twice in one input is ambiguous.
  const seen = new Map<string, Target>();
  for (const tg of targets) {
    const id = `${tg.kind}/${tg.name}`;
    const first = seen.get(id);
    if (first) errors.push(`${tg.where}: ${tg.kind} "${tg.name}" appears again (first in ${first.where})`);
    else seen.set(id, tg);
  }
  // Pools in one input must not overlap each other either.
  const pools = targets.filter((x) => x.res?.kind === 'IPPool');
  for (let i = 0; i < pools.length; i++) {
    for (let j = i + 1; j < pools.length; j++) {
      const a = pools[i]!.res as Extract<Resource, { kind: 'IPPool' }>,
        b = pools[j]!.res as Extract<Resource, { kind: 'IPPool' }>;
      if (a.metadata.name !== b.metadata.name && cidrsOverlap(parseCidr(a.spec.cidr), parseCidr(b.spec.cidr))) {
        errors.push(
          `${pools[j]!.where}: IPPool "${b.metadata.name}": spec.cidr ${b.spec.cidr} overlaps IPPool "${a.metadata.name}" (${a.spec.cidr}) in the same input`,
        );
      }
    }
  }
  if (errors.length)
    fail([
      `${errors.length} problem${errors.length > 1 ? 's' : ''} in ${file === '-' ? 'stdin' : file}:`,
      ...errors.map((e) => `  - ${e}`),
    ]);
  return targets;
}

function targetsFromArgs(kindArg: string | undefined, names: string[], action: Action, namespace?: string): Target[] {
  if (!kindArg) fail([`${action}: give -f <file> or a resource kind (${KINDS.join(', ')}; e.g. ippool, bgppeer, bgpconfig, node)`], '');
  let kind: ResourceKind;
  try {
    kind = resolveKind(kindArg);
  } catch (e) {
    fail([(e as Error).message], action === 'get' ? '' : 'nothing was changed');
  }
  return names.map((name) => ({
    where: '',
    kind,
    name: isNamespaced(kind) && !name.includes('/') ? `${namespace || 'default'}/${name}` : name,
  }));
}

// ------------------------------------------------------------------ output

const yes = (b: unknown) => (b ? 'true' : 'false');

function rowsFor(kind: ResourceKind, items: Resource[], wide: boolean): { headers: string[]; rows: string[][] } {
  switch (kind) {
    case 'IPPool': {
      const pools = items as Extract<Resource, { kind: 'IPPool' }>[];
      return wide
        ? {
            headers: ['NAME', 'CIDR', 'BLOCKSIZE', 'NAT', 'IPIPMODE', 'VXLANMODE', 'DISABLED', 'DISABLEBGPEXPORT', 'SELECTOR'],
            rows: pools.map((p) => [
              p.metadata.name,
              p.spec.cidr,
              String(p.spec.blockSize),
              yes(p.spec.natOutgoing),
              p.spec.ipipMode,
              p.spec.vxlanMode,
              yes(p.spec.disabled),
              yes(p.spec.disableBGPExport),
              p.spec.nodeSelector,
            ]),
          }
        : { headers: ['NAME', 'CIDR', 'SELECTOR'], rows: pools.map((p) => [p.metadata.name, p.spec.cidr, p.spec.nodeSelector]) };
    }
    case 'BGPPeer': {
      const peers = items as Extract<Resource, { kind: 'BGPPeer' }>[];
      const node = (p: (typeof peers)[number]) => p.spec.node ?? (p.spec.nodeSelector ? `(selector) ${p.spec.nodeSelector}` : '(global)');
      const peer = (p: (typeof peers)[number]) => p.spec.peerIP ?? `(selector) ${p.spec.peerSelector ?? ''}`;
      return wide
        ? {
            headers: ['NAME', 'PEERIP', 'NODE', 'ASN', 'KEEPNEXTHOP', 'MAXRESTARTTIME', 'PASSWORD'],
            rows: peers.map((p) => [
              p.metadata.name,
              peer(p),
              node(p),
              p.spec.asNumber === undefined ? '' : formatAsnDot(p.spec.asNumber),
              yes(p.spec.keepOriginalNextHop),
              p.spec.maxRestartTime ?? '',
              p.spec.password ? 'secret' : '',
            ]),
          }
        : {
            headers: ['NAME', 'PEERIP', 'NODE', 'ASN'],
            rows: peers.map((p) => [p.metadata.name, peer(p), node(p), p.spec.asNumber === undefined ? '' : formatAsnDot(p.spec.asNumber)]),
          };
    }
    case 'BGPConfiguration': {
      const cfgs = items as Extract<Resource, { kind: 'BGPConfiguration' }>[];
      const base = (c: (typeof cfgs)[number]) => [
        c.metadata.name,
        c.spec.logSeverityScreen ?? '',
        c.spec.nodeToNodeMeshEnabled === undefined ? '' : yes(c.spec.nodeToNodeMeshEnabled),
        c.spec.asNumber === undefined ? '' : formatAsnDot(c.spec.asNumber),
      ];
      return wide
        ? {
            headers: ['NAME', 'LOGSEVERITY', 'MESHENABLED', 'ASNUMBER', 'LISTENPORT', 'SERVICECLUSTERIPS'],
            rows: cfgs.map((c) => [
              ...base(c),
              c.spec.listenPort === undefined ? '' : String(c.spec.listenPort),
              (c.spec.serviceClusterIPs ?? []).map((s) => s.cidr).join(','),
            ]),
          }
        : { headers: ['NAME', 'LOGSEVERITY', 'MESHENABLED', 'ASNUMBER'], rows: cfgs.map(base) };
    }
    case 'Node': {
      const nodes = items as Extract<Resource, { kind: 'Node' }>[];
      return wide
        ? {
            headers: ['NAME', 'ASN', 'IPV4', 'IPV6', 'RRCLUSTERID'],
            rows: nodes.map((n) => [
              n.metadata.name,
              n.spec.bgp?.asNumber === undefined ? '(64512)' : formatAsnDot(n.spec.bgp.asNumber),
              n.spec.bgp?.ipv4Address ?? '',
              n.spec.bgp?.ipv6Address ?? '',
              n.spec.bgp?.routeReflectorClusterID ?? '',
            ]),
          }
        : { headers: ['NAME'], rows: nodes.map((n) => [n.metadata.name]) };
    }
    case 'BGPFilter': {
      const fs = items as Extract<Resource, { kind: 'BGPFilter' }>[];
      const n = (l: unknown[] | undefined) => String(l?.length ?? 0);
      return {
        headers: ['NAME', 'IMPORTV4', 'EXPORTV4', 'IMPORTV6', 'EXPORTV6'],
        rows: fs.map((f) => [f.metadata.name, n(f.spec.importV4), n(f.spec.exportV4), n(f.spec.importV6), n(f.spec.exportV6)]),
      };
    }
    case 'IPReservation': {
      const rs = items as Extract<Resource, { kind: 'IPReservation' }>[];
      return { headers: ['NAME', 'RESERVEDCIDRS'], rows: rs.map((r) => [r.metadata.name, r.spec.reservedCIDRs.join(',')]) };
    }
    default:
      return policyRows(kind, items, wide);
  }
}

function render(items: Resource[], format: OutputFormat, listKind?: ResourceKind, revision?: number): string {
  if (format === 'yaml' || format === 'json') {
    const value =
      items.length === 1 && !listKind
        ? items[0]
        : {
            apiVersion: 'projectcalico.org/v3',
            kind: listKind ? `${listKind}List` : 'List',
            items,
            metadata: revision === undefined ? {} : { resourceVersion: String(revision) },
          };
    return format === 'yaml' ? toYaml(value) : toJson(value);
  }
  const out: string[] = [];
  for (const kind of KINDS) {
    const ofKind = items.filter((r) => r.kind === kind);
    if (ofKind.length === 0 && kind !== listKind) continue;
    const { headers, rows } = rowsFor(kind, ofKind, format === 'wide');
    out.push(renderTable(headers, rows));
  }
  return out.join('\n');
}

// ------------------------------------------------------------------ commands

interface ResourceArgs extends DatastoreFlags {
  filename?: string;
  kind?: string;
  name?: string[];
  output?: string;
  'skip-exists'?: boolean;
  'skip-not-exists'?: boolean;
  namespace?: string;
  'dry-run'?: boolean;
}

const ref = (x: { kind: string; name: string }) => `${x.kind}(${x.name})`;
const at = (tg: Target) => (tg.where ? `${tg.where}: ` : '');

async function runGet(a: ResourceArgs): Promise<void> {
  const format = parseOutputFormat(a.output);
  const names = a.name ?? [];
  const targets = a.filename
    ? targetsFromFile(a.filename, 'get')
    : names.length
      ? targetsFromArgs(a.kind, names, 'get', a.namespace)
      : undefined;
  await withStore(a, async (rs) => {
    if (!targets) {
      if (!a.kind) fail([`get: give -f <file> or a resource kind (${KINDS.join(', ')}; e.g. ippool, bgppeer, bgpconfig, node)`], '');
      let kind: ResourceKind;
      try {
        kind = resolveKind(a.kind);
      } catch (e) {
        fail([(e as Error).message], '');
      }
      const list = await rs.list(kind);
      const items = a.namespace && isNamespaced(kind) ? list.items.filter((r) => r.metadata.namespace === a.namespace) : list.items;
      process.stdout.write(render(items, format, kind, list.revision));
      return;
    }
    const found: Resource[] = [];
    const missing: string[] = [];
    for (const tg of targets) {
      const r = await rs.get(tg.kind, tg.name);
      if (r) found.push(r);
      else missing.push(`${tg.kind} "${tg.name}" does not exist`);
    }
    if (found.length) process.stdout.write(render(found, format));
    if (missing.length) fail(missing, '');
  });
}

/** Check every target against the store before changing anything; returns the problems. */
async function precheck(
  rs: ResourceStore,
  action: Action,
  targets: Target[],
  a: ResourceArgs,
): Promise<{ problems: string[]; skip: Set<Target> }> {
  const problems: string[] = [];
  const skip = new Set<Target>();
  for (const tg of targets) {
    const cur = await rs.get(tg.kind, tg.name);
    const stale = tg.resourceVersion !== undefined && cur && cur.metadata.resourceVersion !== tg.resourceVersion;
    try {
      if (action === 'create') {
        if (cur) {
          if (a['skip-exists']) {
            skip.add(tg);
            continue;
          }
          problems.push(`${at(tg)}${tg.kind} "${tg.name}" already exists (use apply or replace to change it)`);
          continue;
        }
      } else if (action === 'replace' || action === 'delete') {
        if (!cur) {
          if (action === 'delete' && a['skip-not-exists']) {
            skip.add(tg);
            continue;
          }
          problems.push(`${at(tg)}${tg.kind} "${tg.name}" does not exist`);
          continue;
        }
      }
      if (stale) {
        problems.push(
          `${at(tg)}${tg.kind} "${tg.name}" was modified: resourceVersion ${tg.resourceVersion} is stale (it is now ${cur.metadata.resourceVersion}); get it again and reapply the change`,
        );
        continue;
      }
      if (tg.res && action !== 'delete') await rs.checkAgainstStore(tg.res, cur);
    } catch (e) {
      problems.push(`${at(tg)}${(e as Error).message}`);
    }
  }
  return { problems, skip };
}

function writeCommand(action: 'create' | 'apply' | 'replace' | 'delete'): CommandModule<object, ResourceArgs> {
  const describe = {
    create: 'create resources from a file (fails if one exists)',
    apply: 'create or update resources from a file',
    replace: 'update existing resources from a file (a stale metadata.resourceVersion is refused)',
    delete: 'delete resources named in a file or by kind and name',
  }[action];
  const verb = { create: 'created', apply: 'applied', replace: 'replaced', delete: 'deleted' }[action];
  return {
    command: action === 'delete' ? 'delete [kind] [name..]' : action,
    describe,
    builder: (y) => {
      let b = withDatastoreFlags(y)
        .option('filename', {
          alias: 'f',
          type: 'string',
          describe: 'YAML/JSON file with one or more resources ("-" for stdin)',
          demandOption: action !== 'delete',
        })
        .example(`tabbyctl ${action} -f pools.yaml`, '');
      if (action === 'delete') {
        b = b
          .positional('kind', { type: 'string', describe: 'ippool | bgppeer | bgpconfig | node' })
          .positional('name', { type: 'string', array: true, describe: 'resource name(s)' })
          .option('skip-not-exists', { type: 'boolean', default: false, describe: 'do not fail on resources that do not exist' })
          .option('namespace', {
            alias: 'n',
            type: 'string',
            describe: 'namespace of a networkpolicy or workloadendpoint (default "default")',
          })
          .example('tabbyctl delete ippool p1', '') as typeof b;
      }
      b = b.option('dry-run', {
        type: 'boolean',
        default: false,
        describe: 'validate and show what the change would do to BGP sessions per node; change nothing',
      }) as typeof b;
      if (action === 'create')
        b = b.option('skip-exists', {
          type: 'boolean',
          default: false,
          describe: 'do not fail on resources that already exist',
        }) as typeof b;
      return b as unknown as Argv<ResourceArgs>;
    },
    handler: async (a) => {
      await runReported(async () => {
        let targets: Target[];
        if (a.filename) targets = targetsFromFile(a.filename, action);
        else {
          if (!a.name?.length) fail([`delete: give -f <file> or a kind and name, e.g. "tabbyctl delete ippool p1"`], '');
          targets = targetsFromArgs(a.kind, a.name, action, a.namespace);
        }
        await withStore(a, async (rs, ds) => {
          const { problems, skip } = await precheck(rs, action, targets, a);
          if (problems.length) fail([`${problems.length} problem${problems.length > 1 ? 's' : ''}:`, ...problems.map((p) => `  - ${p}`)]);
          if (a['dry-run']) {
            await printDryRun(
              ds,
              targets.filter((tg) => !skip.has(tg)),
              action,
            );
            return;
          }
          const done: string[] = [];
          for (const tg of targets) {
            if (skip.has(tg)) continue;
            try {
              if (action === 'delete') await rs.delete(tg.kind, tg.name, tg.resourceVersion);
              else if (action === 'create') await rs.create(tg.res!);
              else if (action === 'replace') await rs.update(tg.res!);
              else await rs.apply(tg.res!);
              done.push(ref(tg));
            } catch (e) {
              // Only a concurrent writer between the check and the write gets here.
              fail(
                [`${at(tg)}${(e as Error).message}`],
                done.length ? `${verb} before the failure: ${done.join(', ')}` : 'nothing was changed',
              );
            }
          }
          const skipped = skip.size ? ` (${skip.size} skipped)` : '';
          process.stdout.write(`Successfully ${verb} ${done.length} resource(s)${skipped}${done.length ? `: ${done.join(', ')}` : ''}\n`);
        });
      });
    },
  };
}

/** Run a handler; an already-reported failure sets the exit code without another message. */
async function runReported(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof Reported) {
      process.exitCode = 1;
      return;
    }
    throw e;
  }
}

export const getCommand: CommandModule<object, ResourceArgs> = {
  command: 'get [kind] [name..]',
  describe: 'show resources (ippool, bgppeer, bgpconfig, node) as a table, YAML or JSON',
  builder: (y) =>
    withDatastoreFlags(y)
      .positional('kind', { type: 'string', describe: 'ippool | bgppeer | bgpconfig | node (calicoctl aliases work)' })
      .positional('name', { type: 'string', array: true, describe: 'resource name(s); all when omitted' })
      .option('filename', { alias: 'f', type: 'string', describe: 'get the resources named in this file ("-" for stdin)' })
      .option('output', { alias: 'o', type: 'string', default: 'table', describe: 'yaml | json | wide | table' })
      .option('namespace', { alias: 'n', type: 'string', describe: 'namespace of networkpolicies / workloadendpoints (all when omitted)' })
      .example('tabbyctl get ippools -o wide', '')
      .example('tabbyctl get bgpconfig default -o yaml', '') as unknown as Argv<ResourceArgs>,
  handler: async (a) => {
    await runReported(() => runGet(a));
  },
};

export const resourceCommands: CommandModule<object, ResourceArgs>[] = [
  getCommand,
  writeCommand('create'),
  writeCommand('apply'),
  writeCommand('replace'),
  writeCommand('delete'),
];
