// Property test of the incremental compile: random sequences of endpoint / policy / profile changes,
// applied one at a time or in bursts, must leave the state's ruleset equal to a fresh compile of the
// same resources, and the deltas it hands out, applied one after another to a copy (what the kernel
// holds), must reach the same ruleset. The policies each local endpoint gets are also checked against
// the plain scan of model.ts (policiesFor), which does not go through the state's label index.
import t from 'tap';
import { compile, type Ruleset, type RulesetDelta } from '../../../src/policy/compile.js';
import { PolicyState, type PolicyResource } from '../../../src/policy/state.js';
import { endpointViews, policiesFor, policyViews } from '../../../src/policy/model.js';
import type { GlobalNetworkPolicy, NetworkPolicy, Profile, WorkloadEndpoint } from '../../../src/datastore/resources.js';
import { gnp, np, nsProfile, wep } from './fixtures.js';
import { validateResource } from '../../../src/datastore/resources.js';

function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const SELECTORS = [
  "app == 'x'",
  "app == 'y'",
  "app == 'x' && tier == '1'",
  "tier == '2'",
  'all()',
  "app in {'y', 'z'}",
  '!has(tier)',
  "app != 'z'",
];
const NS_SELECTORS = ["team == 'red'", "team == 'blue'", 'all()'];

function generator(seed: number) {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const maybe = (p = 0.5) => r() < p;
  const endpoint = (i: number): WorkloadEndpoint => {
    const ns = pick(['a', 'b']);
    const labels: Record<string, string> = { app: pick(['x', 'y', 'z']) };
    if (maybe()) labels.tier = pick(['1', '2']);
    const w = wep(
      ns,
      `e${i}`,
      pick(['n1', 'n1', 'n2']),
      `10.0.${i}.${1 + Math.floor(r() * 3)}`,
      labels,
      maybe() ? [{ name: pick(['http', 'alt']), protocol: pick(['TCP', 'UDP']), port: pick([80, 8080]) }] : undefined,
    );
    if (maybe(0.25)) w.spec.ipNetworks = [...w.spec.ipNetworks, `fd00::${i + 1}/128`];
    if (maybe(0.2)) w.spec.profiles = [...w.spec.profiles, 'extra'];
    return w;
  };
  const side = () => {
    const s: Record<string, unknown> = {};
    if (maybe(0.5)) s.selector = pick(SELECTORS);
    if (maybe(0.2)) s.namespaceSelector = pick(NS_SELECTORS);
    if (maybe(0.15)) s.notSelector = pick(SELECTORS);
    if (maybe(0.2)) s.nets = [pick(['10.0.0.0/16', '10.0.3.0/24', 'fd00::/64'])];
    if (maybe(0.2)) s.ports = [pick([80, 'http', '8000:8100', 'alt'])];
    return s;
  };
  const rules = (actions = ['Allow', 'Deny', 'Pass', 'Allow']) =>
    Array.from({ length: Math.floor(r() * 3) }, () => {
      const rule: Record<string, unknown> = { action: pick(actions) };
      if (maybe(0.5)) rule.protocol = pick(['TCP', 'UDP']);
      if (maybe(0.6)) rule.source = side();
      if (maybe(0.6)) rule.destination = side();
      if (!rule.protocol && ((rule.source as { ports?: unknown })?.ports || (rule.destination as { ports?: unknown })?.ports))
        rule.protocol = 'TCP';
      return rule;
    });
  const spec = () => {
    const s: Record<string, unknown> = { selector: pick(SELECTORS) };
    if (maybe(0.8)) s.order = pick([1, 10, 100, 100]);
    if (maybe(0.7)) s.ingress = rules();
    if (maybe(0.5)) s.egress = rules();
    return s;
  };
  const policy = (i: number): NetworkPolicy => np(pick(['a', 'b']), `p${i}`, spec());
  const global = (i: number): GlobalNetworkPolicy => {
    const s = spec();
    if (maybe(0.3)) s.namespaceSelector = pick(NS_SELECTORS);
    return gnp(`g${i}`, s);
  };
  const profile = (i: number): Profile =>
    i < 2
      ? nsProfile(['a', 'b'][i]!, maybe() ? { team: pick(['red', 'blue']) } : {})
      : (validateResource({
          apiVersion: 'projectcalico.org/v3',
          kind: 'Profile',
          metadata: { name: 'extra' },
          spec: { ingress: rules(['Allow', 'Deny']), egress: rules(['Allow', 'Deny']), labelsToApply: maybe(0.2) ? { app: 'z' } : {} },
        }) as Profile);
  return { r, pick, maybe, endpoint, policy, global, profile };
}

/** A ruleset as plain sorted data (object identity and map order do not matter). */
function plain(rs: Ruleset) {
  const sorted = <V>(m: Map<string, V>) => [...m].sort(([a], [b]) => (a < b ? -1 : 1));
  return {
    sets: sorted(rs.sets).map(([k, s]) => [k, s.kind, s.comment, s.elements.join(',')]),
    chains: sorted(rs.chains).map(([k, c]) => [k, c.comment, ...c.rules]),
    toWl: sorted(rs.toWl),
    fromWl: sorted(rs.fromWl),
    endpoints: sorted(rs.endpoints),
  };
}

/** What the kernel does with a delta: each item becomes what it says it is after. */
function applyDelta(k: Ruleset, d: RulesetDelta): void {
  for (const s of d.sets) s.after ? k.sets.set(s.name, s.after) : k.sets.delete(s.name);
  for (const c of d.chains) c.after ? k.chains.set(c.name, c.after) : k.chains.delete(c.name);
  for (const e of d.toWl) e.after ? k.toWl.set(e.key, e.after) : k.toWl.delete(e.key);
  for (const e of d.fromWl) e.after ? k.fromWl.set(e.key, e.after) : k.fromWl.delete(e.key);
}

const SEEDS = Number(process.env.POLICY_PROPERTY_SEEDS ?? 16);
const STEPS = 70;

t.test(`incremental compile = fresh compile after random changes (${SEEDS} seeds × ${STEPS} steps)`, async (t) => {
  let checks = 0;
  for (let seed = 1; seed <= SEEDS; seed++) {
    const g = generator(seed * 7919);
    const st = new PolicyState('n1');
    const kernel: Ruleset = { sets: new Map(), chains: new Map(), toWl: new Map(), fromWl: new Map(), endpoints: new Map() };
    const live = new Map<string, PolicyResource>();
    const key = (x: PolicyResource) => `${x.kind}/${x.metadata.namespace ?? ''}/${x.metadata.name}`;
    for (let step = 0; step < STEPS; step++) {
      const burst = g.maybe(0.3) ? 1 + Math.floor(g.r() * 4) : 1;
      for (let b = 0; b < burst; b++) {
        const what = g.pick(['ep', 'ep', 'ep', 'np', 'np', 'gnp', 'profile']);
        const i = Math.floor(g.r() * (what === 'profile' ? 3 : what === 'ep' ? 10 : 5));
        const res: PolicyResource =
          what === 'ep' ? g.endpoint(i) : what === 'np' ? g.policy(i) : what === 'gnp' ? g.global(i) : g.profile(i);
        // remove the resource of that slot (it may be in another namespace now), or put a new version
        const slot = [...live.values()].find((x) => x.kind === res.kind && x.metadata.name === res.metadata.name);
        if (slot && g.maybe(0.3)) {
          st.remove(slot);
          live.delete(key(slot));
        } else {
          if (slot) {
            st.remove(slot);
            live.delete(key(slot));
          }
          st.put(res);
          live.set(key(res), res);
        }
      }
      st.commit();
      applyDelta(kernel, st.takeDelta());
      const all = [...live.values()];
      const inp = {
        endpoints: all.filter((x): x is WorkloadEndpoint => x.kind === 'WorkloadEndpoint'),
        policies: all.filter((x): x is NetworkPolicy => x.kind === 'NetworkPolicy'),
        globalPolicies: all.filter((x): x is GlobalNetworkPolicy => x.kind === 'GlobalNetworkPolicy'),
        profiles: all.filter((x): x is Profile => x.kind === 'Profile'),
      };
      const fresh = plain(compile(inp, 'n1'));
      const got = plain(st.ruleset);
      const k = plain(kernel);
      k.endpoints = got.endpoints; // plans are not in the kernel
      if (JSON.stringify(got) !== JSON.stringify(fresh) || JSON.stringify(k) !== JSON.stringify(fresh)) {
        t.same(got, fresh, `seed ${seed} step ${step}: state = fresh compile`);
        t.same(k, fresh, `seed ${seed} step ${step}: deltas applied = fresh compile`);
        return;
      }
      const views = policyViews(inp);
      for (const e of endpointViews(inp).filter((e) => e.node === 'n1')) {
        const plan = st.ruleset.endpoints.get(e.interfaceName)!;
        for (const dir of ['Ingress', 'Egress'] as const) {
          const want = policiesFor(views, e, dir).map((p) => `${p.kind}/${p.id}`);
          const have = (dir === 'Ingress' ? plan.ingress : plan.egress).policies;
          if (JSON.stringify(want) !== JSON.stringify(have)) {
            t.same(have, want, `seed ${seed} step ${step}: ${e.id} ${dir} policies = a plain scan`);
            return;
          }
        }
      }
      checks++;
    }
  }
  t.equal(checks, SEEDS * STEPS, `${checks} states equal a fresh compile, their deltas replayed, and a plain policy scan`);
});

t.test('a change costs what it touches: a policy selecting one endpoint renders only its chains', async (t) => {
  const st = new PolicyState('n1');
  st.put(nsProfile('a'));
  for (let i = 0; i < 50; i++) st.put(wep('a', `w${i}`, 'n1', `10.0.1.${i + 1}`, { app: `a${i % 10}` }));
  for (let i = 0; i < 100; i++)
    st.put(
      np('a', `p${i}`, {
        order: i,
        selector: `app == 'a${i % 10}'`,
        ingress: [{ action: 'Allow', source: { selector: `app == 'a${(i + 1) % 10}'` } }],
      }),
    );
  st.commit();
  st.takeDelta();
  const p = np('a', 'one', { selector: "app == 'a3'", ingress: [{ action: 'Deny' }] });
  st.put(p);
  st.commit();
  const d = st.takeDelta();
  t.same(
    d.chains.map((c) => `${c.before ? '-' : '+'}${c.name.slice(0, 3)}`).sort(),
    ['+pi-', '+tw-', '-tw-'],
    "the new policy's chain, and the shared chain of the endpoints it selects, replacing theirs",
  );
  t.equal(d.toWl.length, 5, 'the five endpoints with app=a3');
  t.equal(d.sets.length, 0);
  st.remove(p);
  st.commit();
  const back = st.takeDelta();
  t.same(back.chains.map((c) => `${c.before ? '-' : '+'}${c.name.slice(0, 3)}`).sort(), ['+tw-', '-pi-', '-tw-'], 'and back');
});
