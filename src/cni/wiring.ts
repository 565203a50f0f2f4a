// The plugin's view of the dataplane's workload wiring (src/dataplane/workload.ts). Loaded lazily by
// main.ts: only ADD/DEL/CHECK of the `tabby` plugin touch the kernel.
import { checkWorkload, unwireWorkload, wireWorkload } from '../dataplane/workload.js';
import type { Wiring } from './plugin.js';

export function dataplaneWiring(): Wiring {
  return {
    async wire(req) {
      const w = await wireWorkload(req);
      return { hostIfName: w.hostIfName, hostMac: w.hostMac, containerMac: w.containerMac, containerIfIndex: w.containerIfIndex };
    },
    async unwire(req) {
      await unwireWorkload(req);
    },
    check: (req) => checkWorkload(req),
  };
}
