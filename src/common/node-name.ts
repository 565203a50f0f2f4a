// The node's name when nothing names it (no NODENAME, no nodename file): the hostname, trimmed and
// lower-cased as Calico's names.Hostname does, so a host called "Worker-1" is node "worker-1" in the agent
// and in the CNI plugin alike (an upper-case hostname is not a valid resource name).
import os from 'node:os';

export const hostNodeName = (hostname: string = os.hostname()): string => hostname.trim().toLowerCase();
