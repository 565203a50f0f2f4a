// tabbyctl round trip of the BGP policy resources in Calico's YAML: a BGPFilter with every 3.32 field,
// a BGPPeer that attaches filters, a BGPConfiguration with communities, prefixAdvertisements and
// service ranges. The compiled CLI runs as a child process against the file datastore; what `get -o
// yaml` prints applies again unchanged, and a bad rule is refused with its path.
import { runTabbyctl } from '../../helpers/tabbyctl.js';
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { runTag } from '../../helpers/run-tag.js';

const tag = `${runTag()}bgpf`;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

const tabbyctl = (dsDir: string, args: string[], input = ''): Promise<Result> =>
  runTabbyctl([...args, '--datastore-type', 'file', '--datastore-dir', dsDir], { input });

const YAML = `apiVersion: projectcalico.org/v3
kind: BGPFilter
metadata:
  name: tor-policy
spec:
  importV4:
    - action: Reject
      matchOperator: In
      cidr: 10.66.0.0/16
      prefixLength:
        min: 24
        max: 32
    - action: Accept
      communities:
        values: ["65010:1"]
      operations:
        - setPriority: {value: 512}
  exportV4:
    - action: Accept
      matchOperator: In
      cidr: 192.168.0.0/16
      peerType: eBGP
      operations:
        - addCommunity: {value: "65000:100"}
        - prependASPath: {prefix: [64512, 64512]}
    - action: Reject
      source: RemotePeers
      asPathPrefix: [65099]
  importV6:
    - action: Reject
      matchOperator: NotIn
      cidr: fd00::/8
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: tor
spec:
  peerIP: 192.0.2.1
  asNumber: 65010
  filters: [tor-policy]
  nextHopMode: Self
  sourceAddress: UseNodeIP
  numAllowedLocalASNumbers: 1
---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata:
  name: default
spec:
  asNumber: 64512
  serviceClusterIPs:
    - cidr: 10.96.0.0/12
  serviceLoadBalancerIPs:
    - cidr: 203.0.113.0/24
  communities:
    - name: bgp-large-community
      value: 64512:300:100
  prefixAdvertisements:
    - cidr: 192.168.0.0/16
      communities: [bgp-large-community, "64512:120"]
`;

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

t.test('BGPFilter, BGPPeer.filters and BGPConfiguration communities round-trip through tabbyctl', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-`));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'calico.yaml');
  fs.writeFileSync(file, YAML);
  const ds = path.join(dir, 'ds');
  const r = await tabbyctl(ds, ['apply', '-f', file]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /Successfully applied 3 resource\(s\): BGPFilter\(tor-policy\), BGPPeer\(tor\), BGPConfiguration\(default\)/);

  const got = parseYaml((await tabbyctl(ds, ['get', '-f', file, '-o', 'yaml'])).stdout) as Obj;
  const [filter, peer, cfg] = got.items as Obj[];
  const want = parseYaml(YAML.split('---')[0]!) as Obj;
  t.same(filter!.spec, want.spec, 'BGPFilter spec comes back as written');
  t.same(peer!.spec.filters, ['tor-policy']);
  t.equal(peer!.spec.nextHopMode, 'Self');
  t.same(cfg!.spec.prefixAdvertisements, [{ cidr: '192.168.0.0/16', communities: ['bgp-large-community', '64512:120'] }]);

  // What get prints applies again and changes nothing but the revision.
  const again = await tabbyctl(ds, ['apply', '-f', '-'], (await tabbyctl(ds, ['get', 'bgpfilter', 'tor-policy', '-o', 'yaml'])).stdout);
  t.equal(again.code, 0, again.stderr);
  const after = parseYaml((await tabbyctl(ds, ['get', 'bgpfilters', 'tor-policy', '-o', 'yaml'])).stdout) as Obj;
  t.same(after.spec, filter!.spec);

  const table = await tabbyctl(ds, ['get', 'bgpfilters']);
  t.match(table.stdout, /^NAME\s+IMPORTV4\s+EXPORTV4\s+IMPORTV6\s+EXPORTV6\ntor-policy\s+2\s+2\s+1\s+0\n$/);

  const bad = await tabbyctl(
    ds,
    ['apply', '-f', '-'],
    YAML.split('---')[0]!.replace(
      'action: Reject\n      matchOperator: NotIn',
      'action: Reject\n      operations: [{setPriority: {value: 1}}]\n      matchOperator: NotIn',
    ),
  );
  t.equal(bad.code, 1);
  t.match(bad.stderr, /BGPFilter "tor-policy": spec\.importV6\[0\]\.operations may only be used with action Accept/);
  t.match(bad.stderr, /nothing was changed/);

  const del = await tabbyctl(ds, ['delete', 'bgpfilter', 'tor-policy']);
  t.equal(del.code, 0, del.stderr);
  t.equal((await tabbyctl(ds, ['get', 'bgpfilter', 'tor-policy'])).code, 1);
});
