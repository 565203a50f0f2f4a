// Node address autodetection (IP / IP6 / IP_AUTODETECTION_METHOD / IP6_AUTODETECTION_METHOD), as
// calico-node does it, so a Calico DaemonSet's settings mean the same thing for tabby-node.
//   method.ts   parse a method string → typed AutodetectionMethod (errors name the variable)
//   match.ts    the pure matcher: (interfaces, method, family, facts) → choice | reason
//   settings.ts IP/IP6 settings, the pure address decision, the conflict check, env reading
//   detect.ts   the shell: netlink interfaces, UDP-connect source address, Kubernetes InternalIP
//   k8s.ts      in-cluster GET of the Node object
//   poll.ts     re-detection every AUTODETECT_POLL_INTERVAL
// Interface-name regexes are UNANCHORED (as Calico): `interface=eth0` also matches `veth0`.
export * from './method.js';
export * from './match.js';
export * from './settings.js';
export * from './detect.js';
export * from './poll.js';
export { internalIpsOfNode, inCluster, fetchInternalIps } from './k8s.js';
