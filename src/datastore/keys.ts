// Every datastore key tabby writes, in one place: the file store and etcd hold the same layout, and the
// agent, IPAM, the CLI and the status publisher must agree on it (a backup is everything under ROOT_PREFIX).

/** Everything tabby owns in a datastore (etcd may be shared with other software). */
export const ROOT_PREFIX = '/tabby/';
/** Calico v3 resources: `<RESOURCE_PREFIX><plural>/<name>` (namespaced kinds: `<ns>/<name>`). */
export const RESOURCE_PREFIX = `${ROOT_PREFIX}resources/v3/projectcalico.org/`;
export const POOLS_PREFIX = `${RESOURCE_PREFIX}ippools/`;
export const NODES_PREFIX = `${RESOURCE_PREFIX}nodes/`;
export const RESERVATIONS_PREFIX = `${RESOURCE_PREFIX}ipreservations/`;
/** IPAM: blocks, affinities, handles, config and the GC lease. */
export const IPAM_PREFIX = `${ROOT_PREFIX}ipam/v2/`;
export const BLOCKS_PREFIX = `${IPAM_PREFIX}blocks/`;
export const AFFINITIES_PREFIX = `${IPAM_PREFIX}affinities/`;
export const HANDLES_PREFIX = `${IPAM_PREFIX}handles/`;
export const IPAM_CONFIG_KEY = `${IPAM_PREFIX}config`;
export const GC_LEASE_KEY = `${IPAM_PREFIX}gc-lease`;
/** Each agent's published status record (outside the prefixes agents watch: publishing never resyncs). */
export const STATUS_PREFIX = `${ROOT_PREFIX}status/v1/nodes/`;
