// What IPAM needs to know about IP pools and nodes, read through a small interface so IPAM depends only
// on the datastore: the default source reads the IPPool/Node resources (projectcalico.org/v3 shapes)
// straight from their datastore keys. Pure helpers: pool choice for a node (enabled, family,
// nodeSelector, requested names/CIDRs) and finding the pool of an address.
import { NODES_PREFIX, POOLS_PREFIX, RESERVATIONS_PREFIX } from '../datastore/keys.js';
import { cidrContains, cidrContainsCidr, formatCidr, parseCidr, parseIp, type Family } from '../common/ip.js';
import type { Datastore } from '../datastore/types.js';
import { parseSelector } from '../datastore/selector.js';

/** What a pool's addresses may be used for (IPPool `allowedUses`). */
export type PoolUse = 'Workload' | 'Tunnel';

export interface PoolInfo {
  name: string;
  /** Network form. */
  cidr: string;
  family: Family;
  /** Block prefix length (26 for IPv4, 122 for IPv6 by default). */
  blockSize: number;
  disabled: boolean;
  /** Calico selector over node labels; '' or 'all()' = every node. */
  nodeSelector: string;
  /** Absent = both (Calico's default). */
  allowedUses?: PoolUse[];
}

export interface PoolSource {
  listPools(): Promise<PoolInfo[]>;
  /** Labels of a node; undefined when the node is not registered. */
  nodeLabels(node: string): Promise<Record<string, string> | undefined>;
  /** Names of all registered nodes (for `check`: blocks affine to nodes that are gone). */
  listNodes(): Promise<string[]>;
  /** Every IPReservation's reservedCIDRs (addresses or CIDRs), all resources together. */
  listReservations(): Promise<string[]>;
}

interface ResourceLike {
  metadata?: { name?: string; labels?: Record<string, string> };
  spec?: {
    cidr?: string;
    blockSize?: number;
    disabled?: boolean;
    nodeSelector?: string;
    allowedUses?: PoolUse[];
    reservedCIDRs?: string[];
  };
}

/** Reads IPPool and Node resources from their datastore keys. */
export class DatastorePoolSource implements PoolSource {
  constructor(private readonly ds: Datastore) {}

  async listPools(): Promise<PoolInfo[]> {
    const { items } = await this.ds.list<ResourceLike>(POOLS_PREFIX);
    const out: PoolInfo[] = [];
    for (const kv of items) {
      const p = poolFromResource(kv.value, kv.key.slice(POOLS_PREFIX.length));
      if (p) out.push(p);
    }
    return out;
  }

  async nodeLabels(node: string): Promise<Record<string, string> | undefined> {
    const kv = await this.ds.get<ResourceLike>(NODES_PREFIX + node);
    return kv ? { ...(kv.value.metadata?.labels ?? {}) } : undefined;
  }

  async listNodes(): Promise<string[]> {
    const { items } = await this.ds.list<ResourceLike>(NODES_PREFIX);
    return items.map((kv) => kv.value.metadata?.name ?? kv.key.slice(NODES_PREFIX.length));
  }

  async listReservations(): Promise<string[]> {
    const { items } = await this.ds.list<ResourceLike>(RESERVATIONS_PREFIX);
    return items.flatMap((kv) => kv.value.spec?.reservedCIDRs ?? []);
  }
}

/** A PoolInfo from an IPPool resource; undefined when it has no usable CIDR. */
export function poolFromResource(r: ResourceLike, fallbackName: string): PoolInfo | undefined {
  const cidrText = r.spec?.cidr;
  if (!cidrText) return undefined;
  let c;
  try {
    c = parseCidr(cidrText, { requirePrefix: true });
  } catch {
    return undefined;
  }
  const blockSize = r.spec?.blockSize ?? (c.family === 4 ? 26 : 122);
  return {
    name: r.metadata?.name ?? fallbackName,
    cidr: formatCidr(c),
    family: c.family,
    blockSize: Math.max(blockSize, c.prefixLen),
    disabled: r.spec?.disabled === true,
    nodeSelector: r.spec?.nodeSelector ?? '',
    ...(r.spec?.allowedUses ? { allowedUses: [...r.spec.allowedUses] } : {}),
  };
}

/** A static pool source (tests, or a caller that already has the pools). */
export class StaticPoolSource implements PoolSource {
  constructor(
    public pools: PoolInfo[],
    public nodes: Map<string, Record<string, string>> = new Map(),
    public reservations: string[] = [],
  ) {}
  async listPools(): Promise<PoolInfo[]> {
    return this.pools.map((p) => ({ ...p }));
  }
  async nodeLabels(node: string): Promise<Record<string, string> | undefined> {
    return this.nodes.get(node);
  }
  async listNodes(): Promise<string[]> {
    return [...this.nodes.keys()];
  }
  async listReservations(): Promise<string[]> {
    return [...this.reservations];
  }
}

export type SelectorMatcher = (selector: string, labels: Record<string, string>) => boolean;

let matcher: SelectorMatcher = (s, labels) => parseSelector(s).matches(labels);

/** Replace the selector evaluator (default: the datastore's Calico selector language). */
export function setSelectorMatcher(m: SelectorMatcher): void {
  matcher = m;
}

export function selectorMatches(selector: string, labels: Record<string, string>): boolean {
  const s = selector.trim();
  if (s === '' || s === 'all()') return true;
  return matcher(s, labels);
}

/** The subset of the selector language used by pool nodeSelectors in practice: terms joined by &&,
 *  each `k == 'v'`, `k != 'v'`, `has(k)`, `!has(k)`, `all()`. */
export function basicSelectorMatches(selector: string, labels: Record<string, string>): boolean {
  return selector.split('&&').every((raw) => {
    const t = raw.trim();
    if (t === 'all()') return true;
    let m = /^(!?)has\(\s*([\w./-]+)\s*\)$/.exec(t);
    if (m) return m[2]! in labels !== (m[1] === '!');
    m = /^([\w./-]+)\s*(==|!=)\s*(['"])(.*)\3$/.exec(t);
    if (m) return (labels[m[1]!] === m[4]) === (m[2] === '==');
    throw new Error(`unsupported selector term "${t}" in "${selector}"`);
  });
}

export class UnknownPool extends Error {
  readonly code = 'EUNKNOWNPOOL';
  constructor(readonly requested: string) {
    super(`IP pool "${requested}" does not exist (name it by its IPPool name or its exact CIDR)`);
    this.name = 'UnknownPool';
  }
}

/** Resolve requested pool names/CIDRs (in the order given) to pools of `family`. Unknown ones throw
 *  UnknownPool; a requested pool of the other family is simply not returned. */
export function resolveRequestedPools(all: PoolInfo[], requested: string[], family: Family): PoolInfo[] {
  const out: PoolInfo[] = [];
  for (const r of requested) {
    let p = all.find((x) => x.name === r);
    if (!p) {
      let c;
      try {
        c = parseCidr(r, { requirePrefix: true });
      } catch {
        c = undefined;
      }
      if (c) p = all.find((x) => x.cidr === formatCidr(c!));
    }
    if (!p) throw new UnknownPool(r);
    if (p.family === family && !out.includes(p)) out.push(p);
  }
  return out;
}

/** Pools a node may take new blocks from: of the family, enabled, nodeSelector matching its labels. */
export function poolsForNode(pools: PoolInfo[], family: Family, labels: Record<string, string>): PoolInfo[] {
  return pools.filter((p) => p.family === family && !p.disabled && selectorMatches(p.nodeSelector, labels));
}

/** The pool's allowedUses permit `use` (no list = Workload and Tunnel). */
export const poolAllows = (p: PoolInfo, use: PoolUse): boolean => !p.allowedUses || p.allowedUses.includes(use);

export function poolOfIp(pools: PoolInfo[], ip: string): PoolInfo | undefined {
  const a = parseIp(ip);
  return pools.find((p) => cidrContains(parseCidr(p.cidr), a));
}

export function poolOfBlock(pools: PoolInfo[], blockCidr: string): PoolInfo | undefined {
  const b = parseCidr(blockCidr);
  return pools.find((p) => cidrContainsCidr(parseCidr(p.cidr), b));
}
