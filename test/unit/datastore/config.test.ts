import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { datastoreConfigFromEnv, datastoreConfigFromNetconf, DatastoreConfigError } from '../../../src/datastore/config.js';
import { runTag } from '../../helpers/run-tag.js';

const noFile = { TABBY_CONFIG: undefined } as NodeJS.ProcessEnv;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${runTag()}dscfg-`));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

t.test('defaults and env', async (t) => {
  const missing = path.join(tmp, 'none.cfg');
  const cfgPath = path.join(tmp, 'empty.cfg');
  fs.writeFileSync(cfgPath, '');
  t.same(datastoreConfigFromEnv({ ...noFile, TABBY_CONFIG: cfgPath }), { type: 'file', dir: '/var/lib/tabby/datastore' });
  t.same(
    datastoreConfigFromEnv({
      TABBY_CONFIG: cfgPath,
      DATASTORE_TYPE: 'etcdv3',
      ETCD_ENDPOINTS: 'http://10.0.0.1:2379, 10.0.0.2:2379',
      ETCD_CA_CERT_FILE: '/ca',
    }),
    { type: 'etcdv3', etcdEndpoints: ['http://10.0.0.1:2379', 'http://10.0.0.2:2379'], etcdCaCertFile: '/ca' },
  );
  t.throws(() => datastoreConfigFromEnv({ TABBY_CONFIG: missing }), DatastoreConfigError, 'an explicit TABBY_CONFIG must exist');
  t.throws(
    () => datastoreConfigFromEnv({ TABBY_CONFIG: cfgPath, DATASTORE_TYPE: 'kubernetes' }),
    /DATASTORE_TYPE: datastore type "kubernetes" is not one of file, etcdv3, memory/,
  );
  t.throws(
    () => datastoreConfigFromEnv({ TABBY_CONFIG: cfgPath, DATASTORE_TYPE: 'etcdv3', ETCD_CERT_FILE: '/c' }),
    /must be given together/,
  );
  t.throws(() => datastoreConfigFromEnv({ TABBY_CONFIG: cfgPath, DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: 'ftp://x' }), /must be http/);
});

t.test('config file (calicoctl shape) < env < flags', async (t) => {
  const f = path.join(tmp, 'tabbyctl.cfg');
  fs.writeFileSync(
    f,
    'apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {}\nspec:\n  datastoreType: etcdv3\n  etcdEndpoints: "http://1.1.1.1:2379"\n  etcdCACertFile: /f/ca\n',
  );
  t.same(datastoreConfigFromEnv({ TABBY_CONFIG: f }), { type: 'etcdv3', etcdEndpoints: ['http://1.1.1.1:2379'], etcdCaCertFile: '/f/ca' });
  t.same(datastoreConfigFromEnv({ TABBY_CONFIG: f, ETCD_ENDPOINTS: 'http://2.2.2.2:2379' }).etcdEndpoints, ['http://2.2.2.2:2379']);
  t.same(datastoreConfigFromEnv({ TABBY_CONFIG: f, DATASTORE_TYPE: 'etcdv3' }, { type: 'file', dir: '/d' }), { type: 'file', dir: '/d' });
  t.same(datastoreConfigFromNetconf({ datastore_type: 'file', datastore_dir: '/x' }, { TABBY_CONFIG: f }), { type: 'file', dir: '/x' });
});
