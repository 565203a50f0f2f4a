// tabbyctl round trip of IPReservation and IPPool allowedUses in Calico's YAML: the compiled CLI as a
// child process against the file datastore; what `get -o yaml` prints applies again unchanged; a bad
// entry is refused with its path and nothing is changed.
import { runTabbyctl } from '../../helpers/tabbyctl.js';
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { runTag } from '../../helpers/run-tag.js';

const tag = `${runTag()}ipr`;

const tabbyctl = (dsDir: string, args: string[], input = '') =>
  runTabbyctl([...args, '--datastore-type', 'file', '--datastore-dir', dsDir], { input });

// Calico's own sample (docs: reference/resources/ipreservation) and a pool split by use.
const YAML = `apiVersion: projectcalico.org/v3
kind: IPReservation
metadata:
  name: my-ipreservation-1
spec:
  reservedCIDRs:
    - 192.168.2.3
    - 10.0.2.3/32
    - cafe:f00d::/123
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: tunnels-only
spec:
  cidr: 10.244.0.0/24
  vxlanMode: Always
  allowedUses: [Tunnel]
`;

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

t.test('IPReservation and IPPool allowedUses round-trip through tabbyctl', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-`));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const ds = path.join(dir, 'ds');
  const r = await tabbyctl(ds, ['apply', '-f', '-'], YAML);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /Successfully applied 2 resource\(s\): IPReservation\(my-ipreservation-1\), IPPool\(tunnels-only\)/);

  const res = parseYaml((await tabbyctl(ds, ['get', 'ipreservation', 'my-ipreservation-1', '-o', 'yaml'])).stdout) as Obj;
  t.same(res.spec, { reservedCIDRs: ['192.168.2.3', '10.0.2.3/32', 'cafe:f00d::/123'] }, 'comes back as written');
  const pool = parseYaml((await tabbyctl(ds, ['get', 'ippool', 'tunnels-only', '-o', 'yaml'])).stdout) as Obj;
  t.same(pool.spec.allowedUses, ['Tunnel']);

  const printed = (await tabbyctl(ds, ['get', 'ipreservations', 'my-ipreservation-1', '-o', 'yaml'])).stdout;
  const again = await tabbyctl(ds, ['apply', '-f', '-'], printed);
  t.equal(again.code, 0, again.stderr);
  const after = parseYaml((await tabbyctl(ds, ['get', 'ipr', 'my-ipreservation-1', '-o', 'yaml'])).stdout) as Obj;
  t.same(after.spec, res.spec, 'what get prints applies unchanged');

  const table = await tabbyctl(ds, ['get', 'ipreservations']);
  t.match(table.stdout, /^NAME\s+RESERVEDCIDRS\nmy-ipreservation-1\s+192\.168\.2\.3,10\.0\.2\.3\/32,cafe:f00d::\/123\n$/);

  const bad = await tabbyctl(
    ds,
    ['apply', '-f', '-'],
    YAML.split('---')[0]!.replace('10.0.2.3/32', '10.0.2.300/32').replace('reservedCIDRs:', 'reservedCIDRS: []\n  reservedCIDRs:'),
  );
  t.equal(bad.code, 1);
  t.match(
    bad.stderr,
    /IPReservation "my-ipreservation-1": unknown field spec\.reservedCIDRS; spec\.reservedCIDRs\[1\] "10\.0\.2\.300\/32" is not/,
  );
  t.match(bad.stderr, /nothing was changed/);
  const badUse = await tabbyctl(ds, ['apply', '-f', '-'], YAML.split('---')[1]!.replace('[Tunnel]', '[Tunnel, Pods]'));
  t.equal(badUse.code, 1);
  t.match(badUse.stderr, /spec\.allowedUses\[1\] "Pods" is not one of Workload, Tunnel/);

  const del = await tabbyctl(ds, ['delete', 'ipreservation', 'my-ipreservation-1']);
  t.equal(del.code, 0, del.stderr);
  t.equal((await tabbyctl(ds, ['get', 'ipreservation', 'my-ipreservation-1'])).code, 1);
});
