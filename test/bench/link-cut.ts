// Benchmark: failure detection → kernel route removal, BFD vs the BGP hold timer, same run.
//   node dist/test/bench/link-cut.js [rounds]      (default 3 BFD rounds; root, nft)
// A two-node tabby lab (real agents in network namespaces, mesh, a pod on each). node-2's underlay is
// cut silently (nft drop on its eth0, the link stays up) and the time until node-1's kernel no longer
// has the route to node-2's block is taken (polled every 20 ms). First with BFD on the mesh
// (BGPConfiguration nodeMeshBFD, 300 ms × 3; several rounds, healed between), then without BFD in a
// fresh lab: only the hold timer (90 s) notices, then graceful restart keeps the routes for 120 s. Prints figures and the load average; never fails on a time.
import os from 'node:os';
import { agentLab, labSkipReason, until } from '../integration/agent/helpers.js';
import { enableMeshBfd, measureCut } from '../integration/agent/link-cut.js';

const rounds = Number(process.argv[2] ?? 3) || 3;

async function lab(tag: string, bfd: boolean): Promise<{ lab: Awaited<ReturnType<typeof agentLab>>; down: () => Promise<void> }> {
  const fns: (() => unknown)[] = [];
  const l = await agentLab({ teardown: (fn) => fns.push(fn) }, tag, { nodes: 2, mode: 'routed' });
  if (bfd) {
    await enableMeshBfd(l);
  }
  if (!(await l.waitForBgp(60_000)).ok) throw new Error('mesh not Established');
  await l.addPod('node-1', 'p1');
  const p2 = await l.addPod('node-2', 'p2');
  if (!(await l.pingUntil('p1', p2.ip, 20_000))) throw new Error('pods do not ping before the cut');
  return {
    lab: l,
    down: async () => {
      for (const f of fns.reverse()) await f();
    },
  };
}

async function main(): Promise<void> {
  const skip = labSkipReason();
  if (skip) {
    process.stdout.write(`link-cut: skipped (${skip})\n`);
    return;
  }
  const out: string[] = [];
  const withBfd = await lab('lcb', true);
  try {
    const figures: number[] = [];
    for (let i = 0; i < rounds; i++) {
      await until(
        async () =>
          (await withBfd.lab.agentStatus('node-1'))?.peers[0]?.bfd?.detectionTimeMs === 900 &&
          (await withBfd.lab.agentStatus('node-1'))?.peers[0]?.state === 'Established',
        60_000,
      );
      const r = await measureCut(withBfd.lab, { deadlineMs: 20_000 });
      if (r.routeGoneMs !== undefined) figures.push(r.routeGoneMs);
      process.stdout.write(`  BFD round ${i + 1}: ${r.routeGoneMs ?? 'not removed within 20 s'} ms\n`);
      await withBfd.lab.pingUntil('p1', withBfd.lab.pod('p2').ip, 60_000);
    }
    figures.sort((a, b) => a - b);
    out.push(
      `BFD 300 ms x 3: cut -> route gone from the peer's kernel: median ${figures[Math.floor(figures.length / 2)] ?? '-'} ms, min ${figures[0] ?? '-'} ms, max ${figures[figures.length - 1] ?? '-'} ms (${figures.length} rounds)`,
    );
  } finally {
    await withBfd.down();
  }
  const plain = await lab('lcp', false);
  try {
    // Without BFD the hold timer (90 s) notices, and graceful restart then keeps the peer's routes stale
    // for its restart time (120 s): a vanished peer looks like a restarting one.
    const r = await measureCut(plain.lab, { deadlineMs: 300_000 });
    out.push(
      `no BFD (hold timer 90 s, then graceful-restart time 120 s): cut -> route gone: ${r.routeGoneMs === undefined ? 'not within 300 s' : `${(r.routeGoneMs / 1000).toFixed(1)} s`}`,
    );
  } finally {
    await plain.down();
  }
  process.stdout.write(
    `link-cut (2 tabby nodes, silent nft drop of node-2's underlay; load average ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')})\n${out.map((l) => `  ${l}`).join('\n')}\n`,
  );
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`link-cut: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
