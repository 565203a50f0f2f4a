// Labels of a lab pod: no Kubernetes API in the lab, so `lab add-pod --labels` sets them on the pod's
// WorkloadEndpoint right after CNI ADD, as `tabbyctl label workloadendpoint` would.
import { openDatastore } from '../datastore/index.js';
import { ResourceStore } from '../datastore/resources.js';
import { labelResource } from '../datastore/labels.js';
import { endpointName } from '../cni/endpoint.js';

export async function labelLabPod(
  datastoreDir: string,
  node: string,
  pod: string,
  namespace: string | undefined,
  labels: Record<string, string>,
): Promise<void> {
  const n = endpointName({ node, namespace: namespace ?? 'default', pod, containerId: '', endpoint: 'eth0' });
  const ds = await openDatastore({ type: 'file', dir: datastoreDir });
  try {
    await labelResource(new ResourceStore(ds), 'WorkloadEndpoint', `${n.namespace}/${n.name}`, { set: labels, overwrite: true });
  } finally {
    await ds.close();
  }
}
