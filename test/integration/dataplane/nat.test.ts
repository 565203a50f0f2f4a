// natOutgoing in a real kernel: a pod reaches an address outside all pools only when its pool has
// natOutgoing (node 2 has no route back to the pod's block, so only a masqueraded ping returns);
// tabby's table is replaced atomically and removed when no pool wants NAT.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import {
  applyNatOutgoing,
  removeNatOutgoing,
  wireWorkload,
  workloadIfName,
  ensureForwarding,
  readSysctl,
} from '../../../src/dataplane/index.js';
import { isRoot, ipIn, makeNetns, ping, twoNodes } from '../../helpers/dataplane-netns.js';

const hasNft = (() => {
  try {
    execFileSync('nft', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const skip = !isRoot() ? 'needs root (network namespaces)' : !hasNft ? 'nft (nftables) is not installed' : false;

t.test('natOutgoing', { skip }, async (t) => {
  const [n1, n2] = await twoNodes(t, 'n');
  ipIn(n2.name, 'route', 'del', 'default'); // node 2 cannot route back to 10.68.1.0/26 by itself
  ensureForwarding({ netnsPath: n1.path });
  t.equal(readSysctl('net/ipv4/ip_forward', n1.path), '1');
  const pod = makeNetns(t, 'np1');
  await wireWorkload({
    hostIfName: workloadIfName('default', 'nat'),
    containerNetnsPath: pod.path,
    hostNetnsPath: n1.path,
    ipv4: '10.68.1.2',
  });
  const ruleset = (): string => execFileSync('ip', ['netns', 'exec', n1.name, 'nft', 'list', 'ruleset'], { encoding: 'utf8' });

  t.test('no NAT: the reply cannot come back', async (t) => {
    applyNatOutgoing([{ cidr: '10.68.0.0/16', natOutgoing: false }], { netnsPath: n1.path });
    t.notMatch(ruleset(), /table ip tabby/, 'no tabby table without a natOutgoing pool');
    t.notOk(ping(pod.name, n2.ip, 1), 'unreachable without masquerade');
  });

  t.test('natOutgoing pool: masqueraded to the node address', async (t) => {
    applyNatOutgoing(
      [
        { cidr: '10.68.0.0/16', natOutgoing: true },
        { cidr: '10.69.0.0/16', natOutgoing: false },
      ],
      { netnsPath: n1.path },
    );
    const rs = ruleset();
    t.match(rs, /ip saddr @masq-pools ip daddr != @all-pools masquerade/);
    t.match(rs, /elements = \{ 10\.68\.0\.0\/16, 10\.69\.0\.0\/16 \}/);
    t.ok(ping(pod.name, n2.ip), 'pod reaches node 2 through NAT');
  });

  t.test('destinations inside a pool are not masqueraded', async (t) => {
    applyNatOutgoing(
      [
        { cidr: '10.68.0.0/16', natOutgoing: true },
        { cidr: '172.31.0.0/24', natOutgoing: false },
      ],
      { netnsPath: n1.path },
    );
    t.notOk(ping(pod.name, n2.ip, 1), '172.31.0.2 is in a pool now: no masquerade, no reply');
  });

  t.test('replaced atomically, removed when unused', async (t) => {
    applyNatOutgoing([{ cidr: '10.68.0.0/16', natOutgoing: true }], { netnsPath: n1.path });
    t.equal((ruleset().match(/table ip tabby/g) ?? []).length, 1, 'one table');
    removeNatOutgoing({ netnsPath: n1.path });
    t.notMatch(ruleset(), /tabby/);
    removeNatOutgoing({ netnsPath: n1.path });
  });
});
