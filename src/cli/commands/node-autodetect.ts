// `tabbyctl node autodetect [--explain] [--method M] [--family 4|6] [-o json]`: run the node address
// autodetection of this host (or of a lab node: `tabbyctl lab exec node-1 -- tabbyctl node autodetect
// --explain`) as tabby-node would, and with --explain list every candidate interface and address with
// the rule that kept or skipped it, the result and warnings (/32, bridge interface, another Node's
// address). Method: --method, else $IP_AUTODETECTION_METHOD / $IP6_AUTODETECTION_METHOD, else first-found.
// Exit 1 when nothing qualifies or a warning applies.
import type { Argv, CommandModule } from 'yargs';
import { renderTable } from './node.js';

interface Args {
  explain: boolean;
  method?: string;
  family: number;
  output: string;
}

export const nodeAutodetectCommand: CommandModule<object, Args> = {
  command: 'autodetect',
  describe: "detect this node's address as tabby-node does; --explain: every candidate and the rule that kept or skipped it",
  builder: (y) =>
    y
      .option('explain', { type: 'boolean', default: false, describe: 'show every candidate interface/address and why' })
      .option('method', { type: 'string', describe: 'an IP_AUTODETECTION_METHOD value (default: $IP_AUTODETECTION_METHOD or first-found)' })
      .option('family', { type: 'number', choices: [4, 6], default: 4 })
      .option('output', { alias: 'o', type: 'string', choices: ['text', 'json'], default: 'text' }) as unknown as Argv<Args>,
  handler: async (argv) => {
    const [{ parseAutodetectionMethod, readKernelInterfaces, reachSource }, { explainAutodetect }, ds] = await Promise.all([
      import('../../autodetect/index.js'),
      import('../../autodetect/explain.js'),
      import('../../datastore/index.js'),
    ]);
    const family = argv.family === 6 ? 6 : 4;
    const raw =
      argv.method ??
      (family === 4
        ? (process.env.IP_AUTODETECTION_METHOD ?? process.env.ip_autodetection_method)
        : (process.env.IP6_AUTODETECTION_METHOD ?? process.env.ip6_autodetection_method));
    const method = parseAutodetectionMethod(raw, family, argv.method ? '--method' : undefined);
    const interfaces = await readKernelInterfaces();
    const facts: { reachSource?: string; internalIps?: string[] } = {};
    if (method.kind === 'can-reach') {
      const s = await reachSource(method.destination, family);
      if (s) facts.reachSource = s;
    }
    if (method.kind === 'kubernetes-internal-ip' && process.env.TABBY_NODE_INTERNAL_IP)
      facts.internalIps = process.env.TABBY_NODE_INTERNAL_IP.split(',').map((s) => s.trim());
    // Other Nodes' addresses (the conflict check); the datastore may be absent on a bare host.
    const others: { node: string; address: string }[] = [];
    try {
      const store = await ds.openDatastore(ds.datastoreConfigFromEnv(process.env));
      try {
        const me = process.env.NODENAME;
        for (const n of (await new ds.ResourceStore(store).list('Node')).items) {
          const a = family === 4 ? n.spec.bgp?.ipv4Address : n.spec.bgp?.ipv6Address;
          if (a && n.metadata.name !== me) others.push({ node: n.metadata.name, address: a });
        }
      } finally {
        await store.close();
      }
    } catch {
      /* no datastore here: no conflict check */
    }
    const e = explainAutodetect(interfaces, method, family, facts, others);
    if (argv.output === 'json') process.stdout.write(`${JSON.stringify(e, null, 2)}\n`);
    else {
      const lines = [`method: ${e.method} (IPv${family})`];
      if (argv.explain)
        lines.push(
          renderTable(
            ['INTERFACE', 'INDEX', 'ADDRESS', 'VERDICT', 'WHY'],
            e.candidates.map((c) => [c.interface, String(c.index), c.address || '-', c.verdict, c.why]),
          ),
        );
      lines.push(
        e.result.ok
          ? `result: ${e.result.choice.address} on ${e.result.choice.interface ?? '?'}`
          : `result: nothing qualifies — ${e.result.reason}`,
      );
      for (const w of e.warnings) lines.push(`WARNING: ${w}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    if (!e.result.ok || e.warnings.length > 0) process.exitCode = 1;
  },
};
