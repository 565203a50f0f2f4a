// The plugin's view of the dataplane's workload wiring (src/dataplane/workload.ts). Loaded lazily by
// main.ts: only ADD/DEL/CHECK of the `tabby` plugin touch the kernel.
import { checkWorkload, unwireWorkload, wireWorkload } from '../dataplane/workload.js';
import type { VethReaper } from '../dataplane/workload-reaper.js';
import type { Wiring } from './plugin.js';

/** With `reaper` (the resident agent), DEL retires the veth for a batched deletion; without (the
 *  in-process plugin, a process that ends with the command), it deletes it at once. */
export function dataplaneWiring(reaper?: VethReaper): Wiring {
  return {
    async wire(req) {
      const w = await wireWorkload(req);
      return { hostIfName: w.hostIfName, hostMac: w.hostMac, containerMac: w.containerMac, containerIfIndex: w.containerIfIndex };
    },
    async unwire(req) {
      await unwireWorkload(req, reaper);
    },
    check: (req) => checkWorkload(req),
  };
}
