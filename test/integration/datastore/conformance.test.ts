// The datastore conformance suite against all three backends: memory, file (a temp dir, child
// processes sharing it) and a real etcd v3 started for this test on loopback.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MemoryDatastore, FileDatastore, type Datastore } from '../../../src/datastore/index.js';
import { EtcdDatastore } from '../../../src/datastore/etcd.js';
import { startEtcd, etcdMissing } from '../../helpers/etcd.js';
import { conformance } from './suite.js';
import { runTag } from '../../helpers/run-tag.js';

const tag = `${runTag()}ds`;

t.test('memory', async (t) => {
  const shared = new MemoryDatastore();
  // Every "client" is a view of the same in-process store; closing one must not end the others.
  const view = (): Datastore => ({
    kind: 'memory',
    get: (k) => shared.get(k),
    list: (p) => shared.list(p),
    revision: () => shared.revision(),
    create: (k, v) => shared.create(k, v),
    update: (k, v, r) => shared.update(k, v, r),
    delete: (k, r) => shared.delete(k, r),
    commit: (ops) => shared.commit(ops),
    watch: (p, f, s) => shared.watch(p, f, s),
    close: async () => undefined,
  });
  conformance(t, { name: 'memory', open: async () => view() });
});

t.test('file', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-file-`));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  conformance(t, {
    name: 'file',
    open: async () => new FileDatastore(dir),
    processConfig: { type: 'file', dir },
    compact: async (ds) => (ds as FileDatastore).compact(0),
  });
});

t.test('etcdv3', { skip: etcdMissing() ?? false }, async (t) => {
  const etcd = await startEtcd(t);
  conformance(t, {
    name: 'etcdv3',
    open: async () => new EtcdDatastore(etcd.endpoints),
    processConfig: { type: 'etcdv3', etcdEndpoints: etcd.endpoints },
    compact: async (ds, revision) => {
      await (ds as EtcdDatastore).client.kv.compact({ revision: String(revision), physical: true });
    },
  });
});
