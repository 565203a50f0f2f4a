// IPAM layer 1 of 3: pure operations on one allocation block (no I/O).
// A block is one datastore value: the allocation of every ordinal in the block's CIDR, a FIFO of free
// ordinals (a released address goes to the back, so it is reused last), per-allocation attributes
// (handle + owner attributes) and a per-allocation sequence number, so a release built from stale
// information (the address was released and handed to someone else meanwhile) fails instead of freeing
// the new owner's address. Automatic assignment skips addresses an IPReservation covers (reservations.ts).
// Callers copy a block (cloneBlock), change the copy, and write it back with a compare-and-swap.
import { bitsOf, cidrContains, cidrSize, formatCidr, formatIp, nthIp, parseCidr, parseIp, type Cidr, type Family } from '../common/ip.js';
import { NO_RESERVATIONS, type Reservations } from './reservations.js';
import { isoTime } from '../common/iso-time.js';

export interface AllocationAttribute {
  /** The allocation owner, e.g. `k8s-pod-network.<containerID>`; null for an anonymous allocation. */
  handle: string | null;
  /** Owner attributes: namespace, pod, node, … */
  attrs: Record<string, string>;
}

export interface BlockValue {
  /** Network form, e.g. "10.0.0.0/26". */
  cidr: string;
  /** `host:<node>` or null when the block belongs to no node (its affinity was released). */
  affinity: string | null;
  /** When the affinity was claimed (ISO time). */
  affinityClaimTime?: string;
  /** ordinal → index into attributes, or null when free. */
  allocations: (number | null)[];
  /** Free ordinals, FIFO: allocations take from the front, releases append to the back. */
  unallocated: number[];
  attributes: AllocationAttribute[];
  /** The next sequence number to hand out; seeded from the clock at creation so a block deleted and
   *  created again never repeats an (address, sequence number) pair. */
  sequenceNumber: number;
  /** ordinal (as text) → sequence number of its current allocation. */
  sequenceNumberForAllocation: Record<string, number>;
}

export class BadSequenceNumber extends Error {
  readonly code = 'EBADSEQ';
  constructor(
    readonly ip: string,
    readonly requested: number,
    readonly current: number | undefined,
  ) {
    super(
      `release of ${ip} refused: it was requested for allocation #${requested} but the address is now allocation #${current ?? 'none'} (it was released and handed out again)`,
    );
    this.name = 'BadSequenceNumber';
  }
}

export class BadHandle extends Error {
  readonly code = 'EBADHANDLE';
  constructor(
    readonly ip: string,
    readonly requested: string,
    readonly current: string | null,
  ) {
    super(`release of ${ip} refused: requested for handle "${requested}" but it is held by "${current ?? '(none)'}"`);
    this.name = 'BadHandle';
  }
}

export class AddressInUse extends Error {
  readonly code = 'EADDRINUSE';
  constructor(
    readonly ip: string,
    readonly handle: string | null,
  ) {
    super(`address ${ip} is already assigned${handle ? ` to handle "${handle}"` : ''}`);
    this.name = 'AddressInUse';
  }
}

export const hostAffinity = (node: string): string => `host:${node}`;
export const affinityNode = (affinity: string | null): string | null => (affinity?.startsWith('host:') ? affinity.slice(5) : null);

/** A fresh block with every ordinal free, in order. */
export function newBlock(cidr: Cidr, node: string | null, now: Date = new Date()): BlockValue {
  const size = Number(cidrSize(cidr));
  if (size > 4096) throw new RangeError(`block ${formatCidr(cidr)} is too large (${size} addresses; at most 4096)`);
  return {
    cidr: formatCidr(cidr),
    affinity: node === null ? null : hostAffinity(node),
    ...(node === null ? {} : { affinityClaimTime: isoTime(now) }),
    allocations: new Array<number | null>(size).fill(null),
    unallocated: Array.from({ length: size }, (_, i) => i),
    attributes: [],
    sequenceNumber: now.getTime() * 1000,
    sequenceNumberForAllocation: {},
  };
}

export function cloneBlock(b: BlockValue): BlockValue {
  return {
    ...b,
    allocations: [...b.allocations],
    unallocated: [...b.unallocated],
    attributes: b.attributes.map((a) => ({ handle: a.handle, attrs: { ...a.attrs } })),
    sequenceNumberForAllocation: { ...b.sequenceNumberForAllocation },
  };
}

export const blockCidr = (b: BlockValue): Cidr => parseCidr(b.cidr);
export const blockSize = (b: BlockValue): number => b.allocations.length;
export const numFree = (b: BlockValue): number => b.unallocated.length;
export const numInUse = (b: BlockValue): number => b.allocations.length - b.unallocated.length;
export const isEmpty = (b: BlockValue): boolean => b.unallocated.length === b.allocations.length;

export function ordinalToIp(b: BlockValue, ordinal: number): string {
  return formatIp(nthIp(blockCidr(b), ordinal));
}

/** The ordinal of `ip` in the block; throws RangeError when the block does not contain it. */
export function ipToOrdinal(b: BlockValue, ip: string): number {
  const c = blockCidr(b);
  const a = parseIp(ip);
  if (!cidrContains(c, a)) throw new RangeError(`${ip} is not in block ${b.cidr}`);
  return Number(a.value - c.network);
}

/** Address with host prefix: "10.0.0.5/32", "fd00::5/128". */
export function hostCidr(ip: string): string {
  const a = parseIp(ip);
  return `${formatIp(a)}/${bitsOf(a.family)}`;
}

export const blockFamily = (b: BlockValue): Family => blockCidr(b).family;

function findOrAddAttribute(b: BlockValue, handle: string | null, attrs: Record<string, string>): number {
  const want = JSON.stringify(sortedAttrs(attrs));
  const i = b.attributes.findIndex((a) => a.handle === handle && JSON.stringify(sortedAttrs(a.attrs)) === want);
  if (i >= 0) return i;
  b.attributes.push({ handle, attrs: { ...attrs } });
  return b.attributes.length - 1;
}

function sortedAttrs(a: Record<string, string>): [string, string][] {
  return Object.entries(a).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
}

export interface Assigned {
  ip: string;
  ordinal: number;
  sequenceNumber: number;
}

function allocate(b: BlockValue, ordinal: number, attrIndex: number): Assigned {
  b.allocations[ordinal] = attrIndex;
  const seq = b.sequenceNumber++;
  b.sequenceNumberForAllocation[String(ordinal)] = seq;
  return { ip: ordinalToIp(b, ordinal), ordinal, sequenceNumber: seq };
}

/** Take up to `num` addresses from the front of the free FIFO, skipping reserved ones (they stay free,
 *  in place). Mutates `b`. */
export function blockAutoAssign(
  b: BlockValue,
  num: number,
  handle: string | null,
  attrs: Record<string, string>,
  reserved: Reservations = NO_RESERVATIONS,
): Assigned[] {
  const out: Assigned[] = [];
  if (num <= 0 || blockNumFree(b, reserved) === 0) return out;
  const attrIndex = findOrAddAttribute(b, handle, attrs);
  let take: number[];
  if (!reserved.matchesSome(blockCidr(b))) take = b.unallocated.splice(0, num);
  else {
    const c = blockCidr(b);
    take = [];
    const keep: number[] = [];
    for (const ord of b.unallocated) {
      if (take.length < num && !reserved.matchesIp(nthIp(c, ord))) take.push(ord);
      else keep.push(ord);
    }
    b.unallocated = keep;
  }
  for (const ord of take) out.push(allocate(b, ord, attrIndex));
  return out;
}

/** Free addresses automatic assignment may hand out (free and not reserved). */
export function blockNumFree(b: BlockValue, reserved: Reservations = NO_RESERVATIONS): number {
  if (reserved.empty) return b.unallocated.length;
  const c = blockCidr(b);
  if (reserved.matchesWhole(c)) return 0;
  if (!reserved.matchesSome(c)) return b.unallocated.length;
  return b.unallocated.filter((ord) => !reserved.matchesIp(nthIp(c, ord))).length;
}

/** Assign one requested address. Mutates `b`. Throws AddressInUse when taken. */
export function blockAssign(b: BlockValue, ip: string, handle: string | null, attrs: Record<string, string>): Assigned {
  const ord = ipToOrdinal(b, ip);
  const cur = b.allocations[ord];
  if (cur !== null && cur !== undefined) throw new AddressInUse(ip, b.attributes[cur]?.handle ?? null);
  const attrIndex = findOrAddAttribute(b, handle, attrs);
  const pos = b.unallocated.indexOf(ord);
  if (pos >= 0) b.unallocated.splice(pos, 1);
  return allocate(b, ord, attrIndex);
}

export interface ReleaseRequest {
  ip: string;
  /** Release only if the address is still held by this handle. */
  handle?: string;
  /** Release only if the address is still this allocation (from the Assigned it was handed out as). */
  sequenceNumber?: number;
}

export interface BlockReleaseResult {
  released: { ip: string; handle: string | null }[];
  /** Addresses that were not allocated (nothing to do). */
  notAllocated: string[];
  /** handle → number of its addresses released here. */
  countByHandle: Map<string, number>;
}

/** Release addresses. All-or-nothing: a stale request (sequence number or handle mismatch) throws and
 *  changes nothing. Mutates `b`. */
export function blockRelease(b: BlockValue, reqs: ReleaseRequest[]): BlockReleaseResult {
  const res: BlockReleaseResult = { released: [], notAllocated: [], countByHandle: new Map() };
  const ordinals: number[] = [];
  const seen = new Set<number>();
  for (const r of reqs) {
    const ord = ipToOrdinal(b, r.ip);
    if (seen.has(ord)) continue;
    seen.add(ord);
    const idx = b.allocations[ord];
    if (idx === null || idx === undefined) {
      res.notAllocated.push(ordinalToIp(b, ord));
      continue;
    }
    const cur = b.sequenceNumberForAllocation[String(ord)];
    if (r.sequenceNumber !== undefined && r.sequenceNumber !== cur) throw new BadSequenceNumber(r.ip, r.sequenceNumber, cur);
    const h = b.attributes[idx]?.handle ?? null;
    if (r.handle !== undefined && r.handle !== h) throw new BadHandle(r.ip, r.handle, h);
    ordinals.push(ord);
  }
  for (const ord of ordinals) {
    const h = b.attributes[b.allocations[ord]!]?.handle ?? null;
    res.released.push({ ip: ordinalToIp(b, ord), handle: h });
    if (h !== null) res.countByHandle.set(h, (res.countByHandle.get(h) ?? 0) + 1);
    freeOrdinal(b, ord);
  }
  compactAttributes(b);
  return res;
}

/** Release every address of `handle` in this block; returns how many. Mutates `b`. */
export function blockReleaseByHandle(b: BlockValue, handle: string): string[] {
  const out: string[] = [];
  b.allocations.forEach((idx, ord) => {
    if (idx !== null && b.attributes[idx]?.handle === handle) out.push(ordinalToIp(b, ord));
  });
  for (const ip of out) freeOrdinal(b, ipToOrdinal(b, ip));
  if (out.length) compactAttributes(b);
  return out;
}

function freeOrdinal(b: BlockValue, ord: number): void {
  b.allocations[ord] = null;
  b.unallocated.push(ord);
  delete b.sequenceNumberForAllocation[String(ord)];
}

/** Drop attributes no allocation references any more and renumber the rest. */
function compactAttributes(b: BlockValue): void {
  const used = new Set<number>();
  for (const idx of b.allocations) if (idx !== null) used.add(idx);
  if (used.size === b.attributes.length) return;
  const remap = new Map<number, number>();
  const attrs: AllocationAttribute[] = [];
  b.attributes.forEach((a, i) => {
    if (used.has(i)) {
      remap.set(i, attrs.length);
      attrs.push(a);
    }
  });
  b.attributes = attrs;
  b.allocations = b.allocations.map((idx) => (idx === null ? null : remap.get(idx)!));
}

export interface AllocationInfo {
  ip: string;
  ordinal: number;
  handle: string | null;
  attrs: Record<string, string>;
  sequenceNumber: number | undefined;
}

/** Every allocated address of the block with its owner. */
export function blockAllocations(b: BlockValue): AllocationInfo[] {
  const out: AllocationInfo[] = [];
  b.allocations.forEach((idx, ord) => {
    if (idx === null) return;
    const a = b.attributes[idx];
    out.push({
      ip: ordinalToIp(b, ord),
      ordinal: ord,
      handle: a?.handle ?? null,
      attrs: { ...(a?.attrs ?? {}) },
      sequenceNumber: b.sequenceNumberForAllocation[String(ord)],
    });
  });
  return out;
}

/** handle → number of addresses it holds in this block. */
export function blockHandleCounts(b: BlockValue): Map<string, number> {
  const m = new Map<string, number>();
  for (const idx of b.allocations) {
    if (idx === null) continue;
    const h = b.attributes[idx]?.handle;
    if (h) m.set(h, (m.get(h) ?? 0) + 1);
  }
  return m;
}

/** Structural invariants (for tests and `ipam check`): every ordinal is either allocated or in the
 *  FIFO exactly once; attribute indexes are valid; sequence numbers exist exactly for allocations. */
export function blockProblems(b: BlockValue): string[] {
  const p: string[] = [];
  const inFifo = new Set<number>();
  for (const o of b.unallocated) {
    if (inFifo.has(o)) p.push(`ordinal ${o} is free twice`);
    inFifo.add(o);
    if (b.allocations[o] !== null) p.push(`ordinal ${o} is both free and allocated`);
  }
  b.allocations.forEach((idx, o) => {
    if (idx === null && !inFifo.has(o)) p.push(`ordinal ${o} is neither free nor allocated`);
    if (idx !== null && !b.attributes[idx]) p.push(`ordinal ${o} points to missing attribute ${idx}`);
    if (idx !== null && b.sequenceNumberForAllocation[String(o)] === undefined) p.push(`ordinal ${o} has no sequence number`);
  });
  return p.map((s) => `block ${b.cidr}: ${s}`);
}

// ---- Candidate block search -------------------------------------------------------------------

/** FNV-1a, 32 bit. */
export function fnv1a32(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (const byte of Buffer.from(s, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** The blocks of a pool in the order one node tries them: all of them exactly once, starting at an
 *  offset seeded by a hash of the node name (so nodes starting together don't all race for the first
 *  block), wrapping around. Lazy: an IPv6 pool has far too many blocks to list. */
export function* candidateBlocks(pool: Cidr, blockPrefixLen: number, node: string): Generator<Cidr> {
  if (blockPrefixLen < pool.prefixLen) throw new RangeError(`block size /${blockPrefixLen} is larger than pool ${formatCidr(pool)}`);
  const count = 1n << BigInt(blockPrefixLen - pool.prefixLen);
  const h = (BigInt(fnv1a32(node)) << 32n) | BigInt(fnv1a32(node, 0x9747b28c));
  const start = h % count;
  const step = 1n << BigInt(bitsOf(pool.family) - blockPrefixLen);
  for (let i = 0n; i < count; i++) {
    const n = (start + i) % count;
    const network = pool.network + n * step;
    yield { family: pool.family, ip: network, network, prefixLen: blockPrefixLen };
  }
}
