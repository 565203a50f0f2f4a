// IPAM layer 2 of 3: reading and writing IPAM objects in the datastore. Every write is either a
// create-if-absent or a compare-and-swap on the revision read; this layer never retries — the
// orchestration layer (ipam.ts) re-reads and retries on DatastoreConflict/DatastoreExists.
//   /tabby/ipam/v2/blocks/<cidr, '/'→'-'>           BlockValue (block.ts)
//   /tabby/ipam/v2/affinities/<node>/<cidr, '/'→'-'> AffinityValue (pending → confirmed)
//   /tabby/ipam/v2/handles/<handleId>                HandleValue (block cidr → count)
//   /tabby/ipam/v2/config                            IpamConfig
import { AFFINITIES_PREFIX, BLOCKS_PREFIX, HANDLES_PREFIX, IPAM_CONFIG_KEY } from '../datastore/keys.js';
import type { Datastore, KVPair, TxnOp } from '../datastore/types.js';
import { DatastoreNotFound } from '../datastore/types.js';
import type { BlockValue } from './block.js';

export type AffinityState = 'pending' | 'confirmed' | 'pendingDeletion';

export interface AffinityValue {
  node: string;
  cidr: string;
  state: AffinityState;
}

export interface HandleValue {
  handleId: string;
  /** block cidr → number of addresses this handle holds there. */
  block: Record<string, number>;
  /** Owner attributes as given at assignment (namespace, pod, node, containerID…). */
  attrs?: Record<string, string>;
}

export interface IpamConfig {
  /** Never borrow an address from another node's block. */
  strictAffinity: boolean;
  /** Most blocks one node may hold (Calico's default 20). */
  maxBlocksPerHost: number;
}

export const DEFAULT_IPAM_CONFIG: IpamConfig = { strictAffinity: false, maxBlocksPerHost: 20 };

const cidrKey = (cidr: string) => cidr.replace('/', '-');
const keyCidr = (k: string) => {
  const i = k.lastIndexOf('-');
  return `${k.slice(0, i)}/${k.slice(i + 1)}`;
};

export const blockKey = (cidr: string): string => BLOCKS_PREFIX + cidrKey(cidr);
export const affinityKey = (node: string, cidr: string): string => `${AFFINITIES_PREFIX}${node}/${cidrKey(cidr)}`;
/** Handle ids are used as one key segment: '/' is not allowed in them. */
export const handleKey = (handle: string): string => HANDLES_PREFIX + handle.replace(/\//g, '_');
export const cidrOfBlockKey = (key: string): string => keyCidr(key.slice(BLOCKS_PREFIX.length));

// Operations for one multi-key commit (Datastore.commit): a block and its handle change together.
export const handleWriteOp = (h: HandleValue, revision: number | undefined): TxnOp =>
  revision === undefined
    ? { op: 'create', key: handleKey(h.handleId), value: h }
    : { op: 'update', key: handleKey(h.handleId), value: h, expectedRevision: revision };
export const handleDeleteOp = (handle: string, revision: number): TxnOp => ({
  op: 'delete',
  key: handleKey(handle),
  expectedRevision: revision,
});
export const blockUpdateOp = (b: BlockValue, revision: number): TxnOp => ({
  op: 'update',
  key: blockKey(b.cidr),
  value: b,
  expectedRevision: revision,
});
export const blockDeleteOp = (cidr: string, revision: number): TxnOp => ({ op: 'delete', key: blockKey(cidr), expectedRevision: revision });

export class IpamStore {
  constructor(readonly ds: Datastore) {}

  /** Several IPAM writes as one durable commit (all or none). */
  commit(ops: TxnOp[]): Promise<number[]> {
    return this.ds.commit(ops);
  }

  // ---- blocks
  getBlock(cidr: string): Promise<KVPair<BlockValue> | undefined> {
    return this.ds.get<BlockValue>(blockKey(cidr));
  }
  /** The block as the datastore holds it, maybe not a copy: never to be changed (cloneBlock it first).
   *  The block rounds read it on every ADD and DEL; the file store's copy of a block was ~6 % of
   *  tabby-node's event loop at 8 ADDs at once. */
  readBlock(cidr: string): Promise<KVPair<Readonly<BlockValue>> | undefined> {
    return this.ds.getShared ? this.ds.getShared<BlockValue>(blockKey(cidr)) : this.ds.get<BlockValue>(blockKey(cidr));
  }
  async listBlocks(): Promise<KVPair<BlockValue>[]> {
    return (await this.ds.list<BlockValue>(BLOCKS_PREFIX)).items;
  }
  createBlock(b: BlockValue): Promise<KVPair<BlockValue>> {
    return this.ds.create(blockKey(b.cidr), b);
  }
  updateBlock(b: BlockValue, revision: number): Promise<KVPair<BlockValue>> {
    return this.ds.update(blockKey(b.cidr), b, revision);
  }
  deleteBlock(cidr: string, revision: number): Promise<void> {
    return this.ds.delete(blockKey(cidr), revision);
  }

  // ---- affinities
  getAffinity(node: string, cidr: string): Promise<KVPair<AffinityValue> | undefined> {
    return this.ds.get<AffinityValue>(affinityKey(node, cidr));
  }
  /** Affinities of one node (or of every node). Node names cannot contain '/'. */
  async listAffinities(node?: string): Promise<KVPair<AffinityValue>[]> {
    return (await this.ds.list<AffinityValue>(node === undefined ? AFFINITIES_PREFIX : `${AFFINITIES_PREFIX}${node}/`)).items;
  }
  createAffinity(a: AffinityValue): Promise<KVPair<AffinityValue>> {
    return this.ds.create(affinityKey(a.node, a.cidr), a);
  }
  updateAffinity(a: AffinityValue, revision: number): Promise<KVPair<AffinityValue>> {
    return this.ds.update(affinityKey(a.node, a.cidr), a, revision);
  }
  deleteAffinity(node: string, cidr: string, revision?: number): Promise<void> {
    return this.ds.delete(affinityKey(node, cidr), revision);
  }

  // ---- handles
  getHandle(handle: string): Promise<KVPair<HandleValue> | undefined> {
    return this.ds.get<HandleValue>(handleKey(handle));
  }
  async listHandles(): Promise<KVPair<HandleValue>[]> {
    return (await this.ds.list<HandleValue>(HANDLES_PREFIX)).items;
  }
  createHandle(h: HandleValue): Promise<KVPair<HandleValue>> {
    return this.ds.create(handleKey(h.handleId), h);
  }
  updateHandle(h: HandleValue, revision: number): Promise<KVPair<HandleValue>> {
    return this.ds.update(handleKey(h.handleId), h, revision);
  }
  deleteHandle(handle: string, revision?: number): Promise<void> {
    return this.ds.delete(handleKey(handle), revision);
  }

  // ---- config
  async getConfig(): Promise<{ config: IpamConfig; revision: number | undefined }> {
    const kv = await this.ds.get<Partial<IpamConfig>>(IPAM_CONFIG_KEY);
    return { config: { ...DEFAULT_IPAM_CONFIG, ...(kv?.value ?? {}) }, revision: kv?.revision };
  }
  async setConfig(c: IpamConfig, revision: number | undefined): Promise<void> {
    if (revision === undefined) await this.ds.create(IPAM_CONFIG_KEY, c);
    else await this.ds.update(IPAM_CONFIG_KEY, c, revision);
  }
}

/** Delete that treats "already gone" as done. */
export async function deleteIfPresent(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof DatastoreNotFound)) throw e;
  }
}
