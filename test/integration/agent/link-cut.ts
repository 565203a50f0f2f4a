// The link-cut measurement shared by the BFD integration test and test/bench/link-cut: a two-node
// tabby lab (real agents, a pod on each), then node-2's underlay is cut silently — an nft drop of
// everything on its eth0, in and out, the link stays up — and the time is taken from the cut until
// node-1's kernel no longer has the route to node-2's block (polled every 20 ms with `ip route`).
import { execFileSync } from 'node:child_process';
import type { Lab } from '../../../src/lab/lab.js';
import { openDatastore } from '../../../src/datastore/index.js';
import { ResourceStore } from '../../../src/datastore/resources.js';
import { routeTo, until, blockOf } from './helpers.js';

export interface CutResult {
  /** ms from the cut to the route leaving node-1's kernel (undefined: still there at the deadline). */
  routeGoneMs: number | undefined;
  block: string;
}

/** BFD on the node-to-node mesh with the defaults (BGPConfiguration nodeMeshBFD: {}, 300 ms × 3). */
export async function enableMeshBfd(lab: Lab): Promise<void> {
  const ds = await openDatastore({ type: 'file', dir: lab.state.datastoreDir });
  try {
    const store = new ResourceStore(ds);
    const cur = await store.get('BGPConfiguration', 'default');
    if (cur) await store.update({ ...cur, spec: { ...cur.spec, nodeMeshBFD: {} } } as never);
    else
      await store.create({
        apiVersion: 'projectcalico.org/v3',
        kind: 'BGPConfiguration',
        metadata: { name: 'default' },
        spec: { nodeMeshBFD: {} },
      } as never);
  } finally {
    await ds.close();
  }
}

const nsName = (netns: string): string => netns.replace(/^\/var\/run\/netns\//, '');

/** Cut node-2's underlay silently and time node-1's route to node-2's block; the cut is healed afterwards. */
export async function measureCut(lab: Lab, opts: { deadlineMs: number }): Promise<CutResult> {
  const block = await blockOf(lab, 'node-2');
  const n1 = lab.node('node-1').netns;
  const n2 = nsName(lab.node('node-2').netns);
  if (!(await until(() => routeTo(n1, block), 30_000))) throw new Error(`node-1 has no route to ${block} before the cut`);
  execFileSync('ip', ['netns', 'exec', n2, 'nft', '-f', '-'], {
    input:
      'table inet tabbylinkcut {\n chain input { type filter hook input priority -300; iifname "eth0" drop; }\n chain output { type filter hook output priority -300; oifname "eth0" drop; }\n}\n',
  });
  const t0 = Date.now();
  try {
    const gone = await until(() => !routeTo(n1, block), opts.deadlineMs, 20);
    return { routeGoneMs: gone ? Date.now() - t0 : undefined, block };
  } finally {
    execFileSync('ip', ['netns', 'exec', n2, 'nft', 'delete', 'table', 'inet', 'tabbylinkcut']);
  }
}
