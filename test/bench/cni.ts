// Benchmark: time from the start of a CNI ADD (the runtime spawning the plugin) until the pod answers a
// ping from its node, over 100 pods, 1 and 8 at a time, on the file datastore. Prints figures; never
// fails on a time. Needs root (network namespaces). Run: node dist/test/bench/cni.js [pods]
import { PLUGIN, cniEnv, containerIdOf, isRoot, makeNode, pingFrom, runPlugin, type NodeEnv } from '../integration/cni/harness.js';

const PODS = Number(process.argv[2] ?? 100);
const tag = `tb${process.pid}`.slice(0, 10) + 'k';

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length - 1) * p))]!;
};

async function addOne(node: NodeEnv, i: number): Promise<{ add: number; pingable: number }> {
  const netns = node.makePod(i);
  const t0 = performance.now();
  const r = await runPlugin(node.ns, PLUGIN, cniEnv('ADD', containerIdOf(tag, i), netns, `pod-${i}`), JSON.stringify(node.conf()));
  const add = performance.now() - t0;
  if (r.code !== 0) throw new Error(`ADD pod ${i}: ${r.stdout}${r.stderr}`);
  const addr = r.json.ips?.[0]?.address.split('/')[0] ?? '';
  for (let k = 0; k < 50; k++) if (await pingFrom(node.ns, addr, 1)) return { add, pingable: performance.now() - t0 };
  throw new Error(`pod ${i} (${addr}) never answered`);
}

async function delOne(node: NodeEnv, i: number): Promise<number> {
  const t0 = performance.now();
  const r = await runPlugin(node.ns, PLUGIN, cniEnv('DEL', containerIdOf(tag, i), `/var/run/netns/${node.podNs(i)}`, `pod-${i}`), JSON.stringify(node.conf()));
  if (r.code !== 0) throw new Error(`DEL pod ${i}: ${r.stdout}`);
  node.deletePod(i);
  return performance.now() - t0;
}

async function run(node: NodeEnv, parallel: number): Promise<void> {
  const idx = Array.from({ length: PODS }, (_, i) => i + parallel * 1000);
  const adds: { add: number; pingable: number }[] = [];
  const dels: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < idx.length) adds.push(await addOne(node, idx[next++]!));
  }));
  const wall = performance.now() - t0;
  next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < idx.length) dels.push(await delOne(node, idx[next++]!));
  }));
  const f = (x: number) => `${x.toFixed(0)} ms`;
  const line = (name: string, xs: number[]) => `  ${name.padEnd(22)} p50 ${f(pct(xs, 0.5)).padStart(7)}   p99 ${f(pct(xs, 0.99)).padStart(7)}   max ${f(Math.max(...xs)).padStart(7)}`;
  process.stdout.write(`${PODS} pods, ${parallel} at a time (${(PODS / (wall / 1000)).toFixed(1)} pods/s):\n`);
  process.stdout.write(`${line('ADD start → pingable', adds.map((a) => a.pingable))}\n${line('ADD (plugin exit)', adds.map((a) => a.add))}\n${line('DEL', dels)}\n`);
}

async function main(): Promise<void> {
  if (!isRoot()) { process.stdout.write('cni bench: skipped (needs root for network namespaces)\n'); return; }
  const node = await makeNode(tag, [{ name: 'default-ipv4-ippool', cidr: '10.250.0.0/16' }]);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { node.destroy(); process.exit(130); });
  try {
    // Baseline: what starting the runtime (node) costs by itself.
    const base: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      await runPlugin(node.ns, PLUGIN, { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
      base.push(performance.now() - t0);
    }
    process.stdout.write(`tabby CNI plugin, file datastore, node ${process.version}\n  plugin VERSION (process start + exit): p50 ${pct(base, 0.5).toFixed(0)} ms\n`);
    await run(node, 1);
    await run(node, 8);
  } finally {
    node.destroy();
  }
}

main().catch((e: unknown) => { process.stderr.write(`${(e as Error).stack ?? String(e)}\n`); process.exit(1); });
