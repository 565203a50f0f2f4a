// IPAM's consistency check (`tabbyctl ipam check`, the GC's input): from the blocks, handle records,
// affinities and Node names as read, what is leaked (an allocation whose owner is gone), which handle
// counts disagree with the blocks, what gone nodes still hold, pending claims and structural problems
// inside blocks. Pure but for the caller's liveness test; Ipam.check reads the lists, Ipam.gc acts on it.
import type { KVPair } from '../datastore/types.js';
import { affinityNode, blockAllocations, blockHandleCounts, blockProblems, type BlockValue } from './block.js';
import type { AffinityState, AffinityValue, HandleValue } from './store.js';

export interface LeakedAddress {
  ip: string;
  block: string;
  handle: string | null;
  sequenceNumber: number | undefined;
  reason: string;
}

export interface IpamCheckReport {
  blocks: number;
  allocations: number;
  handles: number;
  /** Allocated addresses whose owner is gone (no handle record, or not live by the caller's test). */
  leaked: LeakedAddress[];
  /** Handle records whose count disagrees with the blocks (transient while an assignment is in flight). */
  handleMismatches: { handle: string; block: string; handleCount: number; blockCount: number }[];
  /** Blocks / affinities of nodes that have no Node resource any more. */
  blocksOfGoneNodes: { cidr: string; node: string }[];
  affinitiesOfGoneNodes: { cidr: string; node: string; state: AffinityState }[];
  /** Pending affinities (a claim in flight, or a crashed one). */
  pendingAffinities: { cidr: string; node: string }[];
  /** Structural problems inside blocks (should never happen). */
  problems: string[];
  notes: string[];
}

/** Whether an allocation's owner still exists (e.g. its pod); absent, an owner lives while its handle record exists. */
export type IsLive = (handle: string, attrs: Record<string, string>) => boolean | Promise<boolean>;

export interface IpamLists {
  blocks: KVPair<BlockValue>[];
  handles: KVPair<HandleValue>[];
  affinities: KVPair<AffinityValue>[];
  /** Names of the Node resources (none registered: gone nodes are not checked, and the report says so). */
  nodes: string[];
}

export async function checkReport({ blocks, handles, affinities, nodes }: IpamLists, isLive?: IsLive): Promise<IpamCheckReport> {
  const r: IpamCheckReport = {
    blocks: blocks.length,
    allocations: 0,
    handles: handles.length,
    leaked: [],
    handleMismatches: [],
    blocksOfGoneNodes: [],
    affinitiesOfGoneNodes: [],
    pendingAffinities: [],
    problems: [],
    notes: [],
  };
  const handleMap = new Map(handles.map((h) => [h.value.handleId, h.value]));
  const seen = new Set<string>(); // handle|cidr pairs present in blocks
  for (const { value: b } of blocks) {
    r.problems.push(...blockProblems(b));
    const counts = blockHandleCounts(b);
    for (const a of blockAllocations(b)) {
      r.allocations++;
      const base = { ip: a.ip, block: b.cidr, handle: a.handle, sequenceNumber: a.sequenceNumber };
      if (a.handle === null) {
        r.leaked.push({ ...base, reason: 'allocation has no handle' });
        continue;
      }
      const h = handleMap.get(a.handle);
      if (!h) r.leaked.push({ ...base, reason: `handle "${a.handle}" does not exist` });
      else if (isLive && !(await isLive(a.handle, { ...(h.attrs ?? {}), ...a.attrs })))
        r.leaked.push({ ...base, reason: `owner of handle "${a.handle}" is gone` });
    }
    for (const [h, n] of counts) {
      seen.add(`${h}|${b.cidr}`);
      const hv = handleMap.get(h);
      if (hv && (hv.block[b.cidr] ?? 0) !== n)
        r.handleMismatches.push({ handle: h, block: b.cidr, handleCount: hv.block[b.cidr] ?? 0, blockCount: n });
    }
  }
  for (const h of handles) {
    for (const [cidr, n] of Object.entries(h.value.block)) {
      if (!seen.has(`${h.value.handleId}|${cidr}`))
        r.handleMismatches.push({ handle: h.value.handleId, block: cidr, handleCount: n, blockCount: 0 });
    }
  }
  for (const a of affinities) if (a.value.state === 'pending') r.pendingAffinities.push({ cidr: a.value.cidr, node: a.value.node });
  if (nodes.length === 0) {
    r.notes.push('no Node resources are registered: blocks of gone nodes not checked');
  } else {
    const live = new Set(nodes);
    for (const { value: b } of blocks) {
      const n = affinityNode(b.affinity);
      if (n !== null && !live.has(n)) r.blocksOfGoneNodes.push({ cidr: b.cidr, node: n });
    }
    for (const a of affinities)
      if (!live.has(a.value.node)) r.affinitiesOfGoneNodes.push({ cidr: a.value.cidr, node: a.value.node, state: a.value.state });
  }
  return r;
}
