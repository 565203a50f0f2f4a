import t from 'tap';
import { validateResource, ValidationError, storeName } from '../../../src/datastore/resources.js';

const problems = (doc: unknown): string[] => {
  try {
    validateResource(doc);
  } catch (e) {
    if (e instanceof ValidationError) return e.problems;
    throw e;
  }
  return [];
};
const np = (spec: Record<string, unknown>, meta: Record<string, unknown> = {}) => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'NetworkPolicy',
  metadata: { name: 'p', namespace: 'web', ...meta },
  spec,
});
const gnp = (spec: Record<string, unknown>) => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'GlobalNetworkPolicy',
  metadata: { name: 'g' },
  spec,
});

t.test('NetworkPolicy defaults: selector all(), types from the rules, namespace default', async (t) => {
  const p = validateResource(
    np({ ingress: [{ action: 'Allow', protocol: 'tcp', destination: { ports: [80, '8000:8080', 'http'] } }] }, { namespace: undefined }),
  );
  t.same(p.metadata, { name: 'p', namespace: 'default' });
  t.same(p.spec, {
    selector: 'all()',
    types: ['Ingress'],
    ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [80, '8000:8080', 'http'] } }],
  });
  t.equal(storeName(p), 'default/p');
  t.same((validateResource(np({ egress: [{ action: 'Deny' }] })).spec as { types: string[] }).types, ['Egress']);
  t.same((validateResource(np({ egress: [{ action: 'Deny' }], ingress: [{ action: 'Allow' }] })).spec as { types: string[] }).types, [
    'Ingress',
    'Egress',
  ]);
  t.same((validateResource(np({})).spec as { types: string[] }).types, ['Ingress']);
});

t.test('rule checks name the field', async (t) => {
  t.match(problems(np({ ingress: [{ action: 'Allow', destination: { ports: [80] } }] })), [
    /spec.ingress\[0\].destination.ports needs protocol TCP, UDP, SCTP or UDPLite/,
  ]);
  t.match(problems(np({ ingress: [{ action: 'Accept' }] })), [/spec.ingress\[0\].action "Accept" is not one of Allow, Deny, Log, Pass/]);
  t.match(problems(np({ ingress: [{}] })), [/action is required/]);
  t.match(problems(np({ ingress: [{ action: 'Allow', icmp: { type: 8 } }] })), [/icmp needs protocol ICMP or ICMPv6/]);
  t.match(problems(np({ ingress: [{ action: 'Allow', ipVersion: 4, source: { nets: ['fd00::/8'] } }] })), [
    /ipVersion 4 contradicts the rule's IPv6 nets/,
  ]);
  t.match(problems(np({ ingress: [{ action: 'Allow', source: { selector: 'app = web' } }] })), [
    /source.selector "app = web" is not a valid selector/,
  ]);
  t.match(problems(np({ ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: ['70000', 'Bad_Name'] } }] })), [
    /out of range/,
    /port name/,
  ]);
  t.match(problems(np({ ingress: [{ action: 'Allow' }], types: ['Egress'] })), [
    /spec.ingress rules are given but spec.types does not include Ingress/,
  ]);
  t.match(problems(np({ selector: 'x == "1"' }, { namespace: 'Bad NS' })), [/metadata.namespace "Bad NS"/]);
  t.match(problems(np({ doNotTrack: true })), [/unknown field spec.doNotTrack/]);
});

t.test('doNotTrack, preDNAT, serviceAccounts, http: refused, saying tabby does not support them', async (t) => {
  t.match(problems(gnp({ doNotTrack: true, ingress: [{ action: 'Allow' }] })), [/spec.doNotTrack is not supported by tabby/]);
  t.match(problems(gnp({ preDNAT: true })), [/spec.preDNAT is not supported by tabby/]);
  t.match(problems(gnp({ ingress: [{ action: 'Allow', source: { serviceAccounts: { names: ['x'] } } }] })), [
    /serviceAccounts is not supported/,
  ]);
  t.match(problems(gnp({ ingress: [{ action: 'Allow', http: { methods: ['GET'] } }] })), [/http is not supported/]);
  t.same(problems(gnp({ doNotTrack: false, preDNAT: false, namespaceSelector: "team == 'a'" })), []);
});

t.test('Profile and WorkloadEndpoint', async (t) => {
  const pro = validateResource({
    apiVersion: 'projectcalico.org/v3',
    kind: 'Profile',
    metadata: { name: 'kns.web' },
    spec: { ingress: [{ action: 'Allow' }], labelsToApply: { 'pcns.team': 'a' } },
  });
  t.same(pro.spec, { ingress: [{ action: 'Allow' }], labelsToApply: { 'pcns.team': 'a' } });
  t.match(
    problems({
      apiVersion: 'projectcalico.org/v3',
      kind: 'Profile',
      metadata: { name: 'x', namespace: 'a' },
      spec: { ingress: [{ action: 'Pass' }] },
    }),
    [/a Profile is not namespaced/, /Pass is only meaningful in a policy/],
  );
  const w = validateResource({
    apiVersion: 'projectcalico.org/v3',
    kind: 'WorkloadEndpoint',
    metadata: { name: 'n1-k8s-web-eth0', namespace: 'a' },
    spec: {
      node: 'n1',
      interfaceName: 'cali0123456789a',
      ipNetworks: ['10.0.0.5'],
      profiles: ['kns.a'],
      ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
    },
  });
  t.same(w.spec, {
    node: 'n1',
    interfaceName: 'cali0123456789a',
    orchestrator: 'k8s',
    endpoint: 'eth0',
    ipNetworks: ['10.0.0.5/32'],
    profiles: ['kns.a'],
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
  });
  t.match(
    problems({
      apiVersion: 'projectcalico.org/v3',
      kind: 'WorkloadEndpoint',
      metadata: { name: 'x' },
      spec: { interfaceName: 'a-name-that-is-far-too-long' },
    }),
    [/spec.node is required/, /is not a Linux interface name/],
  );
});

t.test('Kubernetes NetworkPolicy → knp.default.<name>, order 1000, Calico rules', async (t) => {
  const k = validateResource({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'api', namespace: 'prod' },
    spec: {
      podSelector: { matchLabels: { app: 'api' } },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        {
          from: [
            { podSelector: { matchLabels: { role: 'fe' } } },
            { namespaceSelector: {} },
            { ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } },
          ],
          ports: [{ port: 80 }, { protocol: 'UDP', port: 53 }, { port: 'http' }],
        },
        {},
      ],
      egress: [
        {
          to: [
            {
              namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'In', values: ['a', 'b'] }] },
              podSelector: { matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] },
            },
          ],
        },
      ],
    },
  });
  t.equal(k.kind, 'NetworkPolicy');
  t.same(k.metadata, { name: 'knp.default.api', namespace: 'prod' });
  const spec = k.spec as Record<string, unknown> & { ingress: unknown[]; egress: unknown[] };
  t.equal(spec.order, 1000);
  t.equal(spec.selector, "projectcalico.org/orchestrator == 'k8s' && app == 'api'");
  t.same(spec.types, ['Ingress', 'Egress']);
  t.equal(spec.ingress.length, 3 * 2 + 1, 'one rule per peer and protocol, plus the allow-all rule');
  t.same(spec.ingress[0], { action: 'Allow', protocol: 'TCP', source: { selector: "role == 'fe'" }, destination: { ports: [80, 'http'] } });
  t.same(spec.ingress[1], { action: 'Allow', protocol: 'UDP', source: { selector: "role == 'fe'" }, destination: { ports: [53] } });
  t.same(spec.ingress[2], {
    action: 'Allow',
    protocol: 'TCP',
    source: { namespaceSelector: 'all()' },
    destination: { ports: [80, 'http'] },
  });
  t.same(spec.ingress[4], {
    action: 'Allow',
    protocol: 'TCP',
    source: { nets: ['10.0.0.0/8'], notNets: ['10.1.0.0/16'] },
    destination: { ports: [80, 'http'] },
  });
  t.same(spec.ingress[6], { action: 'Allow' });
  t.same(spec.egress, [{ action: 'Allow', destination: { selector: '!has(tier)', namespaceSelector: "team in {'a', 'b'}" } }]);
  const deny = validateResource({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'deny' },
    spec: { podSelector: {} },
  });
  t.same(deny.spec, { order: 1000, selector: "projectcalico.org/orchestrator == 'k8s'", types: ['Ingress'], ingress: [] });
  t.throws(
    () =>
      validateResource({
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: 'x' },
        spec: { podSelector: { matchExpressions: [{ key: 'a', operator: 'Near' }] } },
      }),
    /operator "Near"/,
  );
});
