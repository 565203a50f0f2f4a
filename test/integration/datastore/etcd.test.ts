// etcd-specific behaviour: surviving an etcd restart (calls retry, the watch resumes without losing
// or repeating events), several endpoints with one dead, and TLS client certificates.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { EtcdDatastore } from '../../../src/datastore/etcd.js';
import { openDatastore, datastoreConfigFromEnv, DatastoreUnavailable, type WatchEvent } from '../../../src/datastore/index.js';
import { startEtcd, etcdMissing, makeTestCerts, freePort } from '../../helpers/etcd.js';
import { runTag } from '../../helpers/run-tag.js';

const skip = etcdMissing() ?? false;
const noOpenssl = spawnSync('openssl', ['version']).status === 0 ? false : 'openssl is not installed (needed to make test certificates)';

t.test('survives an etcd restart: writes retry, the watch resumes exactly', { skip }, async (t) => {
  const etcd = await startEtcd(t);
  const ds = new EtcdDatastore(etcd.endpoints, {}, { opTimeoutMs: 20_000 });
  t.teardown(() => ds.close());
  const p = '/restart/';
  const first = await ds.create(`${p}a`, 1);
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 30_000);
  t.teardown(() => clearTimeout(timer));
  const seen: WatchEvent<number>[] = [];
  let gotFirst: () => void = () => undefined;
  const firstSeen = new Promise<void>((r) => {
    gotFirst = r;
  });
  const watching = (async () => {
    for await (const ev of ds.watch<number>(p, first.revision, ac.signal)) {
      seen.push(ev);
      if (seen.length === 1) gotFirst();
      if (seen.length === 4) break;
    }
  })();
  await firstSeen;
  const b = await ds.create(`${p}b`, 2);
  await etcd.restart();
  // The first call after the restart may meet a dead connection: the datastore retries it.
  const c = await ds.create(`${p}c`, 3);
  const b2 = await ds.update(`${p}b`, 20, b.revision);
  await watching;
  t.same(
    seen.map((e) => `${e.type} ${e.key} ${e.type === 'put' ? e.value : ''}`),
    [`put ${p}a 1`, `put ${p}b 2`, `put ${p}c 3`, `put ${p}b 20`],
  );
  t.same(
    seen.map((e) => e.revision),
    [first.revision, b.revision, c.revision, b2.revision],
    'no event lost or repeated',
  );
  t.equal((await ds.get(`${p}b`))?.value, 20);
});

t.test('unreachable etcd gives DatastoreUnavailable within the op timeout', async (t) => {
  const port = await freePort();
  const ds = new EtcdDatastore([`http://127.0.0.1:${port}`], {}, { opTimeoutMs: 1500, callTimeoutMs: 500 });
  t.teardown(() => ds.close());
  const t0 = Date.now();
  const err = await ds.get('/x').catch((e: unknown) => e);
  t.ok(err instanceof DatastoreUnavailable, String(err));
  t.match((err as Error).message, /did not answer get within 1500 ms/);
  const took = Date.now() - t0;
  t.ok(took < 6000, `gave up in bounded time (${took} ms < 6000)`);
});

t.test('several endpoints: a dead one is skipped', { skip }, async (t) => {
  const etcd = await startEtcd(t);
  const dead = `http://127.0.0.1:${await freePort()}`;
  const ds = await openDatastore(
    datastoreConfigFromEnv({ TABBY_CONFIG: '/dev/null' }, { type: 'etcdv3', etcdEndpoints: [dead, ...etcd.endpoints] }),
  );
  t.teardown(() => ds.close());
  for (let i = 0; i < 6; i++) await ds.create(`/multi/${i}`, i);
  t.equal((await ds.list('/multi/')).items.length, 6);
});

t.test('TLS with client certificates (ETCD_CA_CERT_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE)', { skip: skip || noOpenssl }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${runTag()}tls-`));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const tls = makeTestCerts(dir)!;
  const etcd = await startEtcd(t, { tls });
  const cfg = datastoreConfigFromEnv({
    TABBY_CONFIG: '/dev/null',
    DATASTORE_TYPE: 'etcdv3',
    ETCD_ENDPOINTS: etcd.endpoints.join(','),
    ETCD_CA_CERT_FILE: tls.caFile,
    ETCD_CERT_FILE: tls.clientCertFile,
    ETCD_KEY_FILE: tls.clientKeyFile,
  });
  t.match(cfg.etcdEndpoints, [/^https:/]);
  const ds = await openDatastore(cfg);
  t.teardown(() => ds.close());
  const kv = await ds.create('/tls/k', { secure: true });
  t.same((await ds.get('/tls/k'))?.value, { secure: true });
  t.equal((await ds.update('/tls/k', { secure: 'yes' }, kv.revision)).key, '/tls/k');
  // Without a client certificate the server refuses us.
  const noCert = new EtcdDatastore(etcd.endpoints, { caFile: tls.caFile }, { opTimeoutMs: 1500, callTimeoutMs: 500 });
  t.teardown(() => noCert.close());
  t.ok((await noCert.get('/tls/k').catch((e: unknown) => e)) instanceof Error, 'no client certificate → refused');
});
