// deploy/ checked against the code it deploys: every manifest parses; the kustomizations render (own
// renderer, cross-checked with `kubectl kustomize` when installed) into objects that pass the Kubernetes
// OpenAPI schemas (kubernetes-models) and carry no field the API does not have; every variable a container sets is one its program reads
// (AGENT_ENV / INSTALL_ENV) and the program accepts the values; probes hit the status server's real paths
// and address; the installer's conflist passes the CNI plugin's parser; the datastore resources pass
// tabby's validation; one image name everywhere; the Containerfile and the systemd unit are consistent.
// "It bites" tests feed the same checks a broken copy and expect the problem to be named.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { AGENT_ENV, parseAgentConfig, HEALTH_PATHS, type AgentEnvVar } from '../../../src/agent/config.js';
import { INSTALL_ENV, parseInstallConfig, buildConflist, installCni, PLUGIN_NAMES, CLIENT_PATH } from '../../../src/cni/install.js';
import { parseAutodetectionMethod } from '../../../src/autodetect/method.js';
import { parseSelector } from '../../../src/datastore/selector.js';
import { validateResource } from '../../../src/datastore/resources.js';
import { datastoreConfigFromNetconf } from '../../../src/datastore/config.js';
import { parseNetConf } from '../../../src/cni/netconf.js';
import {
  renderKustomization,
  configMapHash,
  readYamlDocs,
  sortObjects,
  podSpecOf,
  containersOf,
  splitImage,
  parseEnvFile,
  type K8sObject,
} from './fixtures/kustomize.js';
import { unknownFields } from './fixtures/unknown-fields.js';
import {
  checkEnv,
  checkProbes,
  checkImages,
  checkVolumeMounts,
  containers,
  hostPaths,
  type Contracts,
  type HealthContract,
} from './fixtures/manifest-check.js';
import { runTag } from '../../helpers/run-tag.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const DEPLOY = path.join(ROOT, 'deploy');
const K8S = path.join(DEPLOY, 'kubernetes');
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
const IMAGE = `tabby/tabby:${PKG.version}`;

const CONTRACTS: Contracts = { programs: { 'tabby-node': AGENT_ENV, 'tabby-install-cni': INSTALL_ENV } };
const HEALTH: HealthContract = {
  livenessPath: HEALTH_PATHS.liveness,
  readinessPath: HEALTH_PATHS.readiness,
  healthAddr: (env) => parseAgentConfig(env).healthAddr,
  metricsAddr: (env) => parseAgentConfig(env).metricsAddr,
};

const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
const clone = <T>(x: T): T => structuredClone(x);

const base = renderKustomization(K8S);
const withRr = renderKustomization(path.join(K8S, 'route-reflectors'));

function find(objs: K8sObject[], kind: string, name: string): K8sObject {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`${kind}/${name} not rendered`);
  return o;
}

t.test('every YAML file under deploy/ parses without errors or warnings', async (t) => {
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const f of fs.readdirSync(d)) {
      const p = path.join(d, f);
      if (fs.statSync(p).isDirectory()) walk(p);
      else if (/\.ya?ml$/.test(f)) files.push(p);
    }
  };
  walk(DEPLOY);
  t.ok(files.length >= 10, `found ${files.length} YAML files`);
  for (const f of files) {
    t.doesNotThrow(() => readYamlDocs(f), path.relative(ROOT, f));
    // 0400 is octal to kubectl (YAML 1.1) and decimal to YAML 1.2 parsers: never write a number that way.
    const ambiguous = fs
      .readFileSync(f, 'utf8')
      .split('\n')
      .filter((l) => /^[^#]*:\s+0\d+\s*(#.*)?$/.test(l));
    t.same(ambiguous, [], `${path.relative(ROOT, f)}: no leading-zero numbers`);
  }
});

t.test('the kustomizations render: namespace, generated ConfigMap, images', async (t) => {
  const kinds = base.map((o) => `${o.kind}/${o.metadata.name.replace(/-[a-z0-9]{10}$/, '')}`).sort();
  t.same(kinds, [
    'ClusterRole/tabby-node',
    'ClusterRoleBinding/tabby-node',
    'ConfigMap/tabby-config',
    'DaemonSet/tabby-node',
    'Namespace/tabby-system',
    'ServiceAccount/tabby-node',
    'ServiceAccount/tabby-route-reflector',
  ]);
  t.same(
    withRr.map((o) => o.kind).sort(),
    [...base.map((o) => o.kind), 'Deployment'].sort(),
    'the overlay adds the route-reflector Deployment',
  );
  for (const o of withRr) {
    if (['Namespace', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind))
      t.equal(o.metadata.namespace, undefined, `${o.kind} is cluster-scoped`);
    else t.equal(o.metadata.namespace, 'tabby-system', `${o.kind}/${o.metadata.name} in tabby-system`);
  }
  const cm = withRr.find((o) => o.kind === 'ConfigMap')!;
  t.match(cm.metadata.name, /^tabby-config-[a-z0-9]{10}$/, 'content-hash suffix');
  const refs = containers(withRr).refs;
  t.ok(refs.length >= 3);
  for (const r of refs) {
    const envFrom = (r.spec.envFrom as { configMapRef: { name: string } }[])[0]!;
    t.equal(envFrom.configMapRef.name, cm.metadata.name, `${r.workload}/${r.container} refers to the generated name`);
  }
});

t.test('the own renderer agrees with kubectl kustomize', { skip: kubectl ? false : 'kubectl is not installed' }, async (t) => {
  for (const dir of [K8S, path.join(K8S, 'route-reflectors')]) {
    const out = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
    const theirs = sortObjects(
      out
        .split(/^---$/m)
        .map((d) => readYamlDocsFromString(d))
        .filter((x): x is K8sObject => x !== undefined),
    );
    // Names compared without the ConfigMap hash suffix: this machine's kubectl (a vendor build) derives a
    // different suffix than upstream kustomize; the suffix itself is checked against kustomize's own example.
    const norm = (objs: K8sObject[]): unknown =>
      JSON.parse(JSON.stringify(sortObjects(objs)).replace(/(tabby-config)-[a-z0-9]{10}\b/g, '$1-HASH'));
    t.same(norm(renderKustomization(dir)), norm(theirs), path.relative(ROOT, dir));
  }
});

t.test("ConfigMap name suffix: kustomize's hash (its documented example)", async (t) => {
  // kustomize docs: configMapGenerator name example-configmap-2, literals FOO=Bar → example-configmap-2-g2hdhfc6tk
  t.equal(configMapHash('example-configmap-2', { FOO: 'Bar' }), 'g2hdhfc6tk');
});

function readYamlDocsFromString(s: string): K8sObject | undefined {
  const tmp = path.join(os.tmpdir(), `tb-deploy-${process.pid}.yaml`);
  fs.writeFileSync(tmp, s);
  try {
    return readYamlDocs(tmp)[0] as K8sObject | undefined;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

t.test('rendered objects pass the Kubernetes OpenAPI schemas (kubernetes-models)', async (t) => {
  const models: Record<string, string> = {
    'v1/Namespace': 'kubernetes-models/v1/Namespace',
    'v1/ServiceAccount': 'kubernetes-models/v1/ServiceAccount',
    'v1/ConfigMap': 'kubernetes-models/v1/ConfigMap',
    'rbac.authorization.k8s.io/v1/ClusterRole': 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole',
    'rbac.authorization.k8s.io/v1/ClusterRoleBinding': 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding',
    'apps/v1/DaemonSet': 'kubernetes-models/apps/v1/DaemonSet',
    'apps/v1/Deployment': 'kubernetes-models/apps/v1/Deployment',
  };
  const validate = async (o: K8sObject): Promise<void> => {
    const mod = models[`${o.apiVersion}/${o.kind}`];
    if (!mod) throw new Error(`no schema wired for ${o.apiVersion} ${o.kind}: add it to the test`);
    const m = (await import(mod)) as Record<string, new (d: unknown) => { validate(): void }>;
    new m[o.kind]!(clone(o)).validate();
  };
  for (const o of withRr) await t.resolves(validate(o), `${o.kind}/${o.metadata.name}`);
  // It bites: a wrong type and a wrong enum are refused.
  const ds = clone(find(base, 'DaemonSet', 'tabby-node'));
  (containersOf(podSpecOf(ds)!)[1]!.ports as { containerPort: unknown }[])[0]!.containerPort = 'ninety';
  await t.rejects(validate(ds), /containerPort must be integer/);
  const ds2 = clone(find(base, 'DaemonSet', 'tabby-node'));
  containersOf(podSpecOf(ds2)!)[1]!.imagePullPolicy = 'Sometimes';
  await t.rejects(validate(ds2), /allowed values/);
});

t.test('no field the Kubernetes API does not have (it would be dropped silently)', async (t) => {
  for (const o of withRr) t.same(unknownFields(o), [], `${o.kind}/${o.metadata.name}`);
  // It bites: misspelt fields at several depths.
  const ds = clone(find(base, 'DaemonSet', 'tabby-node'));
  const pod = podSpecOf(ds)!;
  const node = containersOf(pod)[1]!;
  node.readinesProbe = node.readinessProbe;
  pod.hostNetwrok = true;
  (
    (node.env as { valueFrom?: Record<string, unknown> }[]).find((e) => e.valueFrom)!.valueFrom!.fieldRef as Record<string, unknown>
  ).fieldpath = 'spec.nodeName';
  (ds.metadata as Record<string, unknown>).label = {};
  t.same(unknownFields(ds).sort(), [
    'DaemonSet/tabby-node: metadata.label is not a field of V1ObjectMeta',
    'DaemonSet/tabby-node: spec.template.spec.containers[0].env[0].valueFrom.fieldRef.fieldpath is not a field of CoreV1ObjectFieldSelector',
    'DaemonSet/tabby-node: spec.template.spec.containers[0].readinesProbe is not a field of CoreV1Container',
    'DaemonSet/tabby-node: spec.template.spec.hostNetwrok is not a field of CoreV1PodSpec',
  ]);
});

t.test('every variable a container sets is one its program reads; values are accepted', async (t) => {
  t.same(checkEnv(withRr, CONTRACTS), [], 'no unknown variable, no missing required one, no command override');
  const { refs, problems } = containers(withRr);
  t.same(problems, []);
  for (const r of refs) {
    if (r.program === 'tabby-node')
      t.doesNotThrow(() => parseAgentConfig(r.env), `${r.workload}/${r.container}: parseAgentConfig accepts it`);
    if (r.program === 'tabby-install-cni')
      t.doesNotThrow(() => parseInstallConfig(r.env), `${r.workload}/${r.container}: parseInstallConfig accepts it`);
  }
  // The datastore ConfigMap is read by both programs: its keys must be in both contracts.
  const cmKeys = Object.keys(withRr.find((o) => o.kind === 'ConfigMap')!.data as object);
  for (const k of cmKeys) {
    t.ok(AGENT_ENV.some((e) => e.name === k) && INSTALL_ENV.some((e) => e.name === k), `${k} is read by tabby-node and tabby-install-cni`);
  }
});

t.test('it bites: a DaemonSet variable renamed to one tabby-node does not read is reported', async (t) => {
  const objs = clone(base);
  const node = containersOf(podSpecOf(find(objs, 'DaemonSet', 'tabby-node'))!).find((c) => c.name === 'tabby-node')!;
  const ev = (node.env as { name: string }[]).find((e) => e.name === 'IP_AUTODETECTION_METHOD')!;
  ev.name = 'IP_AUTODETECT_METHOD';
  const problems = checkEnv(objs, CONTRACTS);
  t.equal(problems.length, 1, problems.join('\n'));
  t.match(
    problems[0],
    /DaemonSet\/tabby-node container tabby-node: sets IP_AUTODETECT_METHOD \(from env\), which tabby-node does not read/,
  );

  // A typo in the ConfigMap (read through envFrom) is caught too, for both containers that read it.
  const objs2 = clone(base);
  const cm = objs2.find((o) => o.kind === 'ConfigMap')!;
  (cm.data as Record<string, string>).ETCD_ENDPOINT = 'http://10.0.0.10:2379';
  const p2 = checkEnv(objs2, CONTRACTS);
  t.equal(p2.length, 2, p2.join('\n'));
  t.ok(p2.every((p) => /sets ETCD_ENDPOINT \(from ConfigMap tabby-config-\w+\)/.test(p)));

  // A required variable left out: with NODENAME required, deleting it from the DaemonSet is reported.
  const strict: Contracts = {
    programs: {
      ...CONTRACTS.programs,
      'tabby-node': AGENT_ENV.map((e): AgentEnvVar => (e.name === 'NODENAME' ? { ...e, required: true } : e)),
    },
  };
  t.same(checkEnv(base, strict), [], 'NODENAME is set in the real manifests');
  const objs3 = clone(base);
  const n3 = containersOf(podSpecOf(find(objs3, 'DaemonSet', 'tabby-node'))!).find((c) => c.name === 'tabby-node')!;
  n3.env = (n3.env as { name: string }[]).filter((e) => e.name !== 'NODENAME');
  t.match(checkEnv(objs3, strict).join('\n'), /does not set NODENAME, which tabby-node requires/);

  // command instead of args would replace tini.
  const objs4 = clone(base);
  containersOf(podSpecOf(find(objs4, 'DaemonSet', 'tabby-node'))!)[1]!.command = ['tabby-node'];
  t.match(checkEnv(objs4, CONTRACTS).join('\n'), /sets command, which replaces the image's entrypoint/);
});

t.test("probes call the status server's real paths on the address it listens on", async (t) => {
  t.same(checkProbes(withRr, 'tabby-node', HEALTH), []);
  const probed = containers(withRr).refs.filter((r) => r.program === 'tabby-node');
  t.equal(probed.length, 2, 'tabby-node and the route reflector are both probed');
  // It bites: a wrong path, a wrong port, a health address the probe does not follow.
  const objs = clone(base);
  const c = containersOf(podSpecOf(find(objs, 'DaemonSet', 'tabby-node'))!).find((x) => x.name === 'tabby-node')!;
  (c.livenessProbe as { httpGet: { path: string } }).httpGet.path = '/healthz';
  (c.readinessProbe as { httpGet: { port: number } }).httpGet.port = 9098;
  (c.env as { name: string; value?: string }[]).find((e) => e.name === 'TABBY_METRICS_ADDR')!.value = ':9092';
  const p = checkProbes(objs, 'tabby-node', HEALTH).join('\n');
  t.match(p, /livenessProbe path \/healthz is not the agent's \/liveness/);
  t.match(p, /readinessProbe port 9098 but the agent listens on 9099/);
  t.match(p, /port "metrics" 9091 but the agent serves \/metrics on 9092/);
  t.match(p, /prometheus.io\/port 9091/);
});

t.test('one image everywhere, the one the Containerfile builds, tagged with the package version', async (t) => {
  t.same(checkImages(withRr, IMAGE), []);
  const build = /-t (\S+) \./.exec(fs.readFileSync(path.join(DEPLOY, 'container/Containerfile'), 'utf8'));
  t.equal(build?.[1], IMAGE, 'Containerfile build command tags the same image');
  const [k] = readYamlDocs(path.join(K8S, 'base/kustomization.yaml')) as [{ images: { name: string; newTag: string }[] }];
  t.equal(k.images[0]!.newTag, PKG.version);
  t.equal(splitImage(IMAGE).name, k.images[0]!.name);
  const objs = clone(withRr);
  containersOf(podSpecOf(find(objs, 'Deployment', 'tabby-route-reflector'))!)[0]!.image = 'tabby/tabby:0.0.9';
  t.match(checkImages(objs, IMAGE).join('\n'), /Deployment\/tabby-route-reflector container route-reflector: image tabby\/tabby:0.0.9/);
});

t.test('tabby-node DaemonSet: host network, privileged, all taints, host paths, NODENAME, autodetection examples', async (t) => {
  const ds = find(base, 'DaemonSet', 'tabby-node');
  const pod = podSpecOf(ds)!;
  t.equal(pod.hostNetwork, true);
  t.same(pod.tolerations, [{ operator: 'Exists' }], 'tolerates every taint');
  t.equal(pod.priorityClassName, 'system-node-critical');
  const paths = hostPaths(pod);
  for (const p of ['/lib/modules', '/var/run', '/var/lib/tabby', '/etc/cni/net.d', '/opt/cni/bin']) t.ok(paths.has(p), `hostPath ${p}`);
  t.same(checkVolumeMounts(base), []);
  const [init, node] = containersOf(pod) as [Record<string, unknown>, Record<string, unknown>];
  t.equal(init.name, 'install-cni');
  t.same(init.args, ['tabby-install-cni']);
  for (const c of [init, node]) t.equal((c.securityContext as { privileged: boolean }).privileged, true, `${String(c.name)} privileged`);
  const refs = containers(base).refs;
  for (const r of refs)
    t.same(
      (r.spec.env as { name: string; valueFrom?: unknown }[]).find((e) => e.name === 'NODENAME')?.valueFrom,
      { fieldRef: { fieldPath: 'spec.nodeName' } },
      `${r.container}: NODENAME from spec.nodeName`,
    );
  const nodeRef = refs.find((r) => r.container === 'tabby-node')!;
  t.equal(nodeRef.env.IP_AUTODETECTION_METHOD, 'first-found');
  for (const v of ['CALICO_IPV4POOL_CIDR', 'CALICO_IPV4POOL_BLOCK_SIZE', 'CALICO_IPV4POOL_NAT_OUTGOING']) t.ok(nodeRef.env[v], `${v} set`);
  const cfg = parseAgentConfig(nodeRef.env);
  // Encapsulation left to the kernel (IPIP where it has ipip, else VXLAN): neither mode set.
  for (const v of ['CALICO_IPV4POOL_IPIP', 'CALICO_IPV4POOL_VXLAN']) t.equal(nodeRef.env[v], undefined, `${v} unset`);
  t.equal(cfg.ipv4Pool.encapByKernel, true, 'default pool encapsulation fits the kernel');
  t.equal(cfg.nodeName, 'node-1');
  t.equal(cfg.stateDir, '/var/run/tabby', 'state dir (nodename file for the CNI plugin) lies under the /var/run host path');
  t.equal(cfg.datastore.type, 'etcdv3');

  // The commented examples: one of every method, each accepted by the autodetection parser.
  const text = fs.readFileSync(path.join(K8S, 'base/tabby-node.yaml'), 'utf8');
  const block = text.slice(text.indexOf('# IP_AUTODETECTION_METHOD examples'), text.indexOf('- name: IP_AUTODETECTION_METHOD'));
  const examples = [...block.matchAll(/^\s*#\s{3}(\S+)\s/gm)].map((m) => m[1]!);
  t.ok(examples.length >= 6, `examples: ${examples.join(' ')}`);
  const kinds = new Set(examples.map((e) => parseAutodetectionMethod(e, 4).kind));
  t.same([...kinds].sort(), ['can-reach', 'cidr', 'first-found', 'interface', 'kubernetes-internal-ip', 'skip-interface']);
});

t.test('route-reflector Deployment: 2 replicas apart, RR mode with a cluster ID, labels the BGPPeer selects', async (t) => {
  const dep = find(withRr, 'Deployment', 'tabby-route-reflector');
  t.equal((dep.spec as { replicas: number }).replicas, 2);
  const pod = podSpecOf(dep)!;
  const anti = (
    pod.affinity as {
      podAntiAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: { topologyKey: string; labelSelector: { matchLabels: Record<string, string> } }[];
      };
    }
  ).podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]!;
  t.equal(anti.topologyKey, 'kubernetes.io/hostname');
  t.same(
    anti.labelSelector.matchLabels,
    (dep.spec as { selector: { matchLabels: unknown } }).selector.matchLabels,
    'anti-affinity selects its own pods',
  );
  const rr = containers(withRr).refs.find((r) => r.workload === 'Deployment/tabby-route-reflector')!;
  const rrCfg = parseAgentConfig(rr.env);
  t.equal(rrCfg.mode, 'route-reflector');
  t.equal(rrCfg.rrClusterId, '244.0.0.1');
  // Dedicated nodes: the RR runs only where the DaemonSet does not (both bind BGP port 179 on the host).
  t.equal((pod.nodeSelector as Record<string, string>)['tabby.io/route-reflector'], 'true');
  const dsAff = JSON.stringify(podSpecOf(find(withRr, 'DaemonSet', 'tabby-node'))!.affinity);
  t.match(dsAff, /"key":"tabby.io\/route-reflector","operator":"DoesNotExist"/);

  const [peer] = readYamlDocs(path.join(K8S, 'tabby-resources/bgppeer-route-reflectors.yaml')) as [
    { spec: { peerSelector: string; nodeSelector: string } },
  ];
  const nodeCfg = parseAgentConfig(containers(withRr).refs.find((r) => r.container === 'tabby-node')!.env);
  t.ok(parseSelector(peer.spec.peerSelector).matches(rrCfg.labels), "peerSelector matches the reflectors' Node labels");
  t.notOk(parseSelector(peer.spec.peerSelector).matches(nodeCfg.labels), 'and not ordinary nodes');
  t.ok(parseSelector(peer.spec.nodeSelector).matches(nodeCfg.labels), 'nodeSelector matches ordinary nodes');
});

t.test(
  "RBAC: tabby reads only nodes (get) and pods/namespaces (list, watch: policy labels), and every workload's service account is bound",
  async (t) => {
    const role = find(base, 'ClusterRole', 'tabby-node');
    t.same(role.rules, [
      { apiGroups: [''], resources: ['nodes'], verbs: ['get'] },
      { apiGroups: [''], resources: ['pods', 'namespaces'], verbs: ['list', 'watch'] },
    ]);
    const binding = find(base, 'ClusterRoleBinding', 'tabby-node');
    const bound = new Set((binding.subjects as { name: string; namespace: string }[]).map((s) => `${s.namespace}/${s.name}`));
    for (const o of withRr.filter((x) => podSpecOf(x))) {
      const sa = podSpecOf(o)!.serviceAccountName as string;
      t.ok(
        withRr.some((x) => x.kind === 'ServiceAccount' && x.metadata.name === sa),
        `${o.kind}/${o.metadata.name}: ServiceAccount ${sa} exists`,
      );
      t.ok(bound.has(`tabby-system/${sa}`), `${sa} is bound`);
    }
  },
);

t.test("the installer, run with the init container's environment, writes a conflist the CNI plugin accepts", async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${runTag()}dep-`));
  t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  // A small stand-in app: the real dist/src/cni/main.js is the ipam-cni area's; this one prints what it got.
  const app = path.join(tmp, 'app');
  fs.mkdirSync(path.join(app, 'dist/src/cni'), { recursive: true });
  fs.mkdirSync(path.join(app, 'node_modules/dep'), { recursive: true });
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ version: '9.9.9' }));
  fs.writeFileSync(path.join(app, 'node_modules/dep/index.js'), '');
  fs.mkdirSync(path.join(app, path.dirname(CLIENT_PATH)), { recursive: true });
  fs.copyFileSync(path.join(ROOT, CLIENT_PATH), path.join(app, CLIENT_PATH));
  fs.writeFileSync(
    path.join(app, 'dist/src/cni/main.js'),
    'process.stdout.write(JSON.stringify({as: process.env.TABBY_CNI_PLUGIN_NAME, cmd: process.env.CNI_COMMAND}));\n',
  );
  // etcd TLS files as the Secret mount would hold them.
  const secret = path.join(tmp, 'secret');
  fs.mkdirSync(secret);
  for (const f of ['ca.crt', 'tls.crt', 'tls.key']) fs.writeFileSync(path.join(secret, f), `${f}\n`);

  const init = containers(base).refs.find((r) => r.program === 'tabby-install-cni')!;
  const hostRoot = path.join(tmp, 'host');
  // The container's environment, with the container paths mapped into the temp dir.
  const env = {
    ...init.env,
    TABBY_HOST_ROOT: hostRoot,
    TABBY_APP_DIR: app,
    ETCD_CA_CERT_FILE: path.join(secret, 'ca.crt'),
    ETCD_CERT_FILE: path.join(secret, 'tls.crt'),
    ETCD_KEY_FILE: path.join(secret, 'tls.key'),
  };
  const cfg = parseInstallConfig(env);
  const res = installCni(cfg);
  t.equal(res.conflist, '/etc/cni/net.d/10-tabby.conflist');
  t.ok(res.copied);
  const conf = JSON.parse(fs.readFileSync(path.join(hostRoot, res.conflist), 'utf8')) as {
    name: string;
    cniVersion: string;
    plugins: Record<string, unknown>[];
  };
  t.same(
    conf.plugins.map((p) => p.type),
    ['tabby', 'portmap'],
  );
  const plugin = conf.plugins[0]!;
  t.equal(plugin.datastore_type, 'etcdv3');
  t.equal(plugin.etcd_endpoints, init.env.ETCD_ENDPOINTS, 'datastore settings come from the ConfigMap');
  t.equal(plugin.nodename, 'node-1');
  t.same(plugin.ipam, { type: 'tabby-ipam' });
  t.equal(plugin.etcd_key_file, '/etc/cni/net.d/tabby-tls/etcd-key', 'TLS files referenced where the host sees them');
  const keyStat = fs.statSync(path.join(hostRoot, '/etc/cni/net.d/tabby-tls/etcd-key'));
  t.equal(keyStat.mode & 0o777, 0o600);
  t.equal(fs.readFileSync(path.join(hostRoot, '/etc/cni/net.d/tabby-tls/etcd-key'), 'utf8'), 'tls.key\n');
  t.same(fs.readdirSync(path.join(hostRoot, 'etc/cni/net.d')).sort(), ['10-tabby.conflist', 'tabby-tls'], 'no temporary files left');

  // `tabby` and `tabby-ipam` are the CNI client; with no agent answering it execs `tabby-fallback`, which runs
  // the copied node on the copied app and tells the program which name it runs under.
  const fallback = path.join(hostRoot, cfg.cniBinDir, 'tabby-fallback');
  const script = fs.readFileSync(fallback, 'utf8');
  t.match(
    script,
    /^exec '\/opt\/tabby\/cni\/9\.9\.9-[0-9a-f]{12}\/node' '\/opt\/tabby\/cni\/9\.9\.9-[0-9a-f]{12}\/app\/dist\/src\/cni\/main\.js' "\$@"$/m,
  );
  // Run it with the host paths mapped into the temp dir (as a chroot would).
  const mapped = path.join(tmp, 'fallback-mapped');
  fs.writeFileSync(mapped, script.replaceAll("'/opt/tabby/", `'${hostRoot}/opt/tabby/`), { mode: 0o755 });
  for (const name of PLUGIN_NAMES) {
    const client = path.join(hostRoot, cfg.cniBinDir, name);
    t.equal(fs.statSync(client).mode & 0o777, 0o755);
    t.same(fs.readFileSync(client), fs.readFileSync(path.join(app, CLIENT_PATH)), `${name} is the client executable`);
    const out = spawnSync(client, [], {
      input: '{"cniVersion":"1.0.0"}',
      env: { ...process.env, CNI_COMMAND: 'VERSION', TABBY_CNI_SOCKET: path.join(tmp, 'no-agent.sock'), TABBY_CNI_FALLBACK: mapped },
      encoding: 'utf8',
    });
    t.equal(out.status, 0, out.stderr);
    t.same(JSON.parse(out.stdout), { as: name, cmd: 'VERSION' });
  }
  // Idempotent: a second run (pod restart) copies nothing and leaves the same files.
  const again = installCni(cfg);
  t.notOk(again.copied);
  t.equal(fs.readdirSync(path.join(hostRoot, 'opt/tabby/cni')).length, 1);

  // The CNI plugin's own parser accepts what the installer wrote, as a list and as the runtime hands it
  // each plugin (with the list's name and cniVersion), and reads back the same datastore settings.
  const runtimeConf = { cniVersion: conf.cniVersion, name: conf.name, ...plugin };
  for (const input of [JSON.stringify(conf), JSON.stringify(runtimeConf)]) {
    const nc = parseNetConf(input);
    t.equal(nc.type, 'tabby');
    t.equal(nc.ipam.type, 'tabby-ipam');
    t.equal(nc.nodename, 'node-1');
    t.same(
      datastoreConfigFromNetconf(nc.raw, {}),
      {
        type: 'etcdv3',
        etcdEndpoints: [init.env.ETCD_ENDPOINTS],
        etcdCaCertFile: '/etc/cni/net.d/tabby-tls/etcd-ca',
        etcdCertFile: '/etc/cni/net.d/tabby-tls/etcd-cert',
        etcdKeyFile: '/etc/cni/net.d/tabby-tls/etcd-key',
      },
      'the plugin opens the datastore the ConfigMap names',
    );
  }
  // file datastore variant (single-node cluster, systemd host).
  const fileConf = buildConflist(parseInstallConfig({ DATASTORE_TYPE: 'file', CNI_MTU: '1450' }));
  const fnc = parseNetConf(fileConf);
  t.equal(fnc.mtu, 1450);
  t.match(datastoreConfigFromNetconf(fnc.raw, {}), { type: 'file', dir: '/var/lib/tabby/datastore' });
});

t.test('in-place install (systemd host): the wrapper runs the real plugin', async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${runTag()}dep-`));
  t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const cfg = parseInstallConfig({
    TABBY_CNI_RUNTIME: 'in-place',
    TABBY_APP_DIR: ROOT,
    CNI_BIN_DIR: path.join(tmp, 'bin'),
    CNI_NET_DIR: path.join(tmp, 'net.d'),
  });
  const res = installCni(cfg);
  t.equal(res.appDir, ROOT);
  t.equal(res.nodeBinary, process.execPath);
  t.notOk(fs.existsSync(path.join(tmp, 'opt')), 'nothing copied');
  const netconf = fs.readFileSync(res.conflist);
  for (const name of PLUGIN_NAMES) {
    const out = spawnSync(path.join(tmp, 'bin', name), [], {
      input: netconf,
      env: { ...process.env, CNI_COMMAND: 'VERSION' },
      encoding: 'utf8',
    });
    t.equal(out.status, 0, out.stderr);
    const v = JSON.parse(out.stdout) as { cniVersion: string; supportedVersions: string[] };
    t.ok(v.supportedVersions.includes('1.0.0'), `${name} VERSION: ${out.stdout.trim()}`);
  }
});

t.test("datastore resources in tabby-resources/ pass tabby's validation", async (t) => {
  const dir = path.join(K8S, 'tabby-resources');
  const kinds = new Set<string>();
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.yaml'))) {
    for (const doc of readYamlDocs(path.join(dir, f))) {
      const d = doc as { kind: string; metadata: { name: string } };
      kinds.add(d.kind);
      t.doesNotThrow(() => validateResource(doc), `${f}: ${d.kind}/${d.metadata.name}`);
    }
  }
  t.same([...kinds].sort(), ['BGPConfiguration', 'BGPPeer', 'IPPool']);
  // It bites: the same checker refuses a broken pool.
  const [pool] = readYamlDocs(path.join(dir, 'ippool.yaml')) as [{ spec: { blockSize: number } }];
  pool.spec.blockSize = 33;
  t.throws(() => validateResource(pool));
});

/** Every password secret a resource names must be a Secret volume of every tabby-node container, mounted
 *  (no subPath, so rotation reaches the pod) at $TABBY_SECRETS_DIR/<secret name>. */
function passwordMountProblems(objects: K8sObject[], secretNames: readonly string[]): string[] {
  const problems: string[] = [];
  for (const r of containers(objects).refs.filter((x) => x.program === 'tabby-node')) {
    const dir = parseAgentConfig(r.env).secretsDir;
    const pod = podSpecOf(objects.find((o) => `${o.kind}/${o.metadata.name}` === r.workload)!)!;
    const c = containersOf(pod).find((x) => x.name === r.container)!;
    const mounts = (c.volumeMounts as { name: string; mountPath: string; subPath?: string }[] | undefined) ?? [];
    const vols = (pod.volumes as { name: string; secret?: { secretName: string } }[] | undefined) ?? [];
    for (const name of secretNames) {
      const vol = vols.find((v) => v.secret?.secretName === name);
      const m = vol && mounts.find((x) => x.name === vol.name);
      if (!m) problems.push(`${r.workload}: Secret ${name} is not mounted`);
      else if (m.mountPath !== path.posix.join(dir, name))
        problems.push(`${r.workload}: Secret ${name} mounted at ${m.mountPath}, tabby-node reads ${path.posix.join(dir, name)}`);
      else if (m.subPath) problems.push(`${r.workload}: Secret ${name} mounted with subPath (rotation would never reach the pod)`);
    }
  }
  return problems;
}

t.test('BGP password secrets the resources name are mounted where tabby-node reads them (DaemonSet and reflectors)', async (t) => {
  const dir = path.join(K8S, 'tabby-resources');
  const names = new Set<string>();
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.yaml'))) {
    for (const doc of readYamlDocs(path.join(dir, f))) {
      const spec = (
        doc as { spec?: { password?: { secretKeyRef?: { name: string } }; nodeMeshPassword?: { secretKeyRef?: { name: string } } } }
      ).spec;
      for (const ref of [spec?.password?.secretKeyRef, spec?.nodeMeshPassword?.secretKeyRef]) if (ref) names.add(ref.name);
    }
  }
  t.same([...names], ['tabby-bgp-passwords'], 'the example ToR peer names one Secret');
  t.same(passwordMountProblems(base, [...names]), [], 'DaemonSet');
  t.same(passwordMountProblems(withRr, [...names]), [], 'DaemonSet + route reflectors');
  t.equal(containers(withRr).refs.filter((r) => r.program === 'tabby-node').length, 2, 'both workloads checked');
  // It bites: a mount moved, and a Secret nobody mounts.
  const moved = clone(withRr);
  const rrPod = podSpecOf(find(moved, 'Deployment', 'tabby-route-reflector'))!;
  const mount = (containersOf(rrPod).find((c) => c.name === 'route-reflector')!.volumeMounts as { name: string; mountPath: string }[]).find(
    (m) => m.name === 'bgp-passwords',
  )!;
  mount.mountPath = '/etc/tabby/bgp';
  t.same(passwordMountProblems(moved, ['tabby-bgp-passwords']), [
    'Deployment/tabby-route-reflector: Secret tabby-bgp-passwords mounted at /etc/tabby/bgp, tabby-node reads /etc/tabby/secrets/tabby-bgp-passwords',
  ]);
  t.same(passwordMountProblems(base, ['other']), ['DaemonSet/tabby-node: Secret other is not mounted']);
});

t.test('Containerfile: stages, sources, production dependencies only, tini as PID 1', async (t) => {
  const text = fs.readFileSync(path.join(DEPLOY, 'container/Containerfile'), 'utf8').replace(/\\\n/g, ' ');
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const known = new Set(['FROM', 'RUN', 'COPY', 'WORKDIR', 'ENV', 'ARG', 'LABEL', 'ENTRYPOINT', 'CMD', 'USER', 'EXPOSE']);
  const stages: string[] = [];
  let last: { name: string; lines: string[] } | undefined;
  for (const l of lines) {
    const [instr] = l.split(/\s+/);
    t.ok(known.has(instr!), `known instruction: ${l.slice(0, 40)}`);
    if (instr === 'FROM') {
      const m = /^FROM\s+\S+(?:\s+AS\s+(\S+))?$/i.exec(l);
      t.ok(m?.[1], `stage is named: ${l}`);
      stages.push(m![1]!);
      last = { name: m![1]!, lines: [] };
    } else {
      last?.lines.push(l);
    }
    if (instr === 'COPY') {
      const from = /--from=(\S+)/.exec(l)?.[1];
      const parts = l.replace(/--\S+/g, '').split(/\s+/).slice(1);
      const srcs = parts.slice(0, -1);
      if (from) t.ok(stages.slice(0, -1).includes(from), `COPY --from=${from} names an earlier stage`);
      else for (const s of srcs) t.ok(fs.existsSync(path.join(ROOT, s)), `COPY source ${s} exists in the repository`);
    }
  }
  t.same(stages, ['build', 'runtime']);
  t.match(text, /npm prune --omit=dev/, 'dev dependencies pruned before node_modules is copied');
  t.match(last!.lines.join('\n'), /apt-get install .*\btini\b/);
  t.match(last!.lines.join('\n'), /^ENTRYPOINT \["\/usr\/bin\/tini", "--"\]$/m);
  t.match(last!.lines.join('\n'), /^CMD \["tabby-node"\]$/m);
  // The wrappers the manifests run (args[0]) are in the image, and each runs a program that exists.
  const bin = path.join(DEPLOY, 'container/bin');
  for (const r of containers(withRr).refs) t.ok(fs.existsSync(path.join(bin, r.program)), `image has ${r.program}`);
  for (const w of fs.readdirSync(bin)) {
    t.equal(fs.statSync(path.join(bin, w)).mode & 0o111, 0o111, `${w} is executable`);
    const js = /exec node \/app\/(dist\/src\/\S+\.js|dist\/tabby-node\.cjs) "\$@"/.exec(fs.readFileSync(path.join(bin, w), 'utf8'))?.[1];
    t.ok(js, `${w} execs node on a file of the app`);
    // dist/tabby-node.cjs: the one-file build of src/agent/bundle-entry.ts (deploy/bundle.mjs)
    const ts = js === 'dist/tabby-node.cjs' ? 'src/agent/bundle-entry.ts' : js!.replace(/^dist\//, '').replace(/\.js$/, '.ts');
    t.test(
      `${w} → ${ts}`,
      {
        skip:
          fs.existsSync(path.join(ROOT, ts)) || ts !== 'src/agent/main.ts' ? false : 'src/agent/main.ts has not landed yet (agent area)',
      },
      async (t) => {
        t.ok(fs.existsSync(path.join(ROOT, ts)), `${ts} exists`);
      },
    );
  }
});

t.test('systemd unit verifies; its env file uses only variables tabby-node reads', async (t) => {
  const unit = fs.readFileSync(path.join(DEPLOY, 'systemd/tabby-node.service'), 'utf8');
  const exec = /^ExecStart=(\S+) (\S+)$/m.exec(unit);
  t.equal(exec?.[2], '/opt/tabby/app/dist/tabby-node.cjs');
  t.match(unit, /^EnvironmentFile=\/etc\/tabby\/tabby-node.env$/m);
  t.match(unit, /^KillSignal=SIGTERM$/m);
  t.match(unit, /^RuntimeDirectory=tabby$/m, '/run/tabby = TABBY_STATE_DIR');

  const envText = fs.readFileSync(path.join(DEPLOY, 'systemd/tabby-node.env'), 'utf8');
  const names = new Set(AGENT_ENV.map((e) => e.name));
  const mentioned = [...envText.matchAll(/^#?([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]!);
  t.ok(mentioned.length > 15);
  for (const n of mentioned) t.ok(names.has(n), `${n} is read by tabby-node`);
  const active = parseEnvFile(path.join(DEPLOY, 'systemd/tabby-node.env'));
  const fileCfg = parseAgentConfig(active);
  t.equal(fileCfg.datastore.type, 'file');
  t.equal(fileCfg.stateDir, '/var/run/tabby');
  t.equal(fileCfg.ipv4Pool.encapByKernel, true, 'default pool encapsulation fits the kernel (VXLAN without ipip)');
  // The etcd variant: uncomment the etcd block, comment the file lines.
  const etcdText = envText
    .replace(/^(DATASTORE_TYPE=file|TABBY_DATASTORE_DIR=.*)$/gm, '#$1')
    .replace(/^#((?:DATASTORE_TYPE=etcdv3|ETCD_[A-Z_]+=.*))$/gm, '$1');
  const tmp = path.join(os.tmpdir(), `tb${process.pid}dep-etcd.env`);
  fs.writeFileSync(tmp, etcdText);
  t.teardown(() => fs.rmSync(tmp, { force: true }));
  const etcdCfg = parseAgentConfig(parseEnvFile(tmp));
  t.equal(etcdCfg.datastore.type, 'etcdv3');
  t.equal(etcdCfg.datastore.etcdEndpoints?.length, 3);
  t.equal(etcdCfg.datastore.etcdKeyFile, '/etc/tabby/etcd/client.key');

  const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' }).status === 0;
  t.test('systemd-analyze verify', { skip: analyze ? false : 'systemd-analyze is not installed' }, async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tb${process.pid}dep-unit-`));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    // ExecStart's node is the host's; point it at this node so the check is the unit's syntax and semantics.
    const verify = (text: string): { status: number | null; stderr: string } => {
      const f = path.join(dir, 'tabby-node.service');
      fs.writeFileSync(f, text.replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`));
      return spawnSync('systemd-analyze', ['verify', f], { encoding: 'utf8' });
    };
    const ok = verify(unit);
    t.equal(ok.status, 0, ok.stderr);
    t.equal(ok.stderr.trim(), '', 'no warnings');
    const bad = verify(unit.replace('Restart=always', 'Restart=sometimes'));
    t.match(bad.stderr, /restart specifier/, 'a bad value is reported (the check bites)');
  });
});

t.test('README install sections exist and match the files', async (t) => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = (title: string): string => {
    const start = readme.indexOf(`\n## ${title}\n`);
    if (start < 0) return '';
    const next = readme.indexOf('\n## ', start + 4);
    return readme.slice(start, next < 0 ? undefined : next);
  };
  const cluster = section('Install on a cluster');
  const host = section('Install on a host with systemd');
  t.ok(cluster, 'section "Install on a cluster"');
  t.ok(host, 'section "Install on a host with systemd"');
  const text = cluster + host;
  // Every deploy/ path and tabby-resources file named exists.
  const paths = new Set([...text.matchAll(/\bdeploy\/[\w./-]*\w/g)].map((m) => m[0]));
  t.ok(paths.size >= 8, [...paths].join(' '));
  for (const p of paths) t.ok(fs.existsSync(path.join(ROOT, p)), `${p} exists`);
  for (const f of [...text.matchAll(/`([\w-]+\.yaml)`/g)].map((m) => m[1]!)) {
    const found = [K8S, path.join(K8S, 'base'), path.join(K8S, 'route-reflectors'), path.join(K8S, 'tabby-resources')].some((d) =>
      fs.existsSync(path.join(d, f)),
    );
    t.ok(found, `${f} exists under deploy/kubernetes`);
  }
  // Every upper-case variable named is one the programs read.
  const vars = new Set([...AGENT_ENV, ...INSTALL_ENV].map((e) => e.name));
  // … or a setting of make install (deploy/host/install.sh reads each as NAME=${NAME:-default}).
  for (const m of fs.readFileSync(path.join(DEPLOY, 'host/install.sh'), 'utf8').matchAll(/^([A-Z_]+)=\$\{\1:-/gm)) vars.add(m[1]!);
  // (in backticks, or VAR= at the start of code; a name ending in * is a family, e.g. CALICO_IPV4POOL_*)
  const named = [...text.matchAll(/[`\s]((?:CALICO|TABBY|ETCD|CNI|IP|DATASTORE|NODENAME)[A-Z0-9_]*)(\*?)[`=]/g)]
    .filter((m) => m[2] === '')
    .map((m) => m[1]!);
  t.ok(named.length >= 10, `variables named: ${[...new Set(named)].join(' ')}`);
  for (const v of new Set(named)) t.ok(vars.has(v), `${v} is a variable tabby reads`);
  // The commands use the same image, the same objects and the same host paths as the files.
  t.match(cluster, `-t ${IMAGE} .`);
  t.match(cluster, 'daemonset/tabby-node');
  t.match(cluster, 'deployment/tabby-route-reflector');
  t.match(cluster, 'tabby.io/route-reflector=true');
  t.match(cluster, find(base, 'Namespace', 'tabby-system').metadata.name);
  t.match(cluster, 'tabby-etcd-certs');
  const unit = fs.readFileSync(path.join(DEPLOY, 'systemd/tabby-node.service'), 'utf8');
  t.match(host, /\/etc\/tabby\/tabby-node\.env/);
  t.match(unit, /\/etc\/tabby\/tabby-node\.env/);
  t.match(host, '/opt/tabby/app/dist/src/cli/main.js');
  t.match(unit, 'ExecStart=/usr/bin/node /opt/tabby/app/dist/tabby-node.cjs');
});

t.test('the image builds the native addon from every source file of it (a new source or header is copied in)', async (t) => {
  const file = fs.readFileSync(path.join(DEPLOY, 'container/Containerfile'), 'utf8');
  const copy = /^COPY (.*src\/native\/\S+) src\/native\/$/m.exec(file);
  t.ok(copy, 'one COPY of the addon sources into src/native/');
  const copied = new Set((copy?.[1] ?? '').split(/\s+/));
  const native = path.join(ROOT, 'src/native');
  const sources = fs.readdirSync(native).filter((f) => /\.(cc|c|h)$/.test(f) || f === 'binding.gyp');
  t.ok(sources.length >= 5, `addon sources: ${sources.join(' ')}`);
  for (const f of sources) t.ok(copied.has(`src/native/${f}`), `${f} is copied into the image`);
});
