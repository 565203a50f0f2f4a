// The datastore module's public surface: one KV interface (types.ts), three backends and the
// configuration that picks one (config.ts), plus the typed Calico resources on top (resources.ts).
import type { Datastore } from './types.js';
import type { DatastoreConfig } from './config.js';
import { FileDatastore } from './file.js';
import { MemoryDatastore } from './memory.js';

export * from './types.js';
export * from './config.js';
export { FileDatastore, type FileDatastoreOptions } from './file.js';
export { MemoryDatastore } from './memory.js';
// The class lives in ./etcd.js (import it from there): loading etcd3/gRPC costs ~200 ms, so the
// index only loads it when openDatastore() is asked for etcdv3.
export type { EtcdDatastore, EtcdDatastoreOptions } from './etcd.js';

/** Open the backend the configuration names (etcd is loaded lazily: the CNI plugin stays light). */
export async function openDatastore(cfg: DatastoreConfig): Promise<Datastore> {
  switch (cfg.type) {
    case 'file':
      return new FileDatastore(cfg.dir ?? '/var/lib/tabby/datastore');
    case 'memory':
      return new MemoryDatastore();
    case 'etcdv3': {
      const { EtcdDatastore } = await import('./etcd.js');
      return EtcdDatastore.connect(cfg);
    }
  }
}
export * from './resources.js';
