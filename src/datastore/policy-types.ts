// Types of the projectcalico.org/v3 network-policy resources (Calico's field names and shapes):
// WorkloadEndpoint (namespaced), NetworkPolicy (namespaced), GlobalNetworkPolicy, Profile, and the
// Rule / EntityRule they share. Validation and defaults are in policy-validation.ts; the compiler that
// turns them into nftables is src/policy/.

export type RuleAction = 'Allow' | 'Deny' | 'Log' | 'Pass';
export type PolicyType = 'Ingress' | 'Egress';
/** Calico protocol names, or an IP protocol number 1..255. */
export type ProtocolName = 'TCP' | 'UDP' | 'ICMP' | 'ICMPv6' | 'SCTP' | 'UDPLite';
export type Protocol = ProtocolName | number;
/** 80, "1000:2000" (a range), or a named port ("http") resolved from the endpoints' ports. */
export type PolicyPort = number | string;

export interface IcmpMatch {
  type?: number;
  code?: number;
}

export interface EntityRule {
  nets?: string[];
  notNets?: string[];
  selector?: string;
  notSelector?: string;
  namespaceSelector?: string;
  ports?: PolicyPort[];
  notPorts?: PolicyPort[];
}

export interface PolicyRule {
  action: RuleAction;
  ipVersion?: 4 | 6;
  protocol?: Protocol;
  notProtocol?: Protocol;
  icmp?: IcmpMatch;
  notICMP?: IcmpMatch;
  source?: EntityRule;
  destination?: EntityRule;
  metadata?: { annotations?: Record<string, string> };
}

export interface NetworkPolicySpec {
  /** Lower first; a policy without order comes after every ordered one (Calico). */
  order?: number;
  tier?: string;
  selector: string;
  types: PolicyType[];
  ingress?: PolicyRule[];
  egress?: PolicyRule[];
}

export interface GlobalNetworkPolicySpec extends NetworkPolicySpec {
  namespaceSelector?: string;
  applyOnForward?: boolean;
}

export interface ProfileSpec {
  ingress?: PolicyRule[];
  egress?: PolicyRule[];
  /** Labels every endpoint using this profile inherits (kns.<ns> carries pcns.<namespace label>). */
  labelsToApply?: Record<string, string>;
}

export interface EndpointPort {
  name: string;
  protocol: ProtocolName;
  port: number;
}

export interface WorkloadEndpointSpec {
  orchestrator: string;
  workload?: string;
  node: string;
  containerID?: string;
  pod?: string;
  endpoint: string;
  serviceAccountName?: string;
  /** "10.244.1.5/32", "fd00::5/128" */
  ipNetworks: string[];
  profiles: string[];
  interfaceName: string;
  mac?: string;
  ports?: EndpointPort[];
}

/** The label Calico puts on every endpoint: its namespace. */
export const NAMESPACE_LABEL = 'projectcalico.org/namespace';
export const ORCHESTRATOR_LABEL = 'projectcalico.org/orchestrator';
/** Profile labels that carry a namespace's own labels (kns.<ns> labelsToApply: pcns.<key>: value). */
export const NAMESPACE_LABEL_PREFIX = 'pcns.';
/** Name of the profile of Kubernetes namespace `ns`. */
export const namespaceProfileName = (ns: string): string => `kns.${ns}`;
/** A Kubernetes NetworkPolicy `name` becomes the Calico NetworkPolicy `knp.default.<name>`, order 1000. */
export const K8S_POLICY_PREFIX = 'knp.default.';
export const K8S_POLICY_ORDER = 1000;

/** Calico's WorkloadEndpoint name: `<node>-k8s-<pod>-<interface>` (dashes inside a part doubled). */
export function workloadEndpointName(node: string, orchestrator: string, workload: string, endpoint: string): string {
  const esc = (s: string) => s.replace(/-/g, '--');
  return [node, orchestrator, workload, endpoint].map(esc).join('-');
}
