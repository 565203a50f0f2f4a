// BGP filter rules in Calico's projectcalico.org/v3 BGPFilter shape (field names and values as Calico
// 3.32 has them), shared by the datastore resource (validation) and the speaker's filter engine.
// The engine (engine.ts) compiles these into match tables; nothing here does any work.

export type FilterAction = 'Accept' | 'Reject';
export type MatchOperator = 'Equal' | 'NotEqual' | 'In' | 'NotIn';
export type FilterDirection = 'import' | 'export';

/** One route modification (exactly one field set), applied in order to a route an Accept rule matched. */
export interface FilterOperation {
  /** A standard `aa:nn` or large `aa:nn:mm` community. */
  addCommunity?: { value: string };
  /** AS numbers put in front of the AS_PATH, in the order listed. */
  prependASPath?: { prefix: number[] };
  /** Route priority (the kernel route metric, Calico's krt_metric). */
  setPriority?: { value: number };
}

export interface FilterRule {
  cidr?: string;
  matchOperator?: MatchOperator;
  prefixLength?: { min?: number; max?: number };
  source?: 'RemotePeers';
  interface?: string;
  peerType?: 'eBGP' | 'iBGP';
  communities?: { values: string[] };
  asPathPrefix?: number[];
  priority?: number;
  action: FilterAction;
  operations?: FilterOperation[];
}

export interface FilterRules {
  exportV4?: FilterRule[];
  importV4?: FilterRule[];
  exportV6?: FilterRule[];
  importV6?: FilterRule[];
}

/** A named filter (BGPFilter metadata.name + spec), as BGPPeer.filters refers to it. */
export interface NamedFilter {
  name: string;
  spec: FilterRules;
}

/** Which rule decided a route: the filter's name and the rule's index in its list, or the default. */
export interface FilterDecision {
  action: FilterAction;
  /** Absent: no rule matched (the default, Accept). */
  filter?: string;
  /** Index of the rule in the filter's exportV4/importV4/… list. */
  rule?: number;
}
