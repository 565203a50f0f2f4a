// On etcd, a CNI ADD's address, handle and WorkloadEndpoint are one Txn, and so are a DEL's release and
// endpoint delete: etcd's revision moves by exactly one per command (every Txn with a write is one
// revision), and the endpoint's revision is the handle's. A real etcd (test/helpers/etcd.ts).
import t from 'tap';
import { EtcdDatastore } from '../../../src/datastore/etcd.js';
import type { PoolInfo } from '../../../src/ipam/index.js';
import { handleKey } from '../../../src/ipam/store.js';
import { etcdMissing, startEtcd } from '../../helpers/etcd.js';
import { cniOverStore, handleOf, wepKeyOf } from '../../helpers/cni-store.js';

const pool: PoolInfo = { name: 'p', cidr: '10.72.0.0/16', family: 4, blockSize: 26, disabled: false, nodeSelector: '' };

t.test('etcd: one Txn per CNI ADD and per DEL, endpoint included', { skip: etcdMissing() ?? false }, async (t) => {
  const etcd = await startEtcd(t);
  const ds = new EtcdDatastore(etcd.endpoints);
  t.teardown(() => ds.close());
  const { ipam, run, wep } = cniOverStore(ds, pool);
  await run('ADD', 'warm'); // claims the block, creates the namespace's profile
  for (const pod of ['a', 'b', 'c']) {
    const rev = await ds.revision();
    const res = await run('ADD', pod);
    t.equal((await ds.revision()) - rev, 1, `ADD ${pod} (${res!.ips[0]!.address}): one revision`);
    const [h, w] = await Promise.all([ds.get(handleKey(handleOf(pod))), ds.get(wepKeyOf(pod))]);
    t.ok(h && w && h.revision === w.revision, `handle and endpoint written in one Txn (revision ${h?.revision}, ${w?.revision})`);
    t.same((await wep(pod))?.spec.ipNetworks, [res!.ips[0]!.address], 'the endpoint names the address');
  }
  for (const pod of ['a', 'b', 'c']) {
    const rev = await ds.revision();
    await run('DEL', pod);
    t.equal((await ds.revision()) - rev, 1, `DEL ${pod}: one revision`);
    t.equal(await ds.get(wepKeyOf(pod)), undefined, 'endpoint gone');
    t.equal(await ds.get(handleKey(handleOf(pod))), undefined, 'handle gone');
  }
  t.same((await ipam.check()).leaked, [], 'nothing leaked');
});
