import t from 'tap';
import { compile, diffScript, fullScript, PolicyTable, type Ruleset } from '../../../src/policy/index.js';
import type { GlobalNetworkPolicy, NetworkPolicy } from '../../../src/datastore/resources.js';
import { gnp, np, nsProfile, wep } from './fixtures.js';

const base = () => ({
  endpoints: [
    wep('a', 'web', 'n1', '10.0.0.1', { app: 'web' }, [{ name: 'http', protocol: 'TCP', port: 8080 }]),
    wep('a', 'cli', 'n2', '10.0.0.2', { app: 'cli' }),
    wep('b', 'db', 'n1', '10.0.0.3', { app: 'db' }),
  ],
  policies: [] as NetworkPolicy[],
  globalPolicies: [] as GlobalNetworkPolicy[],
  profiles: [nsProfile('a', { team: 'x' }), nsProfile('b')],
});

t.test('no policy: every local endpoint falls to its profile; remote endpoints get no chains', async (t) => {
  const rs = compile(base(), 'n1');
  t.same([...rs.toWl.keys()].sort(), ['calidb', 'caliweb']);
  t.same(rs.endpoints.get('caliweb'), {
    id: 'a/n1-k8s-web-eth0',
    interfaceName: 'caliweb',
    ingress: { policies: [], profiles: ['kns.a'] },
    egress: { policies: [], profiles: ['kns.a'] },
  });
  t.equal(rs.sets.size, 0);
  t.notOk([...rs.chains.get(rs.toWl.get('caliweb')!)!.rules].some((r) => r.includes('default deny')));
  t.equal(compile({ ...base(), endpoints: [] }, 'n1').toWl.size, 0);
});

t.test('policies per endpoint and direction, in Calico order (order, then name; unordered last)', async (t) => {
  const inp = base();
  inp.policies.push(np('a', 'z-first', { order: 10, selector: "app == 'web'", ingress: [{ action: 'Allow' }] }));
  inp.policies.push(np('a', 'unordered', { selector: 'all()', ingress: [{ action: 'Deny' }] }));
  inp.policies.push(np('a', 'b-second', { order: 100, selector: 'all()', egress: [{ action: 'Allow' }] }));
  inp.policies.push(np('b', 'other-ns', { order: 1, selector: 'all()', ingress: [{ action: 'Allow' }] }));
  inp.globalPolicies.push(gnp('a-second', { order: 100, selector: "app == 'web'", ingress: [{ action: 'Pass' }] }));
  inp.globalPolicies.push(
    gnp('ns-b-only', { order: 5, namespaceSelector: "projectcalico.org/name == 'b'", ingress: [{ action: 'Allow' }] }),
  );
  const rs = compile(inp, 'n1');
  t.same(rs.endpoints.get('caliweb')!.ingress.policies, [
    'NetworkPolicy/a/z-first',
    'GlobalNetworkPolicy/a-second',
    'NetworkPolicy/a/unordered',
  ]);
  t.same(rs.endpoints.get('caliweb')!.egress.policies, ['NetworkPolicy/a/b-second']);
  t.same(rs.endpoints.get('calidb')!.ingress.policies, ['NetworkPolicy/b/other-ns', 'GlobalNetworkPolicy/ns-b-only']);
  const tw = rs.chains.get(rs.toWl.get('caliweb')!)!.rules;
  t.equal(tw.filter((r) => r.includes(' jump pi-')).length, 3, 'one guarded jump per policy');
  t.ok(
    tw.some((r) => r.includes('0x00020000 == 0 drop')),
    'default deny unless a policy passed',
  );
  t.ok(
    tw.indexOf(tw.find((r) => r.includes('jump pri-'))!) > tw.indexOf(tw.find((r) => r.includes('default deny'))!),
    'profiles after the default deny (reached by Pass)',
  );
});

t.test(
  "rule selectors: namespaced by the policy, namespaceSelector over the namespace labels; sets hold every node's endpoints",
  async (t) => {
    const inp = base();
    inp.policies.push(
      np('a', 'p', {
        selector: "app == 'web'",
        ingress: [
          { action: 'Allow', source: { selector: 'all()' } },
          { action: 'Allow', source: { namespaceSelector: "team == 'x'" } },
          { action: 'Allow', protocol: 'TCP', destination: { ports: ['http'] } },
        ],
      }),
    );
    inp.globalPolicies.push(
      gnp('g', { selector: "app == 'db'", ingress: [{ action: 'Allow', source: { selector: "app in {'web', 'cli'}" } }] }),
    );
    const rs = compile(inp, 'n1');
    const el = (comment: string) => [...rs.sets.values()].find((s) => s.family === 4 && s.comment.startsWith(comment))?.elements;
    t.same(el('sel:all()|ns:a|'), ['10.0.0.1', '10.0.0.2'], 'all() inside namespace a only');
    t.same(el('sel:all()|ns:*|nss:team == "x"'), ['10.0.0.1', '10.0.0.2'], 'namespace a carries team=x');
    t.same(el('sel:app in {"web", "cli"}|ns:*'), ['10.0.0.1', '10.0.0.2'], "a global policy's selector is cluster-wide");
    t.same(el('np:http|'), ['10.0.0.1 . tcp . 8080'], "named port resolved from the endpoint's ports");
  },
);

t.test('incremental: a new pod changes set elements and map entries only; a policy change rewrites only its chain', async (t) => {
  const inp = base();
  inp.policies.push(np('a', 'p', { selector: "app == 'web'", ingress: [{ action: 'Allow', source: { selector: "app == 'cli'" } }] }));
  const r1 = compile(inp, 'n1');
  inp.endpoints.push(wep('a', 'cli2', 'n3', '10.0.0.9', { app: 'cli' }));
  const r2 = compile(inp, 'n1');
  const d = diffScript(r1, r2);
  t.same(
    d.script.trim().split('\n'),
    [`add element inet tabby-policy ${[...r1.sets.keys()][0]} { 10.0.0.9 }`],
    'remote pod: one element, no rule',
  );
  inp.endpoints.push(wep('b', 'db2', 'n1', '10.0.0.10', { app: 'db' }));
  const r3 = compile(inp, 'n1');
  const d3 = diffScript(r2, r3);
  t.equal(d3.stats.chains, 0, 'a local pod with the same policies and profiles as another shares its chains');
  t.equal(d3.stats.mapEntries, 2, 'its two map entries');
  t.notMatch(d3.script, /flush chain/);
  inp.policies[0] = np('a', 'p', { selector: "app == 'web'", ingress: [{ action: 'Deny', source: { selector: "app == 'cli'" } }] });
  const r4 = compile(inp, 'n1');
  const d4 = diffScript(r3, r4);
  t.equal(d4.stats.chains, 2, "the policy's new chain and the new chain of the one endpoint it selects");
  t.match(d4.script, /^add chain inet tabby-policy pi-/m);
  t.equal(d4.stats.mapEntries, 1);
  t.equal(d4.stats.deleted, 2, 'the two chains they replace');
  t.equal(d4.script.match(/^add rule /gm)?.length, r4.chains.get(r4.toWl.get('caliweb')!)!.rules.length + 1, 'no other rule written');
  inp.policies = [];
  const r5 = compile(inp, 'n1');
  const d5 = diffScript(r4, r5);
  t.match(d5.script, /delete chain inet tabby-policy pi-/);
  t.match(d5.script, /delete set inet tabby-policy s4-/);
  t.ok(
    d5.script.indexOf(`flush chain inet tabby-policy ${r4.toWl.get('caliweb')}`) < d5.script.indexOf('delete chain'),
    'the jump goes before the chain it jumps to',
  );
  t.equal(diffScript(r5, compile(inp, 'n1')).script, '', 'no change, no transaction');
});

t.test('PolicyTable: full replace first, then diffs; a failure makes the next one full again; no endpoint → table deleted', async (t) => {
  const scripts: string[] = [];
  let fail = false;
  const table = new PolicyTable({
    run: async (s) => {
      scripts.push(s);
      if (fail) throw new Error('nft failed');
    },
  });
  const inp = base();
  const r1 = await table.program(compile(inp, 'n1'));
  t.equal(r1.mode, 'full');
  t.match(scripts[0]!, /^table inet tabby-policy\ndelete table inet tabby-policy\ntable inet tabby-policy \{/);
  inp.endpoints.push(wep('a', 'x', 'n2', '10.0.0.7'));
  t.equal((await table.program(compile(inp, 'n1'))).mode, 'none', 'a remote endpoint nobody selects changes nothing here');
  inp.policies.push(np('a', 'p', { selector: 'all()', ingress: [{ action: 'Allow', source: { selector: 'all()' } }] }));
  fail = true;
  await t.rejects(table.program(compile(inp, 'n1')));
  fail = false;
  t.equal((await table.program(compile(inp, 'n1'))).mode, 'full');
  t.equal((await table.program(compile({ ...inp, endpoints: [] }, 'n1'))).mode, 'full');
  t.equal(scripts.at(-1), 'table inet tabby-policy\ndelete table inet tabby-policy\n');
  t.equal((await table.program(null)).mode, 'none');
});

t.test('full script: every chain defined before a rule jumps to it', async (t) => {
  const inp = base();
  inp.policies.push(np('a', 'p', { selector: 'all()', ingress: [{ action: 'Allow' }] }));
  const s = fullScript(compile(inp, 'n1') as Ruleset);
  for (const m of s.matchAll(/jump ([\w-]+)/g)) t.ok(s.indexOf(`chain ${m[1]} {`) < m.index!, `${m[1]} defined first`);
});

t.test('the selector index picks exactly the policies a full scan picks, in the same order', async (t) => {
  const { policyIndex, policiesFor, policyViews, endpointViews } = await import('../../../src/policy/model.js');
  const inp = base();
  const sels = [
    "app == 'web'",
    "app == 'web' && tier == 'x'",
    "tier == 'x' && app == 'web'",
    "app != 'web'",
    'all()',
    "has(app) || app == 'db'",
    "app in {'cli', 'db'}",
    "projectcalico.org/namespace == 'a'",
    "!(app == 'web')",
  ];
  sels.forEach((s, i) =>
    inp.policies.push(
      np(i % 2 ? 'a' : 'b', `p${i}`, { order: 10 - i, selector: s, ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] }),
    ),
  );
  sels.forEach((s, i) => inp.globalPolicies.push(gnp(`g${i}`, { order: i, selector: s, ingress: [{ action: 'Deny' }] })));
  const all = policyViews(inp);
  const idx = policyIndex(all);
  for (const e of endpointViews(inp))
    for (const dir of ['Ingress', 'Egress'] as const) {
      t.same(
        idx(e, dir).map((p) => p.id),
        policiesFor(all, e, dir).map((p) => p.id),
        `${e.id} ${dir}`,
      );
    }
});

t.test('a family no endpoint has: rules needing its (empty) sets are left out, others kept; its first endpoint brings them', async (t) => {
  const inp = base();
  inp.policies.push(
    np('a', 'p', {
      selector: "app == 'web'",
      ingress: [
        { action: 'Allow', source: { selector: "app == 'cli'" } },
        { action: 'Deny', source: { notSelector: "app == 'db'" } },
      ],
    }),
  );
  const chainOf = (rs: Ruleset) => [...rs.chains.values()].find((c) => c.comment === 'NetworkPolicy a/p ingress')!.rules;
  const v4 = compile(inp, 'n1');
  t.same(
    chainOf(v4).map((r) => r.split(' ').slice(0, 5).join(' ')),
    ['meta nfproto ipv4 ip saddr', 'meta nfproto ipv4 ip saddr', 'meta nfproto ipv6 ip6 saddr'],
    'selector rule: IPv4 only; notSelector rule: both (an empty set negated matches everything)',
  );
  t.same([...v4.sets.values()].map((s) => s.family).sort(), [4, 4, 6]);
  inp.endpoints.push({
    ...wep('b', 'six', 'n2', '10.0.0.20'),
    spec: { ...wep('b', 'six', 'n2', '10.0.0.20').spec, ipNetworks: ['fd00::20/128'] },
  });
  const both = compile(inp, 'n1');
  t.equal(chainOf(both).length, 4, 'an IPv6 endpoint anywhere: the IPv6 selector rule too');
  t.ok(chainOf(both).some((r) => r.startsWith('meta nfproto ipv6 ip6 saddr @s6-')));
});
