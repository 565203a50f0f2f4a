// Table rows of the network-policy kinds for `tabbyctl get` (calicoctl's columns, plus order/types).
import type { Resource, ResourceKind } from '../../datastore/resources.js';

type Of<K extends ResourceKind> = Extract<Resource, { kind: K }>;

export function policyRows(kind: ResourceKind, items: Resource[], wide: boolean): { headers: string[]; rows: string[][] } {
  switch (kind) {
    case 'WorkloadEndpoint': {
      const weps = items as Of<'WorkloadEndpoint'>[];
      const base = (w: Of<'WorkloadEndpoint'>) => [
        w.metadata.namespace ?? '',
        w.spec.workload ?? w.spec.pod ?? '',
        w.spec.node,
        w.spec.ipNetworks.join(','),
        w.spec.interfaceName,
      ];
      return wide
        ? {
            headers: ['NAMESPACE', 'WORKLOAD', 'NODE', 'NETWORKS', 'INTERFACE', 'PROFILES', 'LABELS', 'NAME'],
            rows: weps.map((w) => [
              ...base(w),
              w.spec.profiles.join(','),
              Object.entries(w.metadata.labels ?? {})
                .map(([k, v]) => `${k}=${v}`)
                .join(','),
              w.metadata.name,
            ]),
          }
        : { headers: ['NAMESPACE', 'WORKLOAD', 'NODE', 'NETWORKS', 'INTERFACE'], rows: weps.map(base) };
    }
    case 'NetworkPolicy':
    case 'GlobalNetworkPolicy': {
      const pols = items as (Of<'NetworkPolicy'> | Of<'GlobalNetworkPolicy'>)[];
      const ns = kind === 'NetworkPolicy';
      const row = (p: (typeof pols)[number]) => [
        ...(ns ? [p.metadata.namespace ?? ''] : []),
        p.metadata.name,
        p.spec.order === undefined ? '' : String(p.spec.order),
        p.spec.types.join(','),
        p.spec.selector,
      ];
      const headers = [...(ns ? ['NAMESPACE'] : []), 'NAME', 'ORDER', 'TYPES', 'SELECTOR'];
      return wide
        ? {
            headers: [...headers, 'INGRESS', 'EGRESS'],
            rows: pols.map((p) => [...row(p), String(p.spec.ingress?.length ?? 0), String(p.spec.egress?.length ?? 0)]),
          }
        : { headers, rows: pols.map(row) };
    }
    case 'Profile': {
      const pros = items as Of<'Profile'>[];
      return {
        headers: ['NAME', 'INGRESS', 'EGRESS', ...(wide ? ['LABELSTOAPPLY'] : [])],
        rows: pros.map((p) => [
          p.metadata.name,
          String(p.spec.ingress?.length ?? 0),
          String(p.spec.egress?.length ?? 0),
          ...(wide
            ? [
                Object.entries(p.spec.labelsToApply ?? {})
                  .map(([k, v]) => `${k}=${v}`)
                  .join(','),
              ]
            : []),
        ]),
      };
    }
    default:
      return { headers: ['NAME'], rows: items.map((r) => [r.metadata.name]) };
  }
}
