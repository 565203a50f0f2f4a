// Network policy with real packets, in the style of the Kubernetes NetworkPolicy conformance probes:
// a 2-node lab (real tabby-node per node, real CNI plugin), four pods in two namespaces across the
// nodes, each serving TCP 80, TCP 81 and UDP 80; for every case the policies are applied as a user
// would (`tabbyctl apply`'s store path, Kubernetes NetworkPolicies in their own shape), every pod probes
// every other pod on the three ports (and node-1's host its local pods), and the verdicts are compared
// with an independent model (model.ts). The matrix of each case is printed; mismatches must be 0.
// Then: an agent killed and restarted keeps a denied flow denied the whole time.
import t from 'tap';
import path from 'node:path';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { createLab, destroyLab, type Lab } from '../../../src/lab/lab.js';
import { repoRoot } from '../../../src/lab/pods.js';
import { spawnIn, runIn } from '../../../src/lab/netns.js';
import { openDatastore } from '../../../src/datastore/index.js';
import { ResourceStore, validateResource, storeName, type Resource } from '../../../src/datastore/resources.js';
import { Model, type ModelPod, type Flow } from './model.js';
import type { ProbeTarget } from '../../helpers/policy-probe.js';
import { runId } from '../../helpers/run-tag.js';
import { statusOf } from '../agent/helpers.js';

const isRoot = process.getuid?.() === 0;
const hasNft = spawnSync('nft', ['--version']).status === 0;
const skip = !isRoot ? 'needs root (network namespaces)' : !hasNft ? 'needs nft (nftables package)' : false;
const run = runId();
const PROBE = path.join(repoRoot(), 'dist/test/helpers/policy-probe.js');
const PORTS: { proto: 'tcp' | 'udp'; port: number }[] = [
  { proto: 'tcp', port: 80 },
  { proto: 'tcp', port: 81 },
  { proto: 'udp', port: 80 },
];
type Obj = Record<string, unknown>;

const k8s = (ns: string, name: string, spec: Obj): Obj => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name, namespace: ns },
  spec,
});
const cnp = (ns: string, name: string, spec: Obj): Obj => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'NetworkPolicy',
  metadata: { name, namespace: ns },
  spec,
});
const gnp = (name: string, spec: Obj): Obj => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'GlobalNetworkPolicy',
  metadata: { name },
  spec,
});

interface Pod extends ModelPod {
  node: string;
  netns: string;
}

function cases(pods: Record<string, Pod>): { name: string; docs: Obj[] }[] {
  return [
    { name: 'no policy: everything allowed (profiles kns.*)', docs: [] },
    { name: 'default-deny ingress in ns-a (Kubernetes)', docs: [k8s('ns-a', 'deny-all', { podSelector: {}, policyTypes: ['Ingress'] })] },
    {
      name: 'ns-a allows ingress from namespaces labelled team=b (Kubernetes namespaceSelector)',
      docs: [k8s('ns-a', 'from-b', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'b' } } }] }] })],
    },
    {
      name: 'ns-a allows ingress from role=client pods of ns-a (Kubernetes podSelector)',
      docs: [k8s('ns-a', 'from-clients', { podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { role: 'client' } } }] }] })],
    },
    {
      name: 'ns-b egress denied except to a1 by nets (Calico)',
      docs: [
        cnp('ns-b', 'egress-to-a1', {
          selector: 'all()',
          types: ['Egress'],
          egress: [{ action: 'Allow', destination: { nets: [`${pods.a1!.ip}/32`] } }],
        }),
      ],
    },
    {
      name: 'ports: ns-a TCP 80 only; ns-b named port "alt" (b1: 80, b2: 81), Kubernetes UDP 80 to ns-a',
      docs: [
        cnp('ns-a', 'tcp-80', { selector: 'all()', ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [80] } }] }),
        cnp('ns-b', 'named-alt', { selector: 'all()', ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: ['alt'] } }] }),
        k8s('ns-a', 'udp-80', { podSelector: { matchLabels: { role: 'server' } }, ingress: [{ ports: [{ protocol: 'UDP', port: 80 }] }] }),
      ],
    },
    {
      name: 'Pass: ns-b → ns-a passes (order 10) to the profile over a default deny in ns-a',
      docs: [
        gnp('pass-from-b', {
          order: 10,
          selector: "projectcalico.org/namespace == 'ns-a'",
          ingress: [{ action: 'Pass', source: { namespaceSelector: "team == 'b'" } }],
        }),
        k8s('ns-a', 'deny-all', { podSelector: {}, policyTypes: ['Ingress'] }),
      ],
    },
    {
      name: 'order: GlobalNetworkPolicy deny TCP 81 (order 100) between ns-b allow-all (50) and ns-a allow-all (200)',
      docs: [
        gnp('deny-81', {
          order: 100,
          selector: 'all()',
          ingress: [{ action: 'Deny', protocol: 'TCP', destination: { ports: [81] } }, { action: 'Log' }],
        }),
        cnp('ns-a', 'allow-all', { order: 200, selector: 'all()', ingress: [{ action: 'Allow' }] }),
        cnp('ns-b', 'allow-all', { order: 50, selector: 'all()', ingress: [{ action: 'Allow' }] }),
      ],
    },
    {
      name: 'UDP: deny UDP from ns-b, allow the rest (GlobalNetworkPolicy, egress side)',
      docs: [
        gnp('no-udp-from-b', {
          order: 10,
          selector: "projectcalico.org/namespace == 'ns-b'",
          types: ['Egress'],
          egress: [{ action: 'Deny', protocol: 'UDP' }, { action: 'Allow' }],
        }),
      ],
    },
    { name: 'all policy removed: everything allowed again', docs: [] },
  ];
}

async function probeFrom(netns: string, targets: ProbeTarget[], ms = 1500): Promise<boolean[]> {
  const r = await runIn(netns, process.execPath, [PROBE, 'probe', JSON.stringify(targets), String(ms)], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`probe in ${netns} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as boolean[];
}

t.test(
  'truth table: every pod to every pod on TCP 80/81 and UDP 80, verdicts from an independent model',
  { skip, timeout: 900_000 },
  async (t) => {
    const prefix = `tb${run}po`;
    const o = { prefix, stateDir: `/tmp/${prefix}-state` };
    await destroyLab(o);
    const servers: ChildProcess[] = [];
    t.teardown(async () => {
      for (const s of servers) s.kill('SIGKILL');
      await destroyLab(o);
    });
    const lab: Lab = await createLab({ ...o, nodes: 2, mode: 'routed' });
    t.ok((await lab.waitForBgp(120_000)).ok, 'BGP established');
    const ds = await openDatastore({ type: 'file', dir: path.join(o.stateDir, 'datastore') });
    t.teardown(() => ds.close());
    const rs = new ResourceStore(ds);
    const nsLabels = { 'ns-a': { team: 'a' }, 'ns-b': { team: 'b' } };
    for (const [ns, l] of Object.entries(nsLabels)) {
      await rs.apply(
        validateResource({
          apiVersion: 'projectcalico.org/v3',
          kind: 'Profile',
          metadata: { name: `kns.${ns}` },
          spec: {
            ingress: [{ action: 'Allow' }],
            egress: [{ action: 'Allow' }],
            labelsToApply: Object.fromEntries(Object.entries(l).map(([k, v]) => [`pcns.${k}`, v])),
          },
        }),
      );
    }
    const defs: [string, string, string, Record<string, string>, number | undefined][] = [
      ['a1', 'node-1', 'ns-a', { role: 'server' }, undefined],
      ['a2', 'node-2', 'ns-a', { role: 'client' }, undefined],
      ['b1', 'node-1', 'ns-b', { role: 'client' }, 80],
      ['b2', 'node-2', 'ns-b', { role: 'server' }, 81],
    ];
    const pods: Record<string, Pod> = {};
    for (const [name, node, ns, labels, alt] of defs) {
      const p = await lab.addPod(node, name, { namespace: ns, labels });
      pods[name] = {
        name,
        ns,
        ip: p.ip,
        labels,
        node,
        netns: p.netns,
        ...(alt ? { ports: [{ name: 'alt', protocol: 'TCP', port: alt }] } : {}),
      };
      if (alt) {
        // the named port a pod spec's containerPort would give (the Kubernetes adapter's job in a cluster)
        const w = (await rs.list('WorkloadEndpoint')).items.find((x) => x.spec.pod === name)!;
        await rs.update({ ...w, spec: { ...w.spec, ports: [{ name: 'alt', protocol: 'TCP', port: alt }] } });
      }
      const srv = spawnIn(p.netns, process.execPath, [PROBE, 'serve'], { stdio: ['ignore', 'pipe', 'inherit'] });
      servers.push(srv);
      await new Promise<void>((resolve) => srv.stdout!.once('data', () => resolve()));
    }
    const node1 = lab.nodes.find((n) => n.name === 'node-1')!;
    const hostIp = '172.31.1.11';
    const list = Object.values(pods);
    const flows: Flow[] = [];
    for (const s of list) for (const d of list) if (s !== d) for (const p of PORTS) flows.push({ src: s, dst: d, ...p });
    for (const d of list.filter((p) => p.node === 'node-1'))
      for (const p of PORTS) flows.push({ src: { host: true, ip: hostIp }, dst: d, ...p });
    const srcKey = (f: Flow) => ('host' in f.src ? 'node-1(host)' : f.src.name);
    const netnsOfSrc = (k: string) => (k === 'node-1(host)' ? node1.netns : pods[k]!.netns);

    async function matrix(): Promise<boolean[]> {
      const bySrc = new Map<string, number[]>();
      flows.forEach((f, i) => bySrc.set(srcKey(f), [...(bySrc.get(srcKey(f)) ?? []), i]));
      const out: boolean[] = new Array<boolean>(flows.length).fill(false);
      await Promise.all(
        [...bySrc].map(async ([k, idx]) => {
          const r = await probeFrom(
            netnsOfSrc(k),
            idx.map((i) => ({ ip: flows[i]!.dst.ip, proto: flows[i]!.proto, port: flows[i]!.port })),
          );
          idx.forEach((i, j) => {
            out[i] = r[j]!;
          });
        }),
      );
      return out;
    }

    let total = 0,
      allowed = 0,
      denied = 0,
      mismatches = 0;
    let applied: Resource[] = [];
    for (const c of cases(pods)) {
      for (const r of applied) await rs.delete(r.kind, storeName(r));
      applied = [];
      for (const d of c.docs) applied.push(await rs.apply(validateResource(d)));
      const model = new Model(nsLabels, c.docs as Record<string, unknown>[]);
      const expected = flows.map((f) => model.allowed(f, (f.dst as Pod).node === 'node-1' ? hostIp : undefined));
      // Poll until the dataplane agrees (programming is asynchronous; the first case also waits for routes).
      const deadline = Date.now() + (total === 0 ? 90_000 : 20_000);
      let got = await matrix();
      while (got.some((g, i) => g !== expected[i]) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 500));
        got = await matrix();
      }
      const bad = got.map((g, i) => (g !== expected[i] ? i : -1)).filter((i) => i >= 0);
      total += flows.length;
      mismatches += bad.length;
      allowed += got.filter(Boolean).length;
      denied += got.filter((g) => !g).length;
      const cols = list.map((d) => d.name);
      t.comment(`case: ${c.name}`);
      t.comment(`  ${'from \\ to'.padEnd(13)} ${cols.map((c2) => `${c2}:t80 t81 u80`.padEnd(15)).join('')}`);
      for (const s of [...list.map((p) => p.name), 'node-1(host)']) {
        const cells = cols
          .map((dn) =>
            PORTS.map((p) => {
              const i = flows.findIndex((f) => srcKey(f) === s && f.dst.name === dn && f.proto === p.proto && f.port === p.port);
              if (i < 0) return ' . ';
              return `${got[i] ? ' + ' : ' x '}${got[i] !== expected[i] ? '!' : ''}`.padEnd(4);
            })
              .join('')
              .padEnd(15),
          )
          .join('');
        t.comment(`  ${s.padEnd(13)} ${cells}`);
      }
      for (const i of bad)
        t.comment(
          `  MISMATCH ${srcKey(flows[i]!)} → ${flows[i]!.dst.name} ${flows[i]!.proto}/${flows[i]!.port}: expected ${expected[i] ? 'allow' : 'deny'}, got ${got[i] ? 'allow' : 'deny'}`,
        );
      t.equal(bad.length, 0, `${c.name}: dataplane agrees with the model on ${flows.length} flows`);
    }
    t.comment(
      `truth table: ${cases(pods).length} cases, ${total} probes, ${allowed} allowed, ${denied} denied, mismatches = ${mismatches}`,
    );
    t.equal(mismatches, 0, 'mismatches = 0');
    // Removing every policy leaves no policy chain and no selector set behind.
    for (const n of lab.nodes) {
      const r = await runIn(n.netns, 'nft', ['list', 'table', 'inet', 'tabby-policy'], {});
      t.notMatch(r.stdout, /chain p[io]-|set s[46]-|set np/, `${n.name}: no policy chain or set left`);
    }

    // Restart keeps enforcement: a denied flow stays denied while node-1's agent is killed and restarted.
    await rs.apply(validateResource(k8s('ns-a', 'deny-all', { podSelector: {}, policyTypes: ['Ingress'] })));
    const deniedFlow: ProbeTarget[] = [{ ip: pods.a1!.ip, proto: 'tcp', port: 80 }];
    const allowedFlow: ProbeTarget[] = [{ ip: pods.b1!.ip, proto: 'tcp', port: 80 }];
    const until = Date.now() + 20_000;
    while ((await probeFrom(pods.b2!.netns, deniedFlow))[0] && Date.now() < until) await new Promise((r) => setTimeout(r, 300));
    t.same(await probeFrom(pods.b2!.netns, deniedFlow), [false], 'b2 → a1 denied before the restart');
    await lab.stopAgent('node-1', { signal: 'SIGKILL' });
    const passed: number[] = [];
    let probes = 0;
    const round = async () => {
      const r = await probeFrom(pods.b2!.netns, [...deniedFlow, ...deniedFlow, ...deniedFlow, ...deniedFlow], 400);
      probes += r.length;
      if (r.some(Boolean)) passed.push(Date.now());
    };
    await round(); // agent down
    const downProbes = probes;
    // while the new agent starts, lists, compiles and replaces the table: keep probing (4 new connections a round)
    let stopWatch = false;
    const watcher = (async () => {
      while (!stopWatch) await round();
    })();
    await lab.startAgent('node-1');
    const backBy = Date.now() + 60_000;
    while (!lab.agentRunning('node-1') && Date.now() < backBy) await new Promise((r) => setTimeout(r, 200));
    await new Promise((r) => setTimeout(r, 5000));
    stopWatch = true;
    await watcher;
    t.ok(
      downProbes > 0 && probes > downProbes,
      `${probes} connection attempts: ${downProbes} with the agent down, ${probes - downProbes} while it restarted`,
    );
    t.same(passed, [], 'the denied flow never passed while the agent was down or restarting');
    t.same(await probeFrom(pods.b2!.netns, allowedFlow), [true], 'an allowed flow still passes after the restart');
    // /status: the restarted agent adopted the table its previous run left (no table replaced)
    const pol = (await statusOf(lab, 'node-1'))?.policy;
    t.match(pol, { dataplane: 'nftables', table: 'inet tabby-policy', synced: true, programmed: true }, '/status has the policy engine');
    t.equal(pol?.localEndpoints, Object.values(pods).filter((p) => p!.node === 'node-1').length, "/status: node-1's endpoints");
    t.equal(pol?.lastProgram?.mode, 'adopt', '/status: the restart adopted the previous table');
    t.notOk(pol?.lastError, '/status: no error');
  },
);
