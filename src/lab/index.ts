// The local lab: N tabby nodes as network namespaces on one machine (see lab.ts for the picture).
//   state.ts    lab.json in the state dir (names, pids, pods) — so down/status/exec work from any process
//   netns.ts    namespaces (native addon), processes started inside a namespace, pid+start-time checks
//   topology.ts underlay bridge(s), router, node links — over rtnetlink (src/dataplane), never `ip`
//   pods.ts     pods through the real CNI plugin (wrappers tabby/tabby-ipam, CNI env, netconf on stdin)
//   lab.ts      the Lab class: createLab(opts), nodes, agents, pods, ping, exec, waitForBgp
//   converge.ts waitConverged: the cluster check over every agent's live /status (lab up waits on it)
//   probe.ts    which pod pairs to ping (all, or a spread sample) and mapLimit (several at a time)
//   env.ts      the datastore/state environment of a node's tools (lab exec, lab env)
//   down.ts     destroyLab: stop marked processes, delete <prefix>-* namespaces, remove the state dir
export * from './lab.js';
export { netnsPath, listNetns, spawnIn, runIn, inNetns, processAlive, processStartTime, stopProcess, type RunResult } from './netns.js';
export { SUBNETS, nodeAddress, nodeNetnsName, underlayNetnsName, routerNetnsName, type SubnetName } from './topology.js';
export { repoRoot, labNetConf, CniFailure } from './pods.js';
