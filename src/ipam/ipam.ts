// IPAM layer 3 of 3: orchestration. Nodes claim affine blocks from IP pools and hand out addresses from
// them; every change is one compare-and-swap on one datastore value (a block, an affinity, a handle),
// retried a bounded number of times on conflict, so processes on any number of nodes never hand out
// one address twice and never lose an update.
//
// Write ordering (crash safety): an allocation and its handle's count are one commit (Datastore.commit:
// one log record / one etcd Txn), so releaseByHandle always finds every block an owner holds an address
// in and a crash leaves both or neither. releaseIPs (GC, undo) frees in the block first and then counts
// the handle down (a crash leaves at worst an over-counted handle, which release cleans up). A block is claimed in two phases:
// affinity `pending` → block created (create-if-absent) → affinity `confirmed`. Pending affinities are
// never routed (the agent exports confirmed ones only).
import { cidrContains, cidrContainsCidr, cidrOf, cidrSize, formatCidr, parseCidr, parseIp, type Family } from '../common/ip.js';
import {
  DatastoreConflict,
  DatastoreError,
  DatastoreExists,
  DatastoreNotFound,
  type Datastore,
  type KVPair,
  type TxnOp,
} from '../datastore/types.js';
import {
  affinityNode,
  blockAllocations,
  blockAssign,
  blockNumFree,
  blockRelease,
  blockReleaseByHandle,
  candidateBlocks,
  cloneBlock,
  hostAffinity,
  hostCidr,
  ipToOrdinal,
  isEmpty,
  newBlock,
  numFree,
  numInUse,
  type BlockValue,
  type ReleaseRequest,
} from './block.js';
import { AddressNotInPool, IpamRetriesExhausted, PoolExhausted, PoolUseNotAllowed, StrictAffinityViolation } from './errors.js';
import {
  DatastorePoolSource,
  poolAllows,
  poolOfBlock,
  poolOfIp,
  poolsForNode,
  resolveRequestedPools,
  type PoolInfo,
  type PoolSource,
  type PoolUse,
} from './pools.js';
import { Reservations } from './reservations.js';
import { checkReport, type IpamCheckReport, type IsLive } from './check.js';
import { BlockAssigner, handlePlus } from './block-assigner.js';
import {
  IpamStore,
  blockDeleteOp,
  blockUpdateOp,
  deleteIfPresent,
  handleDeleteOp,
  handleKey,
  handleWriteOp,
  type AffinityState,
  type HandleValue,
  type IpamConfig,
} from './store.js';

/** The few logger methods IPAM uses (a pino logger fits). */
export interface IpamLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Default logger: tabby's pino logger, loaded on first use (the CNI plugin passes its own, light one,
 *  so a pod ADD never pays for loading pino). */
function lazyLogger(component: string): IpamLogger {
  let chain: Promise<unknown> = Promise.resolve();
  const emit = (level: 'info' | 'warn' | 'error') => (obj: object, msg?: string) => {
    chain = chain
      .then(() => import('../common/log.js'))
      .then((m) => m.log(component)[level](obj, msg))
      .catch(() => undefined);
  };
  return { info: emit('info'), warn: emit('warn'), error: emit('error') };
}

export interface IpamOptions {
  /** Where pools and node labels come from (default: the IPPool/Node resources in the same datastore). */
  pools?: PoolSource;
  /** Compare-and-swap attempts per object before giving up (default 100). */
  maxRetries?: number;
  logger?: IpamLogger;
  clock?: () => Date;
  random?: () => number;
}

export interface AutoAssignArgs {
  /** The allocation owner, e.g. `k8s-pod-network.<containerID>`. */
  handle: string;
  node: string;
  num4?: number;
  num6?: number;
  /** Restrict to these pools (IPPool names or CIDRs, tried in order). A family none of them belongs to
   *  is not restricted by this list. */
  pools?: string[];
  /** Restrict IPv4 / IPv6 assignment to these pools (Calico's ipv4_pools / ipv6_pools). */
  pools4?: string[];
  pools6?: string[];
  attrs?: Record<string, string>;
  /** What the addresses are for (Calico's IntendedUse): only pools whose allowedUses include it are
   *  used. Default Workload (pods); the agent asks for Tunnel. */
  use?: PoolUse;
  /** Writes that go into the commit completing the assignment, given every address assigned (host-prefix
   *  form, IPv4 first) — e.g. the pod's WorkloadEndpoint, so address, handle and endpoint are one synced
   *  write. Called again on each attempt (it re-reads what it needs). Committed whenever the result holds an
   *  address; an error from it fails the assignment and nothing of it is written. */
  also?: (addrs: string[]) => Promise<TxnOp[]>;
}

export interface AssignedAddress {
  /** Bare address. */
  ip: string;
  block: string;
  sequenceNumber: number;
}

export interface AutoAssignResult {
  /** Host-prefix form: "10.0.0.5/32". */
  ipv4: string[];
  /** Host-prefix form: "fd00::5/128". */
  ipv6: string[];
  allocations: AssignedAddress[];
}

export interface AffineBlock {
  cidr: string;
  state: AffinityState;
}

export interface BlockInfo {
  cidr: string;
  family: Family;
  /** Node the block is affine to, or null. */
  node: string | null;
  affinityState: AffinityState | null;
  pool: string | null;
  size: number;
  inUse: number;
  free: number;
}

export interface PoolUsage {
  name: string;
  cidr: string;
  disabled: boolean;
  total: bigint;
  inUse: number;
  free: bigint;
  blocks: number;
}

export interface IpInfo {
  ip: string;
  pool: string | null;
  block: string | null;
  blockNode: string | null;
  allocated: boolean;
  handle: string | null;
  attrs: Record<string, string>;
  sequenceNumber: number | undefined;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Ipam {
  readonly store: IpamStore;
  private readonly pools: PoolSource;
  private readonly maxRetries: number;
  private readonly logger: IpamLogger;
  private readonly clock: () => Date;
  private readonly random: () => number;
  private readonly assigner: BlockAssigner;

  constructor(
    readonly ds: Datastore,
    opts: IpamOptions = {},
  ) {
    this.store = new IpamStore(ds);
    this.pools = opts.pools ?? new DatastorePoolSource(ds);
    this.maxRetries = opts.maxRetries ?? 100;
    this.logger = opts.logger ?? lazyLogger('ipam');
    this.clock = opts.clock ?? (() => new Date());
    this.random = opts.random ?? Math.random;
    this.assigner = new BlockAssigner(this.store, this.maxRetries, (attempt) => this.backoff(attempt));
  }

  getConfig(): Promise<IpamConfig> {
    return this.store.getConfig().then((c) => c.config);
  }

  /** Change strictAffinity / maxBlocksPerHost (CAS). */
  async setConfig(change: Partial<IpamConfig>): Promise<IpamConfig> {
    return this.retry('update IPAM config', async () => {
      const { config, revision } = await this.store.getConfig();
      const next = { ...config, ...change };
      await this.store.setConfig(next, revision);
      return next;
    });
  }

  listPools(): Promise<PoolInfo[]> {
    return this.pools.listPools();
  }

  // ---------------------------------------------------------------- assignment

  /** Assign num4 IPv4 and num6 IPv6 addresses to `handle` on `node`. All or nothing: when one family
   *  cannot be satisfied, what was taken is released and PoolExhausted is thrown. */
  async autoAssign(args: AutoAssignArgs): Promise<AutoAssignResult> {
    const res: AutoAssignResult = { ipv4: [], ipv6: [], allocations: [] };
    const [{ config }, allPools, nodeAffs, reserved] = await Promise.all([
      this.store.getConfig(),
      this.pools.listPools(),
      this.store.listAffinities(args.node),
      this.reservations(),
    ]);
    const use = args.use ?? 'Workload';
    const lastFamily = (args.num6 ?? 0) > 0 ? 6 : 4;
    const { also } = args;
    try {
      for (const [family, num] of [
        [4, args.num4 ?? 0],
        [6, args.num6 ?? 0],
      ] as [Family, number][]) {
        if (num <= 0) continue;
        const requested = requestedPools(allPools, args, family);
        const pools = await this.eligiblePools(allPools, family, args.node, requested, use);
        // `also` goes with the commit that completes the last family (the other's addresses are known by then).
        const complete =
          also && family === lastFamily ? (ips: string[]) => also([...res.ipv4, ...ips.map((ip) => hostCidr(ip))]) : undefined;
        const got = await this.autoAssignFamily(
          { ...args, pools: requested, use },
          family,
          num,
          pools,
          config,
          nodeAffs,
          reserved,
          complete,
        );
        for (const a of got) {
          res.allocations.push(a);
          (family === 4 ? res.ipv4 : res.ipv6).push(hostCidr(a.ip));
        }
      }
    } catch (e) {
      if (res.allocations.length) {
        await this.releaseIPs(res.allocations.map((a) => ({ ip: a.ip, handle: args.handle, sequenceNumber: a.sequenceNumber }))).catch(
          (err: unknown) => this.logger.error({ err, handle: args.handle }, 'could not undo a partial assignment'),
        );
      }
      throw e;
    }
    return res;
  }

  private async eligiblePools(
    all: PoolInfo[],
    family: Family,
    node: string,
    requested: string[] | undefined,
    use: PoolUse,
  ): Promise<PoolInfo[]> {
    const candidates = (requested?.length ? resolveRequestedPools(all, requested, family) : all.filter((p) => p.family === family)).filter(
      (p) => poolAllows(p, use),
    );
    if (requested?.length && candidates.length === 0) return [];
    const needsLabels = candidates.some((p) => !['', 'all()'].includes(p.nodeSelector.trim()));
    const labels = needsLabels ? ((await this.pools.nodeLabels(node)) ?? {}) : {};
    return poolsForNode(candidates, family, labels);
  }

  private async autoAssignFamily(
    args: AutoAssignArgs,
    family: Family,
    num: number,
    pools: PoolInfo[],
    config: IpamConfig,
    nodeAffs: KVPair<{ node: string; cidr: string; state: AffinityState }>[],
    reserved: Reservations,
    complete?: (ips: string[]) => Promise<TxnOp[]>,
  ): Promise<AssignedAddress[]> {
    const { node, handle } = args;
    const attrs = args.attrs ?? {};
    const use = args.use ?? 'Workload';
    if (pools.length === 0) {
      throw new PoolExhausted(
        '',
        family,
        node,
        args.pools?.length
          ? `none of the requested pools (${args.pools.join(', ')}) is an enabled IPv${family} pool whose nodeSelector matches the node and whose allowedUses include ${use}`
          : `no enabled IPv${family} pool whose nodeSelector matches the node and whose allowedUses include ${use}`,
      );
    }
    const out: AssignedAddress[] = [];
    const inPools = (cidr: string) => poolOfBlock(pools, cidr) !== undefined;
    // For the block assignment that completes this family: every address of it (the earlier blocks' too).
    const also = complete && ((ips: string[]) => complete([...out.map((a) => a.ip), ...ips]));

    // 1. The node's own blocks, confirmed first; a pending one is a claim to finish.
    const affs = nodeAffs.filter(
      (a) => inPools(a.value.cidr) && a.value.state !== 'pendingDeletion' && !reserved.matchesWhole(parseCidr(a.value.cidr)),
    );
    affs.sort((a, b) => Number(a.value.state !== 'confirmed') - Number(b.value.state !== 'confirmed'));
    for (const aff of affs) {
      if (out.length >= num) break;
      if (aff.value.state === 'pending' && !(await this.claimBlock(node, aff.value.cidr))) continue;
      out.push(...(await this.assignFromBlock(aff.value.cidr, num - out.length, handle, attrs, node, reserved, also)));
    }

    // 2. Claim new blocks while below maxBlocksPerHost.
    let reason = '';
    while (out.length < num) {
      const held = (await this.store.listAffinities(node)).filter((a) => parseCidr(a.value.cidr).family === family).length;
      if (held >= config.maxBlocksPerHost) {
        reason = `node holds ${held} IPv${family} blocks, the maxBlocksPerHost limit`;
        break;
      }
      const cidr = await this.findUnclaimedBlock(node, pools, reserved);
      if (!cidr) {
        reason = reserved.empty ? 'every block of the pool is claimed' : 'every block of the pool is claimed or wholly reserved';
        break;
      }
      if (!(await this.claimBlock(node, cidr))) continue; // another node won it: search again
      out.push(...(await this.assignFromBlock(cidr, num - out.length, handle, attrs, node, reserved, also)));
    }

    // 3. Borrow from other nodes' blocks (Calico's default), unless strictAffinity.
    if (out.length < num && config.strictAffinity) reason += "; strictAffinity forbids borrowing from other nodes' blocks";
    if (out.length < num && !config.strictAffinity) {
      const blocks = (await this.store.listBlocks()).filter((b) => inPools(b.value.cidr) && blockNumFree(b.value, reserved) > 0);
      shuffle(blocks, this.random);
      for (const b of blocks) {
        if (out.length >= num) break;
        out.push(...(await this.assignFromBlock(b.value.cidr, num - out.length, handle, attrs, undefined, reserved, also)));
      }
      if (out.length < num) reason += '; no free address left in any block to borrow';
    }

    if (out.length < num) {
      if (out.length) await this.releaseIPs(out.map((a) => ({ ip: a.ip, handle, sequenceNumber: a.sequenceNumber })));
      throw new PoolExhausted(pools.map((p) => `${p.name} (${p.cidr})`).join(', '), family, node, reason.replace(/^; /, ''));
    }
    return out;
  }

  /** Take up to `num` free addresses from one block for `handle`. With `affineTo`, only while the block is
   *  still affine to that node. Returns what it got (possibly nothing: block full or gone). The block and
   *  the handle's count are written in one commit, shared with this process's concurrent assignments
   *  from the same block (block-assigner.ts). */
  private assignFromBlock(
    cidr: string,
    num: number,
    handle: string,
    attrs: Record<string, string>,
    affineTo: string | undefined,
    reserved: Reservations,
    also?: (ips: string[]) => Promise<TxnOp[]>,
  ): Promise<AssignedAddress[]> {
    return this.assigner.assign(cidr, { num, handle, attrs, affineTo, reserved, ...(also ? { also } : {}) });
  }

  /** One commit: the block with the new allocations (CAS on its revision) and the handle counting them
   *  (created, or CAS). False when either changed since it was read (re-read and retry). */
  private async commitAssignment(
    b: BlockValue,
    blockRevision: number,
    hkv: KVPair<HandleValue> | undefined,
    handle: string,
    n: number,
    attrs: Record<string, string>,
  ): Promise<boolean> {
    const h = handlePlus(hkv, handle, b.cidr, n, attrs);
    try {
      await this.store.commit([handleWriteOp(h, hkv?.revision), blockUpdateOp(b, blockRevision)]);
      return true;
    } catch (e) {
      if (e instanceof DatastoreConflict || e instanceof DatastoreNotFound || e instanceof DatastoreExists) return false;
      throw e;
    }
  }

  /** Add `delta` (may be negative) to handle's count for `cidr`; deletes the handle when it reaches zero. */
  private async adjustHandle(handle: string, cidr: string, delta: number, attrs?: Record<string, string>): Promise<void> {
    if (delta === 0) return;
    if (delta > 0) {
      // The common case is a new owner: try the create first (one round trip instead of two).
      try {
        await this.store.createHandle({
          handleId: handle,
          block: { [cidr]: delta },
          ...(attrs && Object.keys(attrs).length ? { attrs } : {}),
        });
        return;
      } catch (e) {
        if (!(e instanceof DatastoreExists || e instanceof DatastoreConflict)) throw e;
      }
    }
    await this.retry(`update handle ${handle}`, async () => {
      const kv = await this.store.getHandle(handle);
      if (!kv) {
        if (delta < 0) return;
        const h: HandleValue = { handleId: handle, block: { [cidr]: delta }, ...(attrs && Object.keys(attrs).length ? { attrs } : {}) };
        await this.store.createHandle(h);
        return;
      }
      const h: HandleValue = { ...kv.value, block: { ...kv.value.block } };
      const n = (h.block[cidr] ?? 0) + delta;
      if (n > 0) h.block[cidr] = n;
      else delete h.block[cidr];
      if (Object.keys(h.block).length === 0) await this.store.deleteHandle(handle, kv.revision);
      else await this.store.updateHandle(h, kv.revision);
    });
  }

  /** Assign one specific address (a pod's requested IP, an agent's tunnel address) to `handle`.
   *  When its block does not exist yet and `node` is given, the node claims that block. Idempotent for the
   *  same handle. Throws AddressInUse, AddressNotInPool, StrictAffinityViolation. */
  async assignIP(args: {
    ip: string;
    handle: string;
    node?: string;
    attrs?: Record<string, string>;
    use?: PoolUse;
  }): Promise<AssignedAddress> {
    const ip = parseIp(args.ip);
    const pools = await this.pools.listPools();
    const pool = poolOfIp(pools, args.ip);
    if (!pool) throw new AddressNotInPool(args.ip);
    if (!poolAllows(pool, args.use ?? 'Workload')) throw new PoolUseNotAllowed(args.ip, pool.name, args.use ?? 'Workload');
    const cidr = formatCidr(cidrOf(ip, pool.blockSize));
    const { config } = await this.store.getConfig();
    const attrs = args.attrs ?? {};
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      const [kv, hkv] = await Promise.all([this.store.getBlock(cidr), this.store.getHandle(args.handle)]);
      if (!kv) {
        if (args.node !== undefined) await this.claimBlock(args.node, cidr);
        else await this.store.createBlock(newBlock(parseCidr(cidr), null, this.clock())).catch(ignoreExists);
        continue;
      }
      const owner = affinityNode(kv.value.affinity);
      if (config.strictAffinity && (args.node === undefined || owner !== args.node)) {
        throw new StrictAffinityViolation(args.ip, cidr, owner, args.node ?? '(none)');
      }
      const existing = blockAllocations(kv.value).find((a) => a.ordinal === ipToOrdinal(kv.value, args.ip));
      if (existing && existing.handle === args.handle) {
        return { ip: existing.ip, block: cidr, sequenceNumber: existing.sequenceNumber ?? 0 };
      }
      const b = cloneBlock(kv.value);
      const a = blockAssign(b, args.ip, args.handle, attrs); // throws AddressInUse
      if (!(await this.commitAssignment(b, kv.revision, hkv, args.handle, 1, attrs))) {
        await this.backoff(attempt);
        continue;
      }
      return { ip: a.ip, block: cidr, sequenceNumber: a.sequenceNumber };
    }
    throw new IpamRetriesExhausted(`assign ${args.ip}`, this.maxRetries);
  }

  // ---------------------------------------------------------------- blocks and affinities

  /** Make sure `node` holds at least one confirmed affine block of `family` (the agent calls this at
   *  start, before any pod, so it has a block to route and a tunnel address). Returns its CIDR. */
  async ensureBlock(node: string, family: Family, use: PoolUse = 'Workload'): Promise<string> {
    const [{ config }, all, reserved] = await Promise.all([this.store.getConfig(), this.pools.listPools(), this.reservations()]);
    const pools = await this.eligiblePools(all, family, node, undefined, use);
    if (pools.length === 0)
      throw new PoolExhausted(
        '',
        family,
        node,
        `no enabled IPv${family} pool whose nodeSelector matches the node and whose allowedUses include ${use}`,
      );
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      const affs = (await this.store.listAffinities(node)).filter((a) => poolOfBlock(pools, a.value.cidr));
      const confirmed = affs.find((a) => a.value.state === 'confirmed');
      if (confirmed) return confirmed.value.cidr;
      const pending = affs.find((a) => a.value.state === 'pending');
      if (pending && (await this.claimBlock(node, pending.value.cidr))) return pending.value.cidr;
      const held = (await this.store.listAffinities(node)).filter((a) => parseCidr(a.value.cidr).family === family).length;
      if (held >= config.maxBlocksPerHost) break;
      const cidr = await this.findUnclaimedBlock(node, pools, reserved);
      if (!cidr) break;
      if (await this.claimBlock(node, cidr)) return cidr;
    }
    throw new PoolExhausted(pools.map((p) => `${p.name} (${p.cidr})`).join(', '), family, node, 'no block left to claim');
  }

  /** The node's blocks: confirmed ones are routed/advertised, pending ones never. */
  async blocksAffineTo(node: string): Promise<AffineBlock[]> {
    return (await this.store.listAffinities(node)).map((a) => ({ cidr: a.value.cidr, state: a.value.state }));
  }

  /** First block of the pools (in the node's hash-seeded order) that does not exist yet and is not
   *  wholly reserved. */
  private async findUnclaimedBlock(node: string, pools: PoolInfo[], reserved: Reservations): Promise<string | undefined> {
    const existing = (await this.store.listBlocks()).map((b) => parseCidr(b.value.cidr));
    const exact = new Set(existing.map(formatCidr));
    for (const pool of pools) {
      const pc = parseCidr(pool.cidr);
      const odd = existing.filter((e) => e.prefixLen !== pool.blockSize && (cidrContainsCidr(pc, e) || cidrContainsCidr(e, pc)));
      let tried = 0;
      for (const c of candidateBlocks(pc, pool.blockSize, node)) {
        if (++tried > 1 << 20) break;
        const text = formatCidr(c);
        if (exact.has(text)) continue;
        if (odd.some((e) => cidrContainsCidr(e, c) || cidrContainsCidr(c, e))) continue;
        if (reserved.matchesWhole(c)) continue;
        return text;
      }
    }
    return undefined;
  }

  /** Two-phase claim of `cidr` for `node`: affinity pending → block create-if-absent → affinity
   *  confirmed. True when the node holds the block afterwards; false when another node got it. */
  private async claimBlock(node: string, cidr: string): Promise<boolean> {
    // Phase 1: pending affinity.
    let aff: KVPair<{ node: string; cidr: string; state: AffinityState }>;
    try {
      aff = await this.store.createAffinity({ node, cidr, state: 'pending' });
    } catch (e) {
      if (!(e instanceof DatastoreExists)) throw e;
      const cur = await this.store.getAffinity(node, cidr);
      if (!cur) return false;
      if (cur.value.state === 'confirmed') return true;
      aff = cur;
    }
    // Phase 2: the block, created only if absent.
    try {
      await this.store.createBlock(newBlock(parseCidr(cidr), node, this.clock()));
      this.logger.info({ node, cidr }, 'claimed block');
    } catch (e) {
      if (!(e instanceof DatastoreExists)) throw e;
      const b = await this.store.getBlock(cidr);
      if (!b || b.value.affinity !== hostAffinity(node)) {
        await deleteIfPresent(() => this.store.deleteAffinity(node, cidr, aff.revision)).catch(() => undefined);
        return false;
      }
    }
    // Phase 3: confirm.
    await this.retry(`confirm affinity ${node} ${cidr}`, async () => {
      const cur = await this.store.getAffinity(node, cidr);
      if (!cur) {
        await this.store.createAffinity({ node, cidr, state: 'confirmed' });
        return;
      }
      if (cur.value.state === 'confirmed') return;
      await this.store.updateAffinity({ ...cur.value, state: 'confirmed' }, cur.revision);
    });
    return true;
  }

  /** Give up the node's affinity to its blocks (all, or one): an empty block is deleted and its range
   *  returns to the pool; a non-empty one stays (its addresses keep working) but belongs to no node —
   *  unless requireEmpty, which keeps it affine. */
  async releaseAffinity(
    node: string,
    opts: { cidr?: string; requireEmpty?: boolean } = {},
  ): Promise<{ released: string[]; kept: string[] }> {
    const out = { released: [] as string[], kept: [] as string[] };
    const affs = (await this.store.listAffinities(node)).filter((a) => !opts.cidr || a.value.cidr === formatCidr(parseCidr(opts.cidr)));
    for (const aff of affs) {
      const cidr = aff.value.cidr;
      const done = await this.retry(`release block ${cidr}`, async () => {
        const kv = await this.store.getBlock(cidr);
        if (!kv) return true;
        if (kv.value.affinity !== hostAffinity(node)) return true;
        if (isEmpty(kv.value)) {
          await this.store.deleteBlock(cidr, kv.revision);
          return true;
        }
        if (opts.requireEmpty) return false;
        await this.store.updateBlock({ ...cloneBlock(kv.value), affinity: null }, kv.revision);
        return true;
      });
      if (!done) {
        out.kept.push(cidr);
        continue;
      }
      await deleteIfPresent(() => this.store.deleteAffinity(node, cidr));
      out.released.push(cidr);
      this.logger.info({ node, cidr }, 'released block affinity');
    }
    return out;
  }

  // ---------------------------------------------------------------- release

  /** Release every address held by `handle`; returns them (empty when it holds none — not an error).
   *  The handle goes in the same commit as its last block (one synced write for a pod's one block, shared
   *  with concurrent releases and assignments from that block); a handle changed meanwhile (an assignment
   *  to it in flight) makes the release start over. `also`'s writes
   *  (e.g. the pod's WorkloadEndpoint delete) go into the commit that drops the handle, or alone when there
   *  is no handle; called again on each attempt (it re-reads what it needs). */
  async releaseByHandle(handle: string, also?: () => Promise<TxnOp[]>): Promise<string[]> {
    const released: string[] = [];
    for (let round = 0; round < this.maxRetries; round++) {
      const hkv = await this.store.getHandle(handle);
      if (!hkv) {
        if (also)
          await this.retry(`writes with the release of ${handle}`, async () => {
            const ops = await also();
            if (ops.length) await this.store.commit(ops);
          });
        return released;
      }
      const cidrs = Object.keys(hkv.value.block);
      if (cidrs.length === 1) {
        // The common case (a pod's one block): in that block's rounds, one commit with this process's other
        // assignments and releases from it (block-assigner.ts).
        const ips = await this.assigner.release(cidrs[0]!, handle, also);
        if (ips) return [...released, ...ips];
        await this.backoff(round); // the handle changed meanwhile: read it again
        continue;
      }
      if (cidrs.length === 0) {
        await deleteIfPresent(() => this.store.deleteHandle(handle, hkv.revision)).catch(ignoreConflict);
        continue;
      }
      let handleChanged = false;
      for (const [i, cidr] of cidrs.entries()) {
        const withHandle = i === cidrs.length - 1;
        handleChanged = await this.retry(`release ${handle} in ${cidr}`, async () => {
          const kv = await this.store.getBlock(cidr);
          const ops: TxnOp[] = [];
          let ips: string[] = [];
          if (kv) {
            const b = cloneBlock(kv.value);
            ips = blockReleaseByHandle(b, handle);
            if (ips.length) ops.push(isEmpty(b) && b.affinity === null ? blockDeleteOp(cidr, kv.revision) : blockUpdateOp(b, kv.revision));
          }
          if (withHandle) ops.push(handleDeleteOp(handle, hkv.revision), ...((await also?.()) ?? []));
          if (ops.length === 0) return false;
          try {
            await this.store.commit(ops);
          } catch (e) {
            // The handle changed or went (not the block): re-read it and start over.
            if (withHandle && e instanceof DatastoreError && e.key === handleKey(handle)) return true;
            throw e;
          }
          released.push(...ips);
          return false;
        });
      }
      if (!handleChanged) return released;
      await this.backoff(round);
    }
    throw new IpamRetriesExhausted(`release ${handle}`, this.maxRetries);
  }

  /** Release addresses (bare or with a prefix). With handle/sequenceNumber, a release built on stale
   *  information fails with BadHandle/BadSequenceNumber and frees nothing in that block. */
  async releaseIPs(reqs: (string | ReleaseRequest)[]): Promise<{ released: string[]; notAllocated: string[] }> {
    const out = { released: [] as string[], notAllocated: [] as string[] };
    const norm: ReleaseRequest[] = reqs
      .map((r) => (typeof r === 'string' ? { ip: r } : r))
      .map((r) => ({ ...r, ip: r.ip.includes('/') ? r.ip.slice(0, r.ip.indexOf('/')) : r.ip }));
    if (norm.length === 0) return out;
    const blocks = (await this.store.listBlocks()).map((b) => b.value.cidr);
    const byBlock = new Map<string, ReleaseRequest[]>();
    for (const r of norm) {
      const a = parseIp(r.ip);
      const cidr = blocks.find((c) => cidrContains(parseCidr(c), a));
      if (!cidr) {
        out.notAllocated.push(r.ip);
        continue;
      }
      byBlock.set(cidr, [...(byBlock.get(cidr) ?? []), r]);
    }
    for (const [cidr, rs] of byBlock) {
      const counts = await this.retry(`release in ${cidr}`, async () => {
        const kv = await this.store.getBlock(cidr);
        if (!kv) {
          out.notAllocated.push(...rs.map((r) => r.ip));
          return new Map<string, number>();
        }
        const b = cloneBlock(kv.value);
        const res = blockRelease(b, rs);
        if (res.released.length) {
          if (isEmpty(b) && b.affinity === null) await this.store.deleteBlock(cidr, kv.revision);
          else await this.store.updateBlock(b, kv.revision);
        }
        out.released.push(...res.released.map((x) => x.ip));
        out.notAllocated.push(...res.notAllocated);
        return res.countByHandle;
      });
      for (const [h, n] of counts) await this.adjustHandle(h, cidr, -n);
    }
    return out;
  }

  // ---------------------------------------------------------------- queries

  /** Addresses held by `handle` (host-prefix form), read from the blocks its handle record names. */
  async ipsByHandle(handle: string): Promise<string[]> {
    const hkv = await this.store.getHandle(handle);
    if (!hkv) return [];
    const out: string[] = [];
    for (const cidr of Object.keys(hkv.value.block)) {
      const kv = await this.store.getBlock(cidr);
      if (!kv) continue;
      for (const a of blockAllocations(kv.value)) if (a.handle === handle) out.push(hostCidr(a.ip));
    }
    return out;
  }

  async listBlocks(): Promise<BlockInfo[]> {
    const [blocks, affs, pools] = await Promise.all([this.store.listBlocks(), this.store.listAffinities(), this.pools.listPools()]);
    const state = new Map(affs.map((a) => [`${a.value.node}|${a.value.cidr}`, a.value.state]));
    return blocks.map(({ value: b }) => {
      const node = affinityNode(b.affinity);
      return {
        cidr: b.cidr,
        family: parseCidr(b.cidr).family,
        node,
        affinityState: node === null ? null : (state.get(`${node}|${b.cidr}`) ?? null),
        pool: poolOfBlock(pools, b.cidr)?.name ?? null,
        size: b.allocations.length,
        inUse: numInUse(b),
        free: numFree(b),
      };
    });
  }

  /** Total / in use / free per pool. */
  async usage(): Promise<PoolUsage[]> {
    const [pools, blocks] = await Promise.all([this.pools.listPools(), this.listBlocks()]);
    return pools.map((p) => {
      const mine = blocks.filter((b) => b.pool === p.name);
      const total = cidrSize(parseCidr(p.cidr));
      const inUse = mine.reduce((s, b) => s + b.inUse, 0);
      return { name: p.name, cidr: p.cidr, disabled: p.disabled, total, inUse, free: total - BigInt(inUse), blocks: mine.length };
    });
  }

  /** Who holds an address. */
  async ipInfo(ipText: string): Promise<IpInfo> {
    const ip = parseIp(ipText.includes('/') ? ipText.slice(0, ipText.indexOf('/')) : ipText);
    const bare = hostCidr(ipText.split('/')[0]!).split('/')[0]!;
    const pools = await this.pools.listPools();
    const pool = poolOfIp(pools, bare);
    const blocks = await this.store.listBlocks();
    const b = blocks.find((kv) => cidrContains(parseCidr(kv.value.cidr), ip));
    const info: IpInfo = {
      ip: bare,
      pool: pool?.name ?? null,
      block: b?.value.cidr ?? null,
      blockNode: b ? affinityNode(b.value.affinity) : null,
      allocated: false,
      handle: null,
      attrs: {},
      sequenceNumber: undefined,
    };
    if (!b) return info;
    const a = blockAllocations(b.value).find((x) => x.ordinal === ipToOrdinal(b.value, bare));
    if (a) Object.assign(info, { allocated: true, handle: a.handle, attrs: a.attrs, sequenceNumber: a.sequenceNumber });
    return info;
  }

  // ---------------------------------------------------------------- check and gc

  /** Consistency report. `isLive(handle, attrs)` (optional) says whether an allocation's owner still
   *  exists (e.g. the pod); without it an owner is live when its handle record exists. */
  async check(opts: { isLive?: IsLive } = {}): Promise<IpamCheckReport> {
    const [blocks, handles, affinities, nodes] = await Promise.all([
      this.store.listBlocks(),
      this.store.listHandles(),
      this.store.listAffinities(),
      this.pools.listNodes(),
    ]);
    return checkReport({ blocks, handles, affinities, nodes }, opts.isLive);
  }

  /** Act on a check report: release leaked addresses (sequence-number guarded, so an address reused
   *  since the report is not touched), release the addresses and block affinities of gone nodes, and
   *  drop handle records that hold nothing. */
  async gc(report?: IpamCheckReport): Promise<{ releasedIps: string[]; releasedBlocks: string[]; deletedHandles: string[] }> {
    const r = report ?? (await this.check());
    const out = { releasedIps: [] as string[], releasedBlocks: [] as string[], deletedHandles: [] as string[] };
    const leaked = r.leaked.map((l) => ({
      ip: l.ip,
      ...(l.handle !== null ? { handle: l.handle } : {}),
      ...(l.sequenceNumber !== undefined ? { sequenceNumber: l.sequenceNumber } : {}),
    }));
    for (const l of leaked) {
      try {
        out.releasedIps.push(...(await this.releaseIPs([l])).released);
      } catch (e) {
        this.logger.warn({ err: e, ip: l.ip }, 'gc: not releasing (changed since the check)');
      }
    }
    const goneNodes = new Set([...r.blocksOfGoneNodes, ...r.affinitiesOfGoneNodes].map((x) => x.node));
    if (goneNodes.size) {
      for (const { value: b } of await this.store.listBlocks()) {
        const reqs = blockAllocations(b)
          .filter((a) => a.attrs.node !== undefined && goneNodes.has(a.attrs.node))
          .map((a) => ({
            ip: a.ip,
            ...(a.handle !== null ? { handle: a.handle } : {}),
            ...(a.sequenceNumber !== undefined ? { sequenceNumber: a.sequenceNumber } : {}),
          }));
        if (reqs.length) {
          try {
            out.releasedIps.push(...(await this.releaseIPs(reqs)).released);
          } catch (e) {
            this.logger.warn({ err: e, block: b.cidr }, 'gc: not releasing (changed since the check)');
          }
        }
      }
      for (const n of goneNodes) out.releasedBlocks.push(...(await this.releaseAffinity(n)).released);
    }
    // Handle records that name blocks holding nothing for them.
    const stale = new Set(r.handleMismatches.filter((m) => m.blockCount === 0).map((m) => m.handle));
    for (const h of stale) {
      const ips = await this.ipsByHandle(h);
      if (ips.length === 0) {
        const kv = await this.store.getHandle(h);
        if (kv) {
          await deleteIfPresent(() => this.store.deleteHandle(h, kv.revision)).catch(() => undefined);
          out.deletedHandles.push(h);
        }
      }
    }
    return out;
  }

  // ---------------------------------------------------------------- helpers

  private async reservations(): Promise<Reservations> {
    return new Reservations(await this.pools.listReservations());
  }

  /** Run `fn` until it does not hit a CAS conflict (or a create that lost a race), at most maxRetries times. */
  private async retry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (!(e instanceof DatastoreConflict || e instanceof DatastoreExists || (e instanceof DatastoreNotFound && attempt < 3))) throw e;
        await this.backoff(attempt);
      }
    }
    throw new IpamRetriesExhausted(what, this.maxRetries);
  }

  private async backoff(attempt: number): Promise<void> {
    if (attempt < 2) return;
    await sleep(Math.min(50, 1 + attempt * 2) * this.random());
  }
}

/** The pools requested for `family` (undefined = no restriction). Throws UnknownPool for a name/CIDR
 *  that matches no pool, whatever the family. */
function requestedPools(all: PoolInfo[], args: AutoAssignArgs, family: Family): string[] | undefined {
  const generic = args.pools ?? [];
  const specific = (family === 4 ? args.pools4 : args.pools6) ?? [];
  resolveRequestedPools(all, [...generic, ...(args.pools4 ?? []), ...(args.pools6 ?? [])], family); // validate names
  const genericHere = resolveRequestedPools(all, generic, family).length > 0 ? generic : [];
  const list = [...specific, ...genericHere];
  return list.length ? list : undefined;
}

function shuffle<T>(a: T[], random: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
}

function ignoreConflict(e: unknown): void {
  if (!(e instanceof DatastoreConflict)) throw e;
}

function ignoreExists(e: unknown): void {
  if (!(e instanceof DatastoreExists)) throw e;
}
