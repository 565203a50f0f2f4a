// The thin shell around the pure matcher: reads the real kernel's interfaces over netlink (the
// dataplane's listInterfaces, optionally in another network namespace), asks the kernel for the
// source address toward a can-reach destination (UDP connect + getsockname — no packet is sent;
// inside the given netns through the native addon), fetches Kubernetes InternalIPs, then decides
// the Node's addresses (settings.ts) and checks them against the other Nodes.
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { tryParseIp, type Family } from '../common/ip.js';
import { log } from '../common/log.js';
import { native } from '../native/index.js';
import { openNetlink, listInterfaces } from '../dataplane/index.js';
import { fetchInternalIps, inCluster } from './k8s.js';
import { matchAddress, type InterfaceAddresses, type MatchFacts, type MatchResult } from './match.js';
import { formatMethod, type AutodetectionMethod } from './method.js';
import {
  AddressConflictError,
  decideAddress,
  findAddressConflict,
  needsDetection,
  type AddressDecision,
  type AutodetectConfig,
  type NodeAddressesLike,
} from './settings.js';

const logger = log('autodetect');

export type InterfaceReader = (netnsPath?: string) => Promise<InterfaceAddresses[]>;

/** Interfaces and addresses of a network namespace (default: this process's), over rtnetlink. */
export const readKernelInterfaces: InterfaceReader = async (netnsPath) => {
  const nl = await openNetlink(netnsPath ? { netnsPath } : {});
  try {
    return await listInterfaces(nl);
  } finally {
    nl.close();
  }
};

/**
 * The local address the kernel would use to reach `destination` (IP or hostname): connect a UDP
 * socket (no packet is sent) and read its local address. undefined when there is no route.
 */
export async function reachSource(destination: string, family: Family, netnsPath?: string): Promise<string | undefined> {
  let ip = destination;
  if (!tryParseIp(destination)) {
    try {
      ip = (await lookup(destination, { family })).address;
    } catch (err) {
      logger.warn({ destination, err: (err as Error).message }, 'can-reach: cannot resolve destination');
      return undefined;
    }
  }
  try {
    if (netnsPath) {
      const n = native();
      return n.withNetns(netnsPath, () => n.udpSourceFor(ip, 80));
    }
    return await new Promise<string>((resolve, reject) => {
      const s = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
      s.once('error', (err) => {
        s.close();
        reject(err);
      });
      s.connect(80, ip, () => {
        const local = s.address().address;
        s.close();
        resolve(local);
      });
    });
  } catch (err) {
    logger.warn({ destination: ip, err: (err as Error).message }, 'can-reach: no route toward destination');
    return undefined;
  }
}

export interface DetectOptions {
  /** Detect inside this network namespace (path, e.g. /var/run/netns/x) instead of the process's own. */
  netnsPath?: string;
  /** kubernetes-internal-ip: the Node name to look up in the API (in-cluster). */
  nodeName?: string;
  /** kubernetes-internal-ip outside a cluster: the InternalIP(s) to use. */
  internalIps?: readonly string[];
  /** Service-account directory (token, ca.crt) for the in-cluster API; default the standard mount. */
  serviceAccountDir?: string;
  /** Injected interface source (tests); default: the kernel over netlink. */
  readInterfaces?: InterfaceReader;
  env?: Record<string, string | undefined>;
}

/** Gather the facts a method needs from the outside world. */
async function factsFor(method: AutodetectionMethod, family: Family, opts: DetectOptions): Promise<MatchFacts> {
  if (method.kind === 'can-reach') {
    const src = await reachSource(method.destination, family, opts.netnsPath);
    return src === undefined ? {} : { reachSource: src };
  }
  if (method.kind === 'kubernetes-internal-ip') {
    const env = opts.env ?? process.env;
    if (opts.nodeName && inCluster(env)) {
      try {
        return { internalIps: await fetchInternalIps(opts.nodeName, env, opts.serviceAccountDir) };
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'kubernetes-internal-ip: cannot read the Node from the API server');
      }
    }
    if (opts.internalIps) return { internalIps: opts.internalIps };
    return {};
  }
  return {};
}

/** Run one method against the real kernel (or the injected reader). */
export async function detectAddress(method: AutodetectionMethod, family: Family, opts: DetectOptions = {}): Promise<MatchResult> {
  const read = opts.readInterfaces ?? readKernelInterfaces;
  const [interfaces, facts] = await Promise.all([read(opts.netnsPath), factsFor(method, family, opts)]);
  const result = matchAddress(interfaces, method, family, facts);
  if (result.ok) logger.debug({ method: formatMethod(method), ...result.choice }, 'autodetected address');
  return result;
}

export interface NodeAddresses {
  ipv4?: AddressDecision;
  ipv6?: AddressDecision;
}

/**
 * The Node's addresses from the settings: detect where needed, keep stored ones as Calico does,
 * and refuse (AddressConflictError) when another Node holds the same address. Throws
 * NoAddressError when an address is required and none can be found.
 */
export async function resolveNodeAddresses(
  cfg: Pick<AutodetectConfig, 'ip4' | 'ip6' | 'method4' | 'method6' | 'internalIps'>,
  opts: DetectOptions & {
    nodeName: string;
    stored?: { ipv4?: string | undefined; ipv6?: string | undefined };
    otherNodes?: readonly NodeAddressesLike[];
  },
): Promise<Required<NodeAddresses>> {
  const read = opts.readInterfaces ?? readKernelInterfaces;
  const interfaces = await read(opts.netnsPath);
  const detectOpts: DetectOptions = {
    ...opts,
    readInterfaces: async () => interfaces,
    ...(cfg.internalIps && !opts.internalIps ? { internalIps: cfg.internalIps } : {}),
  };
  const one = async (family: Family): Promise<AddressDecision> => {
    const setting = family === 4 ? cfg.ip4 : cfg.ip6;
    const method = family === 4 ? cfg.method4 : cfg.method6;
    const stored = family === 4 ? opts.stored?.ipv4 : opts.stored?.ipv6;
    const detected = needsDetection(setting, family, stored) ? await detectAddress(method, family, detectOpts) : undefined;
    const d = decideAddress({ family, setting, method, stored, interfaces, detected });
    for (const w of d.warnings) logger.warn({ family }, w);
    return d;
  };
  const [ipv4, ipv6] = [await one(4), await one(6)];
  const conflict = findAddressConflict(opts.nodeName, { ipv4: ipv4.choice?.address, ipv6: ipv6.choice?.address }, opts.otherNodes ?? []);
  if (conflict) throw new AddressConflictError(conflict, opts.nodeName);
  return { ipv4, ipv6 };
}
