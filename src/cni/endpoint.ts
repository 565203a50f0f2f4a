// The pod's WorkloadEndpoint, written by CNI ADD and removed by CNI DEL (Calico's CNI plugin does the
// same): name `<node>-k8s-<pod>-<interface>`, namespace = the pod's, node, orchestrator k8s, pod,
// interfaceName (the host-side cali veth), ipNetworks, profiles [kns.<namespace>], labels. The
// namespace's profile kns.<ns> is created when missing (default allow both ways, Kubernetes' default),
// as Calico's controllers do for every namespace. Labels: kept from an endpoint already there (a retried
// ADD, or labels set by `tabbyctl label`/the agent's Kubernetes watch) — the CNI never clears them.
// A fresh pod's endpoint is written in the IPAM commit that assigns its addresses, and DEL deletes it in
// the commit that releases them (endpointWriter / endpointDeleter as ipam's `also`): one synced write
// each, and a crash leaves an address with its endpoint or neither. Both CNI paths (the exec'd plugin and
// tabby-node's socket server) run the same plugin code.
import { DatastoreConflict, type Datastore, type KVPair, type TxnOp } from '../datastore/types.js';
import {
  ResourceStore,
  resourceKey,
  ResourceExists,
  ResourceNotFound,
  storeName,
  workloadEndpointName,
  namespaceProfileName,
  ORCHESTRATOR_LABEL,
  NAMESPACE_LABEL,
  type WorkloadEndpoint,
  type Profile,
} from '../datastore/resources.js';

export interface EndpointIdentity {
  node: string;
  /** Kubernetes namespace/pod from CNI_ARGS; absent → orchestrator "cni", workload = container id */
  namespace?: string;
  pod?: string;
  containerId: string;
  /** the pod-side interface (CNI_IFNAME) */
  endpoint: string;
}

export function endpointName(id: EndpointIdentity): { name: string; namespace: string; orchestrator: string; workload: string } {
  const k8s = Boolean(id.namespace && id.pod);
  const orchestrator = k8s ? 'k8s' : 'cni';
  const workload = k8s ? id.pod! : id.containerId;
  return {
    name: workloadEndpointName(id.node, orchestrator, workload, id.endpoint),
    namespace: id.namespace || 'default',
    orchestrator,
    workload,
  };
}

/** The WorkloadEndpoint for a wired pod (pure). */
export function desiredEndpoint(
  id: EndpointIdentity,
  hostIfName: string,
  addrs: readonly string[],
  labels: Record<string, string> = {},
): WorkloadEndpoint {
  const n = endpointName(id);
  return {
    apiVersion: 'projectcalico.org/v3',
    kind: 'WorkloadEndpoint',
    metadata: {
      name: n.name,
      namespace: n.namespace,
      labels: { ...labels, [NAMESPACE_LABEL]: n.namespace, [ORCHESTRATOR_LABEL]: n.orchestrator },
    },
    spec: {
      orchestrator: n.orchestrator,
      workload: n.workload,
      node: id.node,
      containerID: id.containerId,
      ...(id.pod ? { pod: id.pod } : {}),
      endpoint: id.endpoint,
      interfaceName: hostIfName,
      ipNetworks: addrs.map((a) => (a.includes('/') ? a : `${a}/${a.includes(':') ? 128 : 32}`)),
      profiles: [namespaceProfileName(n.namespace)],
    },
  };
}

function defaultNamespaceProfile(ns: string): Profile {
  return {
    apiVersion: 'projectcalico.org/v3',
    kind: 'Profile',
    metadata: { name: namespaceProfileName(ns) },
    spec: { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }], labelsToApply: { 'pcns.projectcalico.org/name': ns } },
  };
}

/** The pod's namespace profile kns.<ns>, created when missing (a read when it exists: once per namespace). */
export async function ensureNamespaceProfile(ds: Datastore, id: EndpointIdentity): Promise<void> {
  const rs = new ResourceStore(ds);
  const ns = endpointName(id).namespace;
  if (await rs.get('Profile', namespaceProfileName(ns))) return;
  try {
    await rs.create(defaultNamespaceProfile(ns));
  } catch (e) {
    if (!(e instanceof ResourceExists)) throw e;
  }
}

/** The endpoint as it should be now, keeping labels of `cur` (the one stored) and its revision, for the CAS. */
function endpointToWrite(want: WorkloadEndpoint, cur: WorkloadEndpoint | undefined): WorkloadEndpoint {
  const labels = { ...(cur?.metadata.labels ?? {}), ...want.metadata.labels };
  return {
    ...want,
    metadata: { ...want.metadata, labels, ...(cur ? { resourceVersion: cur.metadata.resourceVersion } : {}) },
  };
}

/** ADD's endpoint write as commit operations, for the IPAM commit that assigns the pod's addresses
 *  (ipam.autoAssign's `also`): one synced write for address, handle and endpoint; a crash keeps all of them
 *  or none. The stored endpoint is read at once (alongside IPAM's reads); a later call (the commit's
 *  retry) reads it again — a change in between fails the commit's compare-and-swap, never lost. */
export function endpointWriter(ds: Datastore, id: EndpointIdentity, hostIfName: string): (addrs: string[]) => Promise<TxnOp[]> {
  const rs = new ResourceStore(ds);
  const name = storeName(desiredEndpoint(id, hostIfName, []));
  let early: Promise<WorkloadEndpoint | undefined> | undefined = rs.get('WorkloadEndpoint', name);
  early.catch(() => undefined); // reported when used; unused when the assignment fails first
  return async (addrs) => {
    const cur = await (early ?? rs.get('WorkloadEndpoint', name));
    early = undefined;
    return [await rs.putOp(endpointToWrite(desiredEndpoint(id, hostIfName, addrs), cur), { current: cur })];
  };
}

/** DEL's endpoint delete as commit operations, for the commit that releases the pod's addresses
 *  (ipam.releaseByHandle's `also`): none when it is gone or belongs to another container — another sandbox
 *  of the same pod (its endpoint has the same name) that wrote it later, whose endpoint a late DEL of this
 *  one must not remove (Calico's CNI checks the same). `otherContainer`: that container's id, from the read made at once
 *  (a later call of `ops`, the commit's retry, reads again). */
export function endpointDeleter(
  ds: Datastore,
  id: EndpointIdentity,
): { otherContainer: Promise<string | undefined>; ops: () => Promise<TxnOp[]> } {
  const n = endpointName(id);
  const key = resourceKey('WorkloadEndpoint', `${n.namespace}/${n.name}`);
  const ownerOf = (kv: KVPair<WorkloadEndpoint> | undefined) => kv?.value.spec.containerID;
  let early: Promise<KVPair<WorkloadEndpoint> | undefined> | undefined = ds.get<WorkloadEndpoint>(key);
  early.catch(() => undefined);
  const otherContainer = early.then(
    (kv) => {
      const owner = ownerOf(kv);
      return owner !== undefined && owner !== id.containerId ? owner : undefined;
    },
    () => undefined,
  );
  const ops = async (): Promise<TxnOp[]> => {
    const cur = await (early ?? ds.get<WorkloadEndpoint>(key));
    early = undefined;
    const owner = ownerOf(cur);
    return cur && (owner === undefined || owner === id.containerId) ? [{ op: 'delete', key, expectedRevision: cur.revision }] : [];
  };
  return { otherContainer, ops };
}

/** ADD: create or update the endpoint (keeping labels someone else set), and the namespace profile. */
export async function writeWorkloadEndpoint(
  ds: Datastore,
  id: EndpointIdentity,
  hostIfName: string,
  addrs: readonly string[],
): Promise<WorkloadEndpoint> {
  const rs = new ResourceStore(ds);
  const want = desiredEndpoint(id, hostIfName, addrs);
  await ensureNamespaceProfile(ds, id);
  for (let attempt = 0; ; attempt++) {
    const cur = await rs.get('WorkloadEndpoint', storeName(want));
    const res = endpointToWrite(want, cur);
    try {
      return cur ? await rs.update(res) : await rs.create(res);
    } catch (e) {
      if (attempt < 3 && (e instanceof ResourceExists || e instanceof ResourceNotFound || e instanceof DatastoreConflict)) continue;
      throw e;
    }
  }
}

/** ADD's one call: write the endpoint; if that fails, `undo` (unwire, release) runs and the error
 *  fails the ADD — a pod the policy engine cannot see must not come up. */
export async function addWorkloadEndpoint(
  ds: Datastore,
  id: EndpointIdentity,
  hostIfName: string,
  addrs: readonly string[],
  undo: () => Promise<void>,
): Promise<void> {
  try {
    await writeWorkloadEndpoint(ds, id, hostIfName, addrs);
  } catch (e) {
    await undo().catch(() => undefined);
    throw e;
  }
}
