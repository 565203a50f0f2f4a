import t from 'tap';
import { MemoryDatastore } from '../../../src/datastore/memory.js';
import {
  ResourceStore,
  ResourceExists,
  ResourceNotFound,
  ResourceConflict,
  ValidationError,
  resolveKind,
  resourceKey,
  type IPPool,
} from '../../../src/datastore/resources.js';
import { DatastoreConflict } from '../../../src/datastore/types.js';

const pool = (name: string, cidr: string, extra: Record<string, unknown> = {}): IPPool =>
  ({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name }, spec: { cidr, ...extra } }) as unknown as IPPool;

t.test('kinds accept calicoctl aliases', async (t) => {
  t.equal(resolveKind('ippools'), 'IPPool');
  t.equal(resolveKind('pool'), 'IPPool');
  t.equal(resolveKind('BGPPeer'), 'BGPPeer');
  t.equal(resolveKind('bgpconfig'), 'BGPConfiguration');
  t.equal(resolveKind('nodes'), 'Node');
  t.equal(resolveKind('networkpolicy'), 'NetworkPolicy');
  t.throws(() => resolveKind('hostendpoint'), { code: 'EUNKNOWNKIND' });
});

t.test('create / get / list / update (CAS) / apply / delete', async (t) => {
  const ds = new MemoryDatastore();
  const rs = new ResourceStore(ds, () => new Date('2026-01-01T00:00:00Z'));
  const created = await rs.create(pool('p1', '10.0.0.0/16'));
  t.equal(created.metadata.resourceVersion, '1');
  t.equal(created.metadata.creationTimestamp, '2026-01-01T00:00:00.000Z');
  t.match(created.metadata.uid, /^[0-9a-f-]{36}$/);
  t.equal(created.spec.blockSize, 26, 'defaults stored');
  const raw = await ds.get<Record<string, unknown>>(resourceKey('IPPool', 'p1'));
  t.notOk(
    (raw?.value as { metadata: Record<string, unknown> }).metadata.resourceVersion,
    'resourceVersion is not stored, it is the revision',
  );
  await t.rejects(rs.create(pool('p1', '10.0.0.0/16')), ResourceExists);
  await t.rejects(rs.create(pool('p2', '10.0.128.0/24')), {
    message: /IPPool "p2": spec.cidr 10.0.128.0\/24 overlaps IPPool "p1" \(10.0.0.0\/16\)/,
  });

  const upd = await rs.update({ ...created, spec: { ...created.spec, natOutgoing: true } });
  t.equal(upd.metadata.resourceVersion, '2');
  t.equal(upd.metadata.uid, created.metadata.uid, 'uid kept');
  const stale = rs.update({ ...created, spec: { ...created.spec, disabled: true } });
  await t.rejects(stale, ResourceConflict);
  const err = await rs.update({ ...created, spec: { ...created.spec, disabled: true } }).catch((e: unknown) => e);
  t.ok(err instanceof DatastoreConflict, 'also a DatastoreConflict');
  t.equal((err as DatastoreConflict).actualRevision, 2);
  await t.rejects(rs.update({ ...upd, spec: { ...upd.spec, cidr: '10.1.0.0/16' } }), { message: /spec.cidr cannot be changed/ });
  t.equal((await rs.get('IPPool', 'p1'))?.spec.disabled, false, 'stale update changed nothing');

  const applied = await rs.apply(pool('p1', '10.0.0.0/16', { disabled: true }));
  t.equal(applied.metadata.resourceVersion, '3');
  t.equal(applied.spec.disabled, true);
  const applied2 = await rs.apply(pool('p3', '10.2.0.0/16'));
  t.equal(applied2.metadata.resourceVersion, '4');
  t.same(
    (await rs.list('IPPool')).items.map((p) => p.metadata.name),
    ['p1', 'p3'],
  );
  t.equal((await rs.list('IPPool')).revision, 4);

  await t.rejects(rs.delete('IPPool', 'p1', '2'), ResourceConflict);
  const gone = await rs.delete('IPPool', 'p1', '3');
  t.equal(gone.spec.cidr, '10.0.0.0/16');
  await t.rejects(rs.delete('IPPool', 'p1'), ResourceNotFound);
  t.equal(await rs.get('IPPool', 'p1'), undefined);
  await t.rejects(rs.create(pool('bad', '10.9.0.0/16', { blockSize: 40 })), ValidationError);
});

t.test('watch yields typed events resumably', async (t) => {
  const ds = new MemoryDatastore();
  const rs = new ResourceStore(ds);
  await rs.create(pool('p1', '10.0.0.0/16'));
  const { revision } = await rs.list('IPPool');
  await rs.apply(pool('p1', '10.0.0.0/16', { natOutgoing: true }));
  await rs.delete('IPPool', 'p1');
  await ds.create('/tabby/ipam/v2/config', {});
  const ac = new AbortController();
  const seen: string[] = [];
  for await (const ev of rs.watch('IPPool', revision + 1, ac.signal)) {
    seen.push(
      `${ev.type}:${ev.name}:${ev.revision}:${ev.type === 'put' ? String(ev.resource.spec.natOutgoing) : String(ev.previous?.spec.natOutgoing)}`,
    );
    if (seen.length === 2) ac.abort();
  }
  t.same(seen, ['put:p1:2:true', 'delete:p1:3:true']);
});
