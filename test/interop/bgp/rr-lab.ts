// A star of network namespaces for the speaker's interop tests: one hub netns holding a bridge, N leaf
// namespaces each joined to it by a veth (`eth0` inside, 10.<net>.0.<i>/24). Everything is removed
// in t.teardown. Names: tb<run><tag>h (hub), tb<run><tag><i> (leaves), ≤ 15 chars.
import { spawnSync } from 'node:child_process';
import { ip, runTag, type Teardown } from '../../helpers/netns.js';

export interface Leaf {
  name: string;
  path: string;
  address: string;
  /** fd00:<net>::<i> when the star was made with IPv6. */
  address6: string;
}

export function makeStar(t: Teardown, tag: string, net: number, n: number, opts: { ipv6?: boolean } = {}): Leaf[] {
  const base = `${runTag()}${tag}`.slice(0, 13);
  const hub = `${base}h`;
  const leaves = Array.from({ length: n }, (_, i) => `${base}${i + 1}`);
  const all = [hub, ...leaves];
  const del = (): void => {
    for (const x of all) spawnSync('ip', ['netns', 'del', x], { stdio: 'ignore' });
  };
  del();
  t.teardown(del);
  for (const x of all) {
    ip(undefined, 'netns', 'add', x);
    ip(x, 'link', 'set', 'lo', 'up');
  }
  ip(hub, 'link', 'add', 'br0', 'type', 'bridge');
  ip(hub, 'link', 'set', 'br0', 'up');
  return leaves.map((name, i) => {
    const hostSide = `v${i + 1}`;
    ip(hub, 'link', 'add', hostSide, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name);
    ip(hub, 'link', 'set', hostSide, 'master', 'br0');
    ip(hub, 'link', 'set', hostSide, 'up');
    const address = `10.${net}.0.${i + 1}`;
    ip(name, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
    const address6 = `fd00:${net}::${i + 1}`;
    if (opts.ipv6) {
      spawnSync('ip', ['netns', 'exec', name, 'sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0'], { stdio: 'ignore' });
      ip(name, 'addr', 'add', `${address6}/64`, 'dev', 'eth0', 'nodad');
    }
    ip(name, 'link', 'set', 'eth0', 'up');
    return { name, path: `/var/run/netns/${name}`, address, address6 };
  });
}

/** A BIRD 2 config: one iBGP session per neighbour (protocol names p1, p2, …), static routes exported. */
export function birdConfig(o: {
  routerId: string;
  asn: number;
  local: string;
  neighbors: { address: string; asn: number; rrClient?: boolean }[];
  routes?: string[];
  rrClusterId?: string;
  gracefulRestart?: boolean;
  family?: 'ipv4' | 'ipv6';
}): string {
  const fam = o.family ?? 'ipv4';
  const statics = (o.routes ?? []).map((r) => `  route ${r} blackhole;`).join('\n');
  const protos = o.neighbors
    .map(
      (n, i) => `
protocol bgp p${i + 1} {
  local ${o.local} as ${o.asn};
  neighbor ${n.address} as ${n.asn};
  direct;
  connect delay time 1;
  connect retry time 2;
  error wait time 1, 5;
  hold time 30;
${n.rrClient ? '  rr client;\n' : ''}${o.rrClusterId ? `  rr cluster id ${o.rrClusterId};\n` : ''}${o.gracefulRestart ? '  graceful restart on;\n  graceful restart time 120;\n' : ''}  ${fam} { import all; export all; };
}`,
    )
    .join('\n');
  return `router id ${o.routerId};
log stderr all;
protocol device { scan time 10; }
protocol static st { ${fam};
${statics}
}
${protos}
`;
}
