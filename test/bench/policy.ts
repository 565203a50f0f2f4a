// Benchmark: network policy on a node with 200 endpoints and 1,000 policies, through a running
// tabby-node (a 1-node lab, pods through the real CNI plugin; 198 more endpoints of that node written
// to the datastore as the CNI would, without veths: the ruleset is the same size).
//   1. full programming: tabby-node restarted, its first program of the whole table (compile + nft),
//      over the table the previous run left (adopted) and from no table (cold)
//   2. enforcement: a policy written to the datastore → the first datagram that must be dropped is
//      dropped (a sender in one pod every ~1 ms, a receiver in the other), p50/p99 over N changes;
//      and the reverse (policy deleted → packets pass again). Anchors: one `nft -f -` adding one rule to
//      the same table, the floor of any nft-process-based enforcement, and the same transaction through
//      libnftables (how tabby-node commits).
//   3. iperf3 pod → pod on one node: no policy selecting them vs 1,000 policies selecting both.
// Prints figures; never fails on a number. Needs root; iperf3 for part 3. Run: node dist/test/bench/policy.js [changes]
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createLab, destroyLab } from '../../src/lab/lab.js';
import { repoRoot } from '../../src/lab/pods.js';
import { spawnIn, runIn, netnsPath } from '../../src/lab/netns.js';
import { nftRunner } from '../../src/policy/nft.js';
import { openDatastore } from '../../src/datastore/index.js';
import { ResourceStore, validateResource, type Resource } from '../../src/datastore/resources.js';

const CHANGES = Number(process.argv[2] ?? 40);
const ENDPOINTS = 200;
const POLICIES = 1000;
const TRAFFIC = path.join(repoRoot(), 'dist/test/bench/policy-traffic.js');
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length - 1) * p))]!;
};
const f1 = (x: number) => `${x.toFixed(1)} ms`;

function doc(kind: string, name: string, spec: object, ns?: string, labels?: Record<string, string>): Resource {
  return validateResource({
    apiVersion: 'projectcalico.org/v3',
    kind,
    metadata: { name, ...(ns ? { namespace: ns } : {}), ...(labels ? { labels } : {}) },
    spec,
  });
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stdout.write('policy bench: skipped (needs root for network namespaces)\n');
    return;
  }
  const o = { prefix: `tbpb${process.pid}`.slice(0, 12), stateDir: `/tmp/tbpb${process.pid}-state` };
  const procs: ChildProcess[] = [];
  const cleanup = async () => {
    for (const p of procs) p.kill('SIGKILL');
    await destroyLab(o);
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => {
      void cleanup().then(() => process.exit(130));
    });
  try {
    const lab = await createLab({ ...o, nodes: 1, mode: 'routed' });
    const node = lab.nodes[0]!;
    const src = await lab.addPod(node.name, 'src', { namespace: 'bench', labels: { role: 'src' } });
    const dst = await lab.addPod(node.name, 'dst', { namespace: 'bench', labels: { role: 'dst' } });
    const ds = await openDatastore({ type: 'file', dir: path.join(o.stateDir, 'datastore') });
    const rs = new ResourceStore(ds);
    const t0 = performance.now();
    for (let i = 0; i < ENDPOINTS - 2; i++) {
      await rs.create(
        doc(
          'WorkloadEndpoint',
          `${node.name}-k8s-fake${i}-eth0`,
          {
            node: node.name,
            pod: `fake${i}`,
            interfaceName: `calibench${i}`,
            ipNetworks: [`10.250.${i >> 8}.${i & 255}/32`],
            profiles: ['kns.bench'],
            ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
          },
          'bench',
          { app: `app-${i % 50}` },
        ),
      );
    }
    for (let k = 0; k < POLICIES; k++) {
      await rs.create(
        doc(
          'NetworkPolicy',
          `p-${k}`,
          {
            order: k,
            selector: `app == 'app-${k % 50}'`,
            ingress: [
              {
                action: 'Allow',
                protocol: 'TCP',
                source: { selector: `app == 'app-${(k + 1) % 50}'` },
                destination: { ports: ['http', 9000 + (k % 100)] },
              },
              { action: 'Deny', source: { nets: [`10.251.${k >> 8}.${k & 255}/32`] } },
            ],
            egress: [{ action: 'Allow', destination: { selector: `app == 'app-${(k + 7) % 50}'` } }],
          },
          'bench',
        ),
      );
    }
    process.stdout.write(
      `policy bench: 1 node, ${ENDPOINTS} endpoints, ${POLICIES} policies (written in ${((performance.now() - t0) / 1000).toFixed(1)} s), node ${process.version}, load ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}\n`,
    );

    // 1. programming the whole table: (a) a restart over the table the previous run left (adopted:
    //    its content-named chains kept), (b) a cold start with no table (the whole table in one
    //    transaction: what a new node or a changed ruleset costs)
    const log = path.join(o.stateDir, 'nodes', node.name, 'agent.log');
    type Prog = { mode: string; ms: number; bytes: number; compileMs?: number; nftMs?: number; kept?: number };
    const programs = () =>
      fs
        .readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"policy programmed"'))
        .map((l) => JSON.parse(l) as Prog);
    const restart = async (cold: boolean): Promise<Prog | undefined> => {
      await lab.stopAgent(node.name);
      if (cold) await runIn(node.netns, 'nft', ['delete', 'table', 'inet', 'tabby-policy']).catch(() => undefined);
      const before = programs().length;
      await lab.startAgent(node.name);
      const until = Date.now() + 120_000;
      const first = () =>
        programs()
          .slice(before)
          .find((x) => x.mode === 'full' || x.mode === 'adopt');
      while (Date.now() < until && !first()) await sleep(100);
      return first();
    };
    const parts = (p: Prog) =>
      `${f1(p.ms)} (${p.mode}${p.compileMs !== undefined ? `: compile ${f1(p.compileMs)}, nft ${f1(p.nftMs ?? 0)}` : ''}, ${(p.bytes / 1024).toFixed(0)} KiB${p.kept !== undefined ? `, ${p.kept} chains kept` : ''})`;
    const full: Record<string, Prog[]> = {};
    for (const cold of [false, true]) {
      const got: Prog[] = [];
      full[cold ? 'cold' : 'restart'] = got;
      for (let i = 0; i < 3; i++) {
        const p = await restart(cold);
        if (p) got.push(p);
      }
      process.stdout.write(
        `  full programming, ${cold ? 'cold start (no table)' : 'restart (table of the previous run)'}:\n${got.map((p) => `    ${parts(p)}\n`).join('')}`,
      );
    }
    await sleep(1000);

    // 2. enforcement latency
    const recv = spawnIn(dst.netns, process.execPath, [TRAFFIC, 'recv', '5001'], { stdio: ['ignore', 'pipe', 'inherit'] });
    procs.push(recv);
    let lastSend = 0,
      lastArrival = 0;
    const lines = createInterface({ input: recv.stdout! });
    await new Promise<void>((r) => lines.once('line', () => r()));
    lines.on('line', (l) => {
      const [s, a] = l.split(' ').map(Number);
      if (s! > lastSend) {
        lastSend = s!;
        lastArrival = a!;
      }
    });
    const send = spawnIn(src.netns, process.execPath, [TRAFFIC, 'send', dst.ip, '5001'], { stdio: 'ignore' });
    procs.push(send);
    const deny: number[] = [],
      denyFromCall: number[] = [],
      allow: number[] = [];
    const progsBefore = programs().length;
    for (let i = 0; i < CHANGES; i++) {
      while (now() - lastArrival > 50) await sleep(10); // flowing
      const tCall = now();
      await rs.create(
        doc(
          'NetworkPolicy',
          'bench-deny',
          { selector: "role == 'dst'", ingress: [{ action: 'Allow', source: { selector: "role == 'nobody'" } }] },
          'bench',
        ),
      );
      const tCommit = now();
      while (now() - lastArrival < 300) await sleep(10); // stopped
      deny.push(lastSend + 1 - tCommit);
      denyFromCall.push(lastSend + 1 - tCall);
      const tDel = now();
      await rs.delete('NetworkPolicy', 'bench/bench-deny');
      const until = Date.now() + 10_000;
      while (lastSend < tDel && Date.now() < until) await sleep(2);
      allow.push(lastArrival - tDel);
    }
    const line = (n: string, xs: number[]) =>
      `  ${n.padEnd(46)} p50 ${f1(pct(xs, 0.5)).padStart(9)}   p99 ${f1(pct(xs, 0.99)).padStart(9)}   max ${f1(Math.max(...xs)).padStart(9)}\n`;
    process.stdout.write(`${CHANGES} policy changes (datastore write → packets):\n`);
    process.stdout.write(line('deny: write committed → first dropped packet', deny));
    process.stdout.write(line('deny: apply called → first dropped packet', denyFromCall));
    process.stdout.write(line('allow: delete called → first passing packet', allow));
    // anchor: the nft floor on the same table
    const nftT: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t = performance.now();
      await runIn(node.netns, 'nft', ['-f', '-'], {
        input:
          'add chain inet tabby-policy bench-anchor\nadd rule inet tabby-policy bench-anchor drop\ndelete chain inet tabby-policy bench-anchor\n',
      });
      nftT.push(performance.now() - t);
    }
    process.stdout.write(line('anchor: one nft -f - transaction on this table', nftT));
    // the same transaction through libnftables in this process (what tabby-node does per change), its
    // context opened once and kept, as in the agent
    const lib = nftRunner({ netnsPath: netnsPath(node.netns) });
    if (lib.via === 'libnftables') {
      const libT: number[] = [];
      for (let i = 0; i < 11; i++) {
        const t = performance.now();
        await lib.run(
          'add chain inet tabby-policy bench-anchor\nadd rule inet tabby-policy bench-anchor drop\ndelete chain inet tabby-policy bench-anchor\n',
        );
        if (i > 0) libT.push(performance.now() - t); // the first fills nft's cache, as an agent's first program does
      }
      process.stdout.write(line('anchor: the same through libnftables', libT));
    }
    // for the bench report (test/bench/report.ts): seconds = p99, spread = [min, max]
    const fig = (receiver: string, xs: number[], max = false) => ({
      receiver,
      seconds: (max ? Math.max(...xs) : pct(xs, 0.99)) / 1000,
      runs: xs.length,
      spread: [Math.min(...xs) / 1000, Math.max(...xs) / 1000],
    });
    console.log(
      `RESULT ${JSON.stringify({ bench: 'policy-change', n: POLICIES, tabby: fig('write → first dropped packet (p99)', deny), nft: fig('one nft -f - transaction (p99)', nftT) })}`,
    );
    const ms = (k: string) => (full[k] ?? []).map((p) => p.ms);
    if (ms('restart').length && ms('cold').length)
      console.log(
        `RESULT ${JSON.stringify({ bench: 'policy-full', n: POLICIES, tabby: fig('restart, table adopted (max)', ms('restart'), true), tabbyCold: fig('cold start, whole table (max)', ms('cold'), true) })}`,
      );
    const diffs = programs()
      .slice(progsBefore)
      .filter((p) => p.mode === 'diff' && p.compileMs !== undefined);
    if (diffs.length)
      for (const [n, k] of [
        ['agent, per change: compile (incremental)', 'compileMs'],
        ['agent, per change: nft transaction', 'nftMs'],
      ] as const)
        process.stdout.write(
          line(
            n,
            diffs.map((p) => p[k] ?? 0),
          ),
        );
    send.kill('SIGKILL');
    recv.kill('SIGKILL');

    // 3. throughput
    if (spawnSync('iperf3', ['--version']).status !== 0) {
      process.stdout.write('  iperf3: skipped (not installed; make deps installs it)\n');
      return;
    }
    const srv = spawnIn(dst.netns, 'iperf3', ['-s'], { stdio: 'ignore' });
    procs.push(srv);
    await sleep(500);
    const iperf = async (): Promise<number> => {
      const r = await runIn(src.netns, 'iperf3', ['-c', dst.ip, '-t', '4', '-J'], { timeoutMs: 60_000 });
      return (JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e9;
    };
    const addSelecting = async () => {
      for (let k = 0; k < POLICIES; k++) {
        await rs.create(
          doc(
            'NetworkPolicy',
            `sel-${k}`,
            {
              order: 5000 + k,
              selector: "role in {'src', 'dst'}",
              ingress: [
                {
                  action: k === POLICIES - 1 ? 'Allow' : 'Deny',
                  ...(k === POLICIES - 1 ? {} : { source: { nets: [`10.252.${k >> 8}.${k & 255}/32`] } }),
                },
              ],
              egress: [
                {
                  action: k === POLICIES - 1 ? 'Allow' : 'Deny',
                  ...(k === POLICIES - 1 ? {} : { destination: { nets: [`10.253.${k >> 8}.${k & 255}/32`] } }),
                },
              ],
            },
            'bench',
          ),
        );
      }
    };
    const removeSelecting = async () => {
      for (let k = 0; k < POLICIES; k++) await rs.delete('NetworkPolicy', `bench/sel-${k}`);
    };
    const base: number[] = [],
      withPol: number[] = [];
    for (let round = 0; round < 3; round++) {
      base.push(await iperf());
      await addSelecting();
      await sleep(3000);
      withPol.push(await iperf());
      await removeSelecting();
      await sleep(3000);
    }
    const med = (xs: number[]) => pct(xs, 0.5);
    process.stdout.write(
      `iperf3 pod → pod, one node (TCP, 4 s, 3 rounds each, alternating):\n  no policy selecting them: ${base.map((x) => `${x.toFixed(2)} Gbit/s`).join(', ')}\n  ${POLICIES} policies selecting both (every one traversed by a new connection): ${withPol.map((x) => `${x.toFixed(2)} Gbit/s`).join(', ')}\n  ratio (median): ${((100 * med(withPol)) / med(base)).toFixed(1)} %\n`,
    );
    await ds.close();
  } finally {
    await cleanup();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
