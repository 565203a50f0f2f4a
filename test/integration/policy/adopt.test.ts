// The policy table across agent restarts, against the real nft in a network namespace: a restarting
// agent adopts the table its previous run left (chains kept, one small transaction, never a `delete
// table`), reaches exactly the ruleset a cold start would, and falls back to replacing the whole table
// when the table left behind cannot be adopted. Also: a delta program on real nft (map entries moved to
// other chains, chains removed) and the kernel's chains afterwards.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { compile, nftRunner, PolicyState, PolicyTable, type NftRunner, type Ruleset } from '../../../src/policy/index.js';
import { isRoot, runTag } from '../../helpers/netns.js';
import { np, nsProfile, wep } from '../../unit/policy/fixtures.js';

if (!isRoot()) {
  t.pass('skipped: needs root for network namespaces');
} else {
  const ns = `${runTag()}pad`.slice(0, 15);
  spawnSync('ip', ['netns', 'add', ns]);
  t.teardown(() => spawnSync('ip', ['netns', 'del', ns]));
  const runner = nftRunner({ netnsPath: `/run/netns/${ns}` });
  const scripts: string[] = [];
  const recording: NftRunner = {
    run: (s) => {
      scripts.push(s);
      return runner.run(s);
    },
    list: () => runner.list!(),
  };
  const nft = (...args: string[]) => spawnSync('ip', ['netns', 'exec', ns, 'nft', ...args], { encoding: 'utf8' });
  const kernelChains = () =>
    [...nft('-t', 'list', 'chains', 'inet').stdout.matchAll(/chain (\S+) \{/g)]
      .map((m) => m[1]!)
      .filter((c) => c !== 'forward' && c !== 'input')
      .sort();
  const kernelSet = (name: string) => nft('list', 'set', 'inet', 'tabby-policy', name).stdout.replace(/\s+/g, ' ');
  const inputs = (withPolicy: string) => ({
    endpoints: [
      wep('a', 'web', 'n1', '10.0.0.1', { app: 'web' }),
      wep('a', 'cli', 'n1', '10.0.0.2', { app: 'cli' }),
      wep('a', 'far', 'n2', '10.0.0.3', { app: 'cli' }),
    ],
    policies: [np('a', 'p', { selector: "app == 'web'", ingress: [{ action: 'Allow', source: { selector: `app == '${withPolicy}'` } }] })],
    globalPolicies: [],
    profiles: [nsProfile('a')],
  });
  const sameAsKernel = (t: Test, rs: Ruleset, what: string) =>
    t.same(kernelChains(), [...rs.chains.keys()].sort(), `${what}: the kernel holds exactly the wanted chains`);

  t.test('restart: adopt the table, keep its chains, no delete table', async (t) => {
    const rs1 = compile(inputs('cli'), 'n1');
    t.equal((await new PolicyTable(recording).program(rs1)).mode, 'full', 'no table yet: the whole table');
    sameAsKernel(t, rs1, 'cold start');
    const again = await new PolicyTable(recording).program(compile(inputs('cli'), 'n1'));
    t.equal(again.mode, 'adopt');
    t.equal(again.kept, rs1.chains.size, 'every chain kept');
    t.notMatch(scripts.at(-1)!, /delete table|add rule inet tabby-policy p/, 'no table replaced, no policy rule written');
    const rs2 = compile(inputs('web'), 'n1');
    const changed = await new PolicyTable(recording).program(rs2);
    t.equal(changed.mode, 'adopt', 'a restart after a policy changed while the agent was down');
    sameAsKernel(t, rs2, 'after adopting a changed ruleset');
    const set = [...rs2.sets.values()][0]!;
    t.match(kernelSet(set.name), /elements = \{ 10\.0\.0\.1 \}/, 'the set refilled with the new members');
  });

  t.test('a table that cannot be adopted is replaced whole', async (t) => {
    const rs = compile(inputs('cli'), 'n1');
    const set = [...rs.sets.keys()][0]!;
    // a set of that name but another type (as an older version might have left it)
    spawnSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], {
      input: `delete table inet tabby-policy\nadd table inet tabby-policy\nadd set inet tabby-policy ${set} { type ipv4_addr; }\nadd map inet tabby-policy to-wl { type ifname : verdict; }\nadd map inet tabby-policy from-wl { type ifname : verdict; }\nadd chain inet tabby-policy forward { type filter hook forward priority filter; policy accept; }\nadd chain inet tabby-policy input { type filter hook input priority filter; policy accept; }\n`,
    });
    const r = await new PolicyTable(recording).program(rs);
    t.equal(r.mode, 'full');
    sameAsKernel(t, rs, 'after the fallback');
  });

  t.test('deltas on the real nft: endpoints moved between shared chains, chains and sets removed', async (t) => {
    const st = new PolicyState('n1');
    const inp = inputs('cli');
    for (const r of [...inp.profiles, ...inp.endpoints, ...inp.policies]) st.put(r);
    st.commit();
    st.takeDelta();
    const table = new PolicyTable(recording);
    await table.program(st.ruleset);
    const step = async (what: string) => {
      st.commit();
      const r = await table.program(st.ruleset, st.takeDelta());
      t.equal(r.mode, 'diff', what);
      sameAsKernel(t, st.ruleset, what);
    };
    st.put(wep('a', 'cli', 'n1', '10.0.0.2', { app: 'web' }));
    await step('cli relabelled web: now selected, moves to the chain web uses');
    st.remove(inp.policies[0]!);
    await step('the policy removed');
    t.equal(nft('-t', 'list', 'sets', 'inet').stdout.includes('set s4-'), false, 'its set removed');
  });
}
