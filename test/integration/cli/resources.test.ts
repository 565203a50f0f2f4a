// tabbyctl resource commands end to end: the compiled CLI (dist/src/cli/main.js) as a child process,
// against the file datastore and a real etcd. A Calico multi-document YAML applies unchanged and
// comes back with defaults; bad input (invalid CIDR, unknown kind, broken YAML, stale revision)
// gives a clear error naming the document and changes nothing.
import { runTabbyctl } from '../../helpers/tabbyctl.js';
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Test } from 'tap';
import { startEtcd, etcdMissing } from '../../helpers/etcd.js';
import { runTag } from '../../helpers/run-tag.js';

const tag = `${runTag()}cli`;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

const tabbyctl = (args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Result> => runTabbyctl(args, opts);

const CALICO_YAML = `# A Calico user's file, unchanged
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool-a
spec:
  cidr: 10.244.0.0/16
  ipipMode: Always
  natOutgoing: true
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: rack1-tor
spec:
  peerIP: 192.0.2.1
  asNumber: 64512.100
  nodeSelector: rack == 'rack-1'
---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata:
  name: default
spec:
  nodeToNodeMeshEnabled: false
  asNumber: 63400
`;

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function suite(t: Test, name: string, ds: () => { args: string[]; env: NodeJS.ProcessEnv }, full = true): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-${name}-`));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = (n: string, text: string) => {
    const f = path.join(dir, n);
    fs.writeFileSync(f, text);
    return f;
  };
  const run = (args: string[], input?: string) => {
    const d = ds();
    return tabbyctl([...args, ...d.args], { env: d.env, ...(input === undefined ? {} : { input }) });
  };
  const pools = async (): Promise<Obj[]> => {
    const r = await run(['get', 'ippools', '-o', 'json']);
    return (JSON.parse(r.stdout) as { items: Obj[] }).items;
  };

  t.test(`${name}: apply a Calico multi-doc YAML, get it back with defaults`, async (t) => {
    const f = file('calico.yaml', CALICO_YAML);
    const r = await run(['apply', '-f', f]);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /Successfully applied 3 resource\(s\): IPPool\(pool-a\), BGPPeer\(rack1-tor\), BGPConfiguration\(default\)/);

    // One get for all three documents: each comes back with Calico's defaults filled in.
    const all = parseYaml((await run(['get', '-f', f, '-o', 'yaml'])).stdout) as Obj;
    t.same(
      all.items.map((x: Obj) => `${x.apiVersion} ${x.kind}/${x.metadata.name}`),
      ['projectcalico.org/v3 IPPool/pool-a', 'projectcalico.org/v3 BGPPeer/rack1-tor', 'projectcalico.org/v3 BGPConfiguration/default'],
    );
    const [pool, peer, cfg] = all.items as Obj[];
    t.same(pool!.spec, {
      cidr: '10.244.0.0/16',
      blockSize: 26,
      ipipMode: 'Always',
      vxlanMode: 'Never',
      natOutgoing: true,
      disabled: false,
      nodeSelector: 'all()',
      allowedUses: ['Workload', 'Tunnel'],
    });
    t.match(pool!.metadata.resourceVersion, /^\d+$/);
    t.ok(pool!.metadata.creationTimestamp && pool!.metadata.uid);
    t.same(
      peer!.spec,
      { nodeSelector: "rack == 'rack-1'", peerIP: '192.0.2.1', asNumber: 64512 * 65536 + 100 },
      'asdot AS number understood',
    );
    t.same(cfg!.spec, { logSeverityScreen: 'Info', nodeToNodeMeshEnabled: false, asNumber: 63400, listenPort: 179 });

    const one = parseYaml((await run(['get', 'bgpconfig', 'default', '-o', 'yaml'])).stdout) as Obj;
    t.same(one, cfg, 'get kind name -o yaml prints the one resource');

    const table = await run(['get', 'pool']);
    t.match(table.stdout, /^NAME\s+CIDR\s+SELECTOR\npool-a\s+10\.244\.0\.0\/16\s+all\(\)\n$/);
    const wide = await run(['get', 'bgppeer', '-o', 'wide']);
    t.match(wide.stdout, /rack1-tor\s+192\.0\.2\.1\s+\(selector\) rack == 'rack-1'\s+64512\.100/);
  });

  if (full)
    t.test(`${name}: create from stdin; create of an existing resource fails`, async (t) => {
      const doc = JSON.stringify({
        apiVersion: 'projectcalico.org/v3',
        kind: 'IPPool',
        metadata: { name: 'from-stdin' },
        spec: { cidr: 'fd00:10::/64', blockSize: 122 },
      });
      const r = await run(['create', '-f', '-'], doc);
      t.equal(r.code, 0, r.stderr);
      const dup = await run(['create', '-f', '-'], doc);
      t.equal(dup.code, 1);
      t.match(dup.stderr, /IPPool "from-stdin" already exists/);
      t.match(dup.stderr, /nothing was changed/);
    });

  if (full)
    t.test(`${name}: a file with bad documents names every one and changes nothing`, async (t) => {
      const before = await pools();
      const f = file(
        'bad.yaml',
        [
          'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: good-one}\nspec: {cidr: 10.250.0.0/16}',
          'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: bad-cidr}\nspec: {cidr: 10.300.0.0/16}',
          'apiVersion: projectcalico.org/v3\nkind: NoSuchKind\nmetadata: {name: np}\nspec: {}',
          'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: big-block}\nspec: {cidr: 10.251.0.0/16, blockSize: 33}',
        ].join('\n---\n'),
      );
      const r = await run(['apply', '-f', f]);
      t.equal(r.code, 1);
      t.match(r.stderr, /3 problems in .*bad\.yaml/);
      t.match(r.stderr, /document 2 \(line 6\): IPPool "bad-cidr": spec\.cidr "10\.300\.0\.0\/16" is not a valid CIDR/);
      t.match(r.stderr, /document 3 \(line 11\): NoSuchKind "np": unknown kind "NoSuchKind"/);
      t.match(r.stderr, /document 4 \(line 16\): IPPool "big-block": spec\.blockSize 33 is out of range 20\.\.32 for IPv4/);
      t.match(r.stderr, /nothing was changed/);
      t.same(await pools(), before, 'not even the good document was applied');

      const broken = await run([
        'apply',
        '-f',
        file('broken.yaml', 'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: x\n spec: [\n'),
      ]);
      t.equal(broken.code, 1);
      t.match(broken.stderr, /broken\.yaml document 1 \(line 1\): invalid YAML/);

      const unknown = await run(['get', 'nosuchkinds']);
      t.equal(unknown.code, 1);
      t.match(unknown.stderr, /unknown resource kind "nosuchkinds"/);

      const overlap = await run(
        ['create', '-f', '-'],
        'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: overlapping}\nspec: {cidr: 10.244.128.0/24}\n',
      );
      t.equal(overlap.code, 1);
      t.match(overlap.stderr, /overlaps IPPool "pool-a" \(10\.244\.0\.0\/16\)/);
      t.same(await pools(), before, 'broken YAML and the overlapping pool changed nothing either');
    });

  t.test(`${name}: replace with a stale resourceVersion is refused`, async (t) => {
    const old = (await run(['get', 'ippool', 'pool-a', '-o', 'yaml'])).stdout;
    const changed = old.replace('natOutgoing: true', 'natOutgoing: false');
    const r1 = await run(['replace', '-f', '-'], changed);
    t.equal(r1.code, 0, r1.stderr);
    const stale = await run(['replace', '-f', '-'], old.replace('disabled: false', 'disabled: true'));
    t.equal(stale.code, 1);
    t.match(stale.stderr, /IPPool "pool-a" was modified: resourceVersion \d+ is stale \(it is now \d+\)/);
    const now = parseYaml((await run(['get', 'ippool', 'pool-a', '-o', 'yaml'])).stdout) as Obj;
    t.equal(now.spec.natOutgoing, false, 'the fresh replace happened');
    t.equal(now.spec.disabled, false, 'the stale one changed nothing');
  });

  t.test(`${name}: delete by kind and name, and from a file`, async (t) => {
    if (!full)
      await run(
        ['create', '-f', '-'],
        JSON.stringify({
          apiVersion: 'projectcalico.org/v3',
          kind: 'IPPool',
          metadata: { name: 'from-stdin' },
          spec: { cidr: 'fd00:10::/64' },
        }),
      );
    const r = await run(['delete', 'pool', 'from-stdin']);
    t.equal(r.code, 0, r.stderr);
    const gone = await run(['get', 'ippool', 'from-stdin']);
    t.equal(gone.code, 1);
    t.match(gone.stderr, /IPPool "from-stdin" does not exist/);
    const missing = await run(['delete', 'ippool', 'from-stdin']);
    t.equal(missing.code, 1);
    t.match(missing.stderr, /IPPool "from-stdin" does not exist/);
    const f = file('calico.yaml', CALICO_YAML);
    const del = await run(['delete', '-f', f]);
    t.equal(del.code, 0, del.stderr);
    t.same(await pools(), []);
  });
}

t.test('file datastore', async (t) => {
  const dsDir = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-ds-`));
  t.teardown(() => fs.rmSync(dsDir, { recursive: true, force: true }));
  // Environment says etcd at a dead address; the flags must win.
  suite(t, 'file', () => ({
    args: ['--datastore-type', 'file', '--datastore-dir', dsDir],
    env: { DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: 'http://127.0.0.1:1' },
  }));
});

t.test('etcdv3 datastore', { skip: etcdMissing() ?? false }, async (t) => {
  const etcd = await startEtcd(t);
  // The backend-independent input checks run on the file store only; etcd gets the round trips.
  suite(t, 'etcdv3', () => ({ args: [], env: { DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: etcd.endpoints.join(',') } }), false);
});
