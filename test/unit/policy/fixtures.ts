// Builders for policy unit tests: resources as a user writes them, validated like `tabbyctl apply`.
import {
  validateResource,
  type WorkloadEndpoint,
  type NetworkPolicy,
  type GlobalNetworkPolicy,
  type Profile,
} from '../../../src/datastore/resources.js';

export const wep = (
  ns: string,
  pod: string,
  node: string,
  ip: string,
  labels: Record<string, string> = {},
  ports?: unknown[],
): WorkloadEndpoint =>
  validateResource({
    apiVersion: 'projectcalico.org/v3',
    kind: 'WorkloadEndpoint',
    metadata: { name: `${node}-k8s-${pod}-eth0`, namespace: ns, labels },
    spec: {
      node,
      pod,
      interfaceName: `cali${pod}`.slice(0, 15),
      ipNetworks: [`${ip}/32`],
      profiles: [`kns.${ns}`],
      ...(ports ? { ports } : {}),
    },
  }) as WorkloadEndpoint;

export const nsProfile = (ns: string, labels: Record<string, string> = {}): Profile =>
  validateResource({
    apiVersion: 'projectcalico.org/v3',
    kind: 'Profile',
    metadata: { name: `kns.${ns}` },
    spec: {
      ingress: [{ action: 'Allow' }],
      egress: [{ action: 'Allow' }],
      labelsToApply: Object.fromEntries(Object.entries(labels).map(([k, v]) => [`pcns.${k}`, v])),
    },
  }) as Profile;

export const np = (ns: string, name: string, spec: Record<string, unknown>): NetworkPolicy =>
  validateResource({ apiVersion: 'projectcalico.org/v3', kind: 'NetworkPolicy', metadata: { name, namespace: ns }, spec }) as NetworkPolicy;

export const gnp = (name: string, spec: Record<string, unknown>): GlobalNetworkPolicy =>
  validateResource({ apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkPolicy', metadata: { name }, spec }) as GlobalNetworkPolicy;
