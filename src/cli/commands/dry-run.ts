// `--dry-run` of tabbyctl create/apply/replace/delete: the file was validated and checked against the
// store (as for a real write); this prints what the change would do to BGP sessions per node
// (agent/bgp-impact.ts) and warns before a partition — sessions lost, or a BGPFilter that would keep a
// node's blocks from a peer. Nothing is written.
import type { Datastore } from '../../datastore/types.js';
import { ResourceStore, type Resource, type ResourceKind } from '../../datastore/resources.js';
import { Ipam } from '../../ipam/index.js';
import { bgpImpact, type ResourceChange } from '../../agent/bgp-impact.js';

export async function printDryRun(
  ds: Datastore,
  targets: readonly { kind: ResourceKind; name: string; res?: Resource }[],
  action: string,
): Promise<void> {
  const rs = new ResourceStore(ds);
  const [nodes, peers, filters, cfg, pools, blocks] = await Promise.all([
    rs.list('Node'),
    rs.list('BGPPeer'),
    rs.list('BGPFilter'),
    rs.get('BGPConfiguration', 'default'),
    rs.list('IPPool'),
    new Ipam(ds).listBlocks(),
  ]);
  const changes: ResourceChange[] = targets.map((tg) =>
    action === 'delete' ? { kind: tg.kind, name: tg.name } : { kind: tg.kind, name: tg.name, ...(tg.res ? { res: tg.res } : {}) },
  );
  const impact = bgpImpact(
    { nodes: nodes.items, peers: peers.items, filters: filters.items, pools: pools.items, blocks, ...(cfg ? { bgpConfig: cfg } : {}) },
    changes,
  );
  const lines = [`dry run: ${action} ${targets.map((t) => `${t.kind}(${t.name})`).join(', ') || 'nothing'} — nothing was changed`];
  const touched = impact.nodes.filter((n) => n.added.length || n.removed.length);
  if (touched.length === 0) lines.push('BGP: no session would be added or removed on any node');
  for (const n of touched) {
    lines.push(`  ${n.node}: ${n.before} -> ${n.after} session(s)`);
    for (const s of n.added) lines.push(`    + ${s}`);
    for (const s of n.removed) lines.push(`    - ${s}`);
  }
  for (const w of impact.warnings) lines.push(`WARNING: ${w}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  if (impact.warnings.length > 0) process.exitCode = 1;
}
