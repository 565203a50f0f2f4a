// Concurrent assignments from one block, in one process, go into one commit. Eight pods started at
// once on a node all take an address from the node's block: as separate compare-and-swaps on the block,
// one wins each round and the others re-read and retry (8 + 7 + … commits, each synced). Here requests
// for a block queue up while a commit of it is in flight; the next round takes them all (one request
// per handle), assigns in order against one read of the block, and commits the block and every
// handle together (Datastore.commit: one record, one fdatasync). Other processes' writes are still
// ordered by the block's revision: a conflicting round re-reads and retries as a whole. A request may
// bring writes of its own (`also`, e.g. the pod's WorkloadEndpoint) for the commit that completes it:
// built after its addresses are chosen, in every attempt (they re-read what they need); a request whose
// writes fail is rejected alone, one whose keys another request of the round already writes waits for
// the next round. Releases of a handle held in this block only (a pod's DEL) go into the same rounds:
// eight pods deleted at once free their addresses and drop their handles in one commit too.
import { DatastoreConflict, DatastoreExists, DatastoreNotFound, type KVPair, type TxnOp } from '../datastore/types.js';
import { blockAutoAssign, blockReleaseByHandle, cloneBlock, hostAffinity, isEmpty, type Assigned } from './block.js';
import { IpamRetriesExhausted } from './errors.js';
import type { Reservations } from './reservations.js';
import { blockDeleteOp, blockUpdateOp, handleDeleteOp, handleWriteOp, type HandleValue, type IpamStore } from './store.js';

export interface BlockAssignment {
  ip: string;
  block: string;
  sequenceNumber: number;
}

interface AssignRequest {
  kind: 'assign';
  num: number;
  handle: string;
  attrs: Record<string, string>;
  /** Only while the block is still affine to this node. */
  affineTo: string | undefined;
  reserved: Reservations;
  /** Writes for the commit that gives this request all `num` addresses (bare addresses of this block). */
  also?: (ips: string[]) => Promise<TxnOp[]>;
  resolve: (got: BlockAssignment[]) => void;
  reject: (e: unknown) => void;
}

interface ReleaseRequest {
  kind: 'release';
  handle: string;
  /** Writes for the commit that releases the handle (the addresses it frees). */
  also?: (ips: string[]) => Promise<TxnOp[]>;
  /** The addresses freed; undefined when the handle is gone or names other blocks now (start over). */
  resolve: (released: string[] | undefined) => void;
  reject: (e: unknown) => void;
}

type Request = AssignRequest | ReleaseRequest;

/** The handle's record with `n` more addresses in `cidr` (a new one when there is none). */
export function handlePlus(
  hkv: KVPair<HandleValue> | undefined,
  handle: string,
  cidr: string,
  n: number,
  attrs: Record<string, string>,
): HandleValue {
  return hkv
    ? { ...hkv.value, block: { ...hkv.value.block, [cidr]: (hkv.value.block[cidr] ?? 0) + n } }
    : { handleId: handle, block: { [cidr]: n }, ...(Object.keys(attrs).length ? { attrs } : {}) };
}

export class BlockAssigner {
  private readonly queues = new Map<string, Request[]>();

  constructor(
    private readonly store: IpamStore,
    private readonly maxRetries: number,
    private readonly backoff: (attempt: number) => Promise<void>,
  ) {}

  /** Up to `num` free addresses of block `cidr` for `handle` (possibly none: block full or gone). */
  assign(cidr: string, r: Omit<AssignRequest, 'kind' | 'resolve' | 'reject'>): Promise<BlockAssignment[]> {
    return new Promise<BlockAssignment[]>((resolve, reject) => this.enqueue(cidr, { ...r, kind: 'assign', resolve, reject }));
  }

  /** Free every address `handle` holds in block `cidr` and delete the handle, whose record names that block
   *  only; with `also`'s writes. Undefined when the handle is gone or names other blocks now (re-read it). */
  release(cidr: string, handle: string, also?: (ips: string[]) => Promise<TxnOp[]>): Promise<string[] | undefined> {
    return new Promise<string[] | undefined>((resolve, reject) =>
      this.enqueue(cidr, { kind: 'release', handle, ...(also ? { also } : {}), resolve, reject }),
    );
  }

  private enqueue(cidr: string, r: Request): void {
    const q = this.queues.get(cidr);
    if (q) {
      q.push(r);
      return;
    }
    this.queues.set(cidr, [r]);
    void this.run(cidr);
  }

  /** Rounds until the block's queue is empty; one round in flight per block. */
  private async run(cidr: string): Promise<void> {
    for (;;) {
      const q = this.queues.get(cidr)!;
      if (q.length === 0) {
        this.queues.delete(cidr);
        return;
      }
      // One request per handle in a round (a handle's record is written once per commit).
      const round: Request[] = [];
      const rest: Request[] = [];
      const handles = new Set<string>();
      for (const r of q) {
        if (handles.has(r.handle)) rest.push(r);
        else {
          handles.add(r.handle);
          round.push(r);
        }
      }
      this.queues.set(cidr, rest);
      await this.round(cidr, round).catch((e: unknown) => {
        for (const r of round) r.reject(e);
      });
    }
  }

  private async round(cidr: string, reqs: Request[]): Promise<void> {
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      if (reqs.length === 0) return;
      const [kv, ...hkvs] = await Promise.all([this.store.readBlock(cidr), ...reqs.map((r) => this.store.getHandle(r.handle))]);
      const b = kv ? cloneBlock(kv.value) : undefined; // gone: nothing to assign; releases drop their handles
      const got: (Assigned[] | string[] | undefined)[] = [];
      const ops: TxnOp[] = [];
      let changed = false;
      for (const [i, r] of reqs.entries()) {
        const hkv = hkvs[i];
        if (r.kind === 'assign') {
          const mine =
            !b || (r.affineTo !== undefined && b.affinity !== hostAffinity(r.affineTo))
              ? []
              : blockAutoAssign(b, r.num, r.handle, r.attrs, r.reserved);
          got.push(mine);
          if (mine.length) ops.push(handleWriteOp(handlePlus(hkv, r.handle, cidr, mine.length, r.attrs), hkv?.revision));
          changed ||= mine.length > 0;
        } else if (!hkv || Object.keys(hkv.value.block).join() !== cidr) {
          got.push(undefined); // changed since the caller read it
        } else {
          const ips = b ? blockReleaseByHandle(b, r.handle) : [];
          got.push(ips);
          ops.push(handleDeleteOp(r.handle, hkv.revision));
          changed ||= ips.length > 0;
        }
      }
      const out = await this.alsoOps(cidr, reqs, got, ops);
      if (out.length) {
        reqs = reqs.filter((r) => !out.includes(r));
        attempt--; // not a conflict: assign again without them
        continue;
      }
      if (ops.length > 0) {
        if (kv && b && changed)
          ops.push(isEmpty(b) && b.affinity === null ? blockDeleteOp(cidr, kv.revision) : blockUpdateOp(b, kv.revision));
        try {
          await this.store.commit(ops);
        } catch (e) {
          if (e instanceof DatastoreConflict || e instanceof DatastoreNotFound || e instanceof DatastoreExists) {
            await this.backoff(attempt);
            continue;
          }
          throw e;
        }
      }
      for (const [i, r] of reqs.entries()) {
        if (r.kind === 'release') r.resolve(got[i] as string[] | undefined);
        else r.resolve((got[i] as Assigned[]).map((a) => ({ ip: a.ip, block: cidr, sequenceNumber: a.sequenceNumber })));
      }
      return;
    }
    throw new IpamRetriesExhausted(`assign from / release in block ${cidr}`, this.maxRetries);
  }

  /** Adds to `ops` the writes of each request this round completes. Returns the requests taken out of the
   *  round: rejected (their writes could not be built) or put back first in the queue (a key already written
   *  in this round, e.g. two sandboxes of one pod: a commit names a key once). */
  private async alsoOps(cidr: string, reqs: Request[], got: (Assigned[] | string[] | undefined)[], ops: TxnOp[]): Promise<Request[]> {
    const ipsOf = (i: number): string[] | undefined => {
      const r = reqs[i]!;
      const g = got[i];
      if (r.kind === 'release') return g as string[] | undefined;
      return g!.length === r.num ? (g as Assigned[]).map((a) => a.ip) : undefined;
    };
    const built = await Promise.all(
      reqs.map((r, i) =>
        r.also && ipsOf(i)
          ? r.also(ipsOf(i)!).then(
              (v) => ({ ops: v }),
              (e: unknown) => ({ err: e }),
            )
          : { ops: [] },
      ),
    );
    const keys = new Set(ops.map((o) => o.key));
    const out: Request[] = [];
    const later: Request[] = [];
    for (const [i, r] of reqs.entries()) {
      const x = built[i]!;
      if ('err' in x) {
        r.reject(x.err);
        out.push(r);
      } else if (x.ops.some((o) => keys.has(o.key))) {
        later.push(r);
        out.push(r);
      } else for (const o of x.ops) keys.add(o.key);
    }
    if (later.length) this.queues.set(cidr, [...later, ...(this.queues.get(cidr) ?? [])]);
    if (out.length) return out;
    for (const x of built) if ('ops' in x) ops.push(...x.ops);
    return out;
  }
}
