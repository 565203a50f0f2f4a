// `tabbyctl lab up --policy-demo`: labelled pods and one policy, shown working. Namespace `demo`: `web`
// (app=web) on the first node, `client` (role=client) and `other` (no role) on the last; the policy
// admits ICMP to web only from role=client. It prints what `tabbyctl policy explain` says for both
// flows, then pings: client → web must answer, other → web must not. Returns false when the pings
// disagree with the policy.
import { openDatastore } from '../datastore/index.js';
import { ResourceStore, validateResource } from '../datastore/resources.js';
import { explainText } from '../policy/explain.js';
import type { Lab } from './lab.js';

export const DEMO_NAMESPACE = 'demo';

export const DEMO_POLICY = {
  apiVersion: 'projectcalico.org/v3',
  kind: 'NetworkPolicy',
  metadata: { name: 'web-from-clients', namespace: DEMO_NAMESPACE },
  spec: {
    selector: "app == 'web'",
    types: ['Ingress'],
    ingress: [{ action: 'Allow', protocol: 'ICMP', source: { selector: "role == 'client'" } }],
  },
};

export async function policyDemo(lab: Lab, out: (s: string) => void): Promise<boolean> {
  const workers = lab.nodes.filter((n) => n.role === 'node');
  const first = workers[0]!.name;
  const last = workers.at(-1)!.name;
  const web = await lab.addPod(first, 'web', { namespace: DEMO_NAMESPACE, labels: { app: 'web' } });
  await lab.addPod(last, 'client', { namespace: DEMO_NAMESPACE, labels: { role: 'client' } });
  await lab.addPod(last, 'other', { namespace: DEMO_NAMESPACE });
  const ds = await openDatastore({ type: 'file', dir: lab.state.datastoreDir });
  try {
    const rs = new ResourceStore(ds);
    // routes first: both pings answer before the policy
    const before = [await lab.pingUntil('client', web.ip), await lab.pingUntil('other', web.ip)];
    await rs.apply(validateResource(DEMO_POLICY));
    out(
      `\npolicy demo (namespace ${DEMO_NAMESPACE}): web on ${first}, client (role=client) and other on ${last}\n` +
        `  applied NetworkPolicy ${DEMO_NAMESPACE}/web-from-clients: selector app == 'web', ingress Allow ICMP from role == 'client' (anything else: default deny)\n`,
    );
    const [endpoints, policies, globalPolicies, profiles] = await Promise.all([
      rs.list('WorkloadEndpoint'),
      rs.list('NetworkPolicy'),
      rs.list('GlobalNetworkPolicy'),
      rs.list('Profile'),
    ]);
    const inp = { endpoints: endpoints.items, policies: policies.items, globalPolicies: globalPolicies.items, profiles: profiles.items };
    for (const from of ['client', 'other']) {
      const r = explainText(inp, { pod: 'web', namespace: DEMO_NAMESPACE, from: `${DEMO_NAMESPACE}/${from}`, protocol: 'icmp' });
      out(`\n$ tabbyctl policy explain web -n ${DEMO_NAMESPACE} --from ${DEMO_NAMESPACE}/${from} --protocol icmp\n`);
      out(`${'error' in r ? r.error : r.text}\n`);
    }
    // the agent programs within milliseconds; allow a loaded machine some seconds before judging
    const until = Date.now() + 15_000;
    let denied = false;
    while (!denied && Date.now() < until) denied = !(await lab.ping('other', web.ip));
    const allowed = await lab.pingUntil('client', web.ip, 5000);
    out(
      `\nping before the policy: client → web ${before[0] ? 'answered' : 'NO ANSWER'}, other → web ${before[1] ? 'answered' : 'NO ANSWER'}\n` +
        `ping with the policy:   client → web ${allowed ? 'answered (allowed)' : 'NO ANSWER (should be allowed)'}, other → web ${denied ? 'no answer (denied)' : 'ANSWERED (should be denied)'}\n` +
        `remove it: tabbyctl delete networkpolicy web-from-clients -n ${DEMO_NAMESPACE}\n`,
    );
    return before.every(Boolean) && allowed && denied;
  } finally {
    await ds.close();
  }
}
