// etcd v3 backend (in progress).
import type { Datastore } from './types.js';
import { DatastoreUnavailable } from './types.js';
import type { DatastoreConfig } from './config.js';

export class EtcdDatastore {
  static async connect(cfg: DatastoreConfig): Promise<Datastore> {
    throw new DatastoreUnavailable('', `etcdv3 backend not available yet (${(cfg.etcdEndpoints ?? []).join(',')})`);
  }
}
