// The lab's on-disk state: one JSON file in the lab's state directory naming everything the lab
// created (namespaces, agent pids with their start times, pods), so `tabbyctl lab down|status|exec`
// work from another process than `lab up`. Written atomically (write + rename).
import fs from 'node:fs';
import path from 'node:path';

export const DEFAULT_LAB_PREFIX = 'tabby-lab';
export const DEFAULT_LAB_STATE_DIR = '/var/run/tabby-lab';

export type LabMode = 'routed' | 'ipip' | 'vxlan' | 'crosssubnet';

export interface LabNodeState {
  name: string;
  /** ordinal, unique for the lab's lifetime: names the underlay-side link (`n<ordinal>`) and the address */
  ordinal: number;
  netns: string;
  /** underlay address with prefix, e.g. 172.31.1.11/24 */
  address: string;
  subnet: 'a' | 'b';
  role: 'node' | 'route-reflector';
  /** the node's agent process (undefined when not started) */
  agent?: { pid: number; startTime: string; logFile: string; stateDir: string };
}

export interface LabPodState {
  name: string;
  node: string;
  netns: string;
  containerId: string;
  /** the pod's IPv4 address (no prefix) */
  ip: string;
  /** dual-stack lab: the pod's IPv6 address */
  ip6?: string;
  /** Kubernetes namespace given to the CNI plugin (default "default") */
  namespace?: string;
}

export interface LabState {
  version: 1;
  prefix: string;
  stateDir: string;
  mode: LabMode;
  /** why this encapsulation (printed by lab up / status) */
  modeReason: string;
  poolCidr: string;
  /** dual stack (lab up --ipv6): the IPv6 pool; nodes and pods get an IPv6 address too */
  pool6Cidr?: string;
  meshEnabled: boolean;
  crossSubnet: boolean;
  underlayNetns: string;
  routerNetns: string;
  datastoreDir: string;
  nextOrdinal: number;
  nodes: LabNodeState[];
  pods: LabPodState[];
  createdAt: string;
}

export const STATE_FILE = 'lab.json';

export function readLabState(stateDir: string): LabState | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(stateDir, STATE_FILE), 'utf8')) as LabState;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export function writeLabState(state: LabState): void {
  fs.mkdirSync(state.stateDir, { recursive: true });
  const file = path.join(state.stateDir, STATE_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  fs.renameSync(tmp, file);
}
