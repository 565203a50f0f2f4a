// tabbyctl label <kind> NAME k=v … [--overwrite] [--remove k …]   (calicoctl's label verb)
// tabbyctl policy explain POD [-n NS] [--from IP|POD | --to IP|POD] [--protocol tcp] [--port 80]
//   which policies select the pod, per direction in enforcement order, and the verdict for one flow
//   with the rule that decided it. The logic and its text are src/policy/explain.ts.
import type { Argv, CommandModule } from 'yargs';
import { type ResourceStore, resolveKind, isNamespaced } from '../../datastore/resources.js';
import { labelResource, parseLabels, LabelError } from '../../datastore/labels.js';
import type { PolicyInputs } from '../../policy/model.js';
import { explainText } from '../../policy/explain.js';
import { withDatastoreFlags, withStore, type DatastoreFlags } from './resources.js';

function failWith(msg: string): never {
  process.stderr.write(`${msg}\n`);
  process.exit(1);
}

interface LabelArgs extends DatastoreFlags {
  kind: string;
  name: string;
  labels?: string[];
  overwrite?: boolean;
  remove?: boolean;
  namespace?: string;
}

export const labelCommand: CommandModule<object, LabelArgs> = {
  command: 'label <kind> <name> [labels..]',
  describe: 'set or remove labels on a resource (e.g. a workloadendpoint where no Kubernetes API supplies them)',
  builder: (y) =>
    withDatastoreFlags(y)
      .positional('kind', { type: 'string', describe: 'workloadendpoint | profile | node | … (calicoctl aliases work)' })
      .positional('name', { type: 'string', describe: 'resource name (a pod name finds its workloadendpoint)' })
      .positional('labels', { type: 'string', array: true, describe: 'k=v pairs to set; with --remove, keys to remove' })
      .option('overwrite', { type: 'boolean', default: false, describe: 'change a label that already has another value' })
      .option('remove', { type: 'boolean', default: false, describe: 'remove the given label keys' })
      .option('namespace', { alias: 'n', type: 'string', describe: 'namespace of a workloadendpoint (default "default")' })
      .example('tabbyctl label workloadendpoint node-1-k8s-web-eth0 app=web -n prod', '')
      .example('tabbyctl label wep web app --remove -n prod', '') as unknown as Argv<LabelArgs>,
  handler: async (a) => {
    let kind;
    try {
      kind = resolveKind(a.kind);
    } catch (e) {
      failWith((e as Error).message);
    }
    const pairs = a.labels ?? [];
    if (!pairs.length) failWith(`label: give ${a.remove ? 'the keys to remove' : 'k=v pairs'}`);
    let change;
    try {
      change = a.remove
        ? { remove: pairs.flatMap((p) => p.split(',')).filter(Boolean) }
        : { set: parseLabels(pairs), overwrite: Boolean(a.overwrite) };
    } catch (e) {
      failWith((e as Error).message);
    }
    await withStore(a, async (rs) => {
      let name = a.name;
      if (isNamespaced(kind) && !name.includes('/')) {
        const ns = a.namespace || 'default';
        // a pod name is accepted for its endpoint
        if (kind === 'WorkloadEndpoint' && !(await rs.get(kind, `${ns}/${name}`))) {
          const hit = (await rs.list('WorkloadEndpoint')).items.find(
            (w) => w.metadata.namespace === ns && (w.spec.pod === name || w.spec.workload === name),
          );
          if (hit) name = hit.metadata.name;
        }
        name = `${ns}/${name}`;
      }
      try {
        const r = await labelResource(rs, kind, name, change);
        const l = Object.entries(r.metadata.labels ?? {})
          .map(([k, v]) => `${k}=${v}`)
          .join(',');
        process.stdout.write(`Successfully ${a.remove ? 'removed labels from' : 'set labels on'} ${kind} ${name}: ${l || '(none)'}\n`);
      } catch (e) {
        if (e instanceof LabelError || (e as { code?: string }).code === 'ENOTFOUND') failWith((e as Error).message);
        throw e;
      }
    });
  },
};

export async function loadInputs(rs: ResourceStore): Promise<PolicyInputs> {
  const [endpoints, policies, globalPolicies, profiles] = await Promise.all([
    rs.list('WorkloadEndpoint'),
    rs.list('NetworkPolicy'),
    rs.list('GlobalNetworkPolicy'),
    rs.list('Profile'),
  ]);
  return { endpoints: endpoints.items, policies: policies.items, globalPolicies: globalPolicies.items, profiles: profiles.items };
}

interface ExplainArgs extends DatastoreFlags {
  pod: string;
  namespace?: string;
  from?: string;
  to?: string;
  protocol?: string;
  port?: number;
}

const explainCommand: CommandModule<object, ExplainArgs> = {
  command: 'explain <pod>',
  describe: 'the policies that select a pod, in order, and the verdict for one flow',
  builder: (y) =>
    withDatastoreFlags(y)
      .positional('pod', { type: 'string', describe: 'pod name, workloadendpoint name or pod address' })
      .option('namespace', { alias: 'n', type: 'string', describe: "the pod's namespace" })
      .option('from', { type: 'string', describe: 'verdict for ingress from this address or pod ([ns/]pod)' })
      .option('to', { type: 'string', describe: 'verdict for egress to this address or pod ([ns/]pod)' })
      .option('protocol', { type: 'string', default: 'tcp', describe: 'tcp | udp | sctp | icmp | a number' })
      .option('port', { type: 'number', describe: 'destination port' })
      .example('tabbyctl policy explain web -n prod --from ns-b/client --port 80', '') as unknown as Argv<ExplainArgs>,
  handler: async (a) => {
    await withStore(a, async (rs) => {
      const r = explainText(await loadInputs(rs), a);
      if ('error' in r) failWith(r.error);
      process.stdout.write(`${r.text}\n`);
    });
  },
};

export const policyCommand: CommandModule = {
  command: 'policy <command>',
  describe: 'network policy: explain what applies to a pod',
  builder: (y) => y.command(explainCommand as unknown as CommandModule).demandCommand(1, 'name a policy command: explain'),
  handler: () => {
    /* subcommands only */
  },
};
