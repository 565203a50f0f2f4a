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
    async unroute(req) {
      const dsts = req.ips.map((a) => a.split('/')[0]!).map((a) => `${a}/${a.includes(':') ? 128 : 32}`);
      await reaper?.unroute(req.hostIfName, dsts);
    },
    check: (req) => checkWorkload(req),
  };
}
