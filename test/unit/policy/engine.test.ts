// The engine over a real (in-memory) datastore and a recording nft runner: nothing programmed before the
// first complete list, one transaction per burst of changes, a failed transaction retried as a full one.
import t from 'tap';
import { MemoryDatastore } from '../../../src/datastore/memory.js';
import { ResourceStore } from '../../../src/datastore/resources.js';
import { NftError, PolicyEngine, PolicyTable } from '../../../src/policy/index.js';
import { log } from '../../../src/common/log.js';
import { np, nsProfile, wep } from './fixtures.js';

const until = async (f: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!f() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return f();
};

t.test('engine: list, program, follow changes, retry after a failure', async (t) => {
  const store = new ResourceStore(new MemoryDatastore());
  await store.create(nsProfile('a'));
  await store.create(wep('a', 'web', 'n1', '10.0.0.1', { app: 'web' }));
  const scripts: string[] = [];
  let failNext = false;
  const table = new PolicyTable({
    run: async (s) => {
      if (failNext) {
        failNext = false;
        throw new Error('nft: Operation not permitted');
      }
      scripts.push(s);
    },
  });
  const e = new PolicyEngine({ store, node: 'n1', table, logger: log('test'), retryMs: 50 });
  t.teardown(() => e.stop());
  e.start();
  t.ok(await until(() => scripts.length === 1), 'first program after the list');
  t.match(scripts[0]!, /^table inet tabby-policy\ndelete table inet tabby-policy\ntable inet tabby-policy \{/, 'a full replace');
  t.match(scripts[0]!, /"caliweb" : jump tw-[0-9a-f]{10}/);
  await store.create(np('a', 'deny', { selector: "app == 'web'", ingress: [] }));
  t.ok(await until(() => scripts.length === 2), 'a policy change is one more transaction');
  t.match(scripts[1]!, /^add chain inet tabby-policy pi-/m);
  t.match(scripts[1]!, /^add element inet tabby-policy to-wl \{ "caliweb" : jump tw-/m);
  t.notMatch(scripts[1]!, /delete table/, 'incremental');
  failNext = true;
  await store.delete('NetworkPolicy', 'a/deny');
  t.ok(await until(() => scripts.length === 3), 'the failed transaction is retried');
  t.match(scripts[2]!, /^table inet tabby-policy\ndelete table inet tabby-policy/, 'as a full replace');
  t.equal(e.status().lastError, undefined);
  t.equal(e.status().localEndpoints, 1);
});

t.test('engine: group commit — writes during a transaction join the next one, none starves', async (t) => {
  const store = new ResourceStore(new MemoryDatastore());
  await store.create(nsProfile('a'));
  await store.create(wep('a', 'first', 'n1', '10.0.0.1'));
  // every transaction is held until the test releases it, so "during a transaction" is exact
  const runs: string[] = [];
  const release: (() => void)[] = [];
  const table = new PolicyTable({
    run: (script) => {
      runs.push(script);
      return new Promise<void>((r) => release.push(r));
    },
  });
  const e = new PolicyEngine({ store, node: 'n1', table, logger: log('test') });
  t.teardown(() => {
    e.stop();
    for (const r of release) r();
  });
  e.start();
  t.ok(await until(() => runs.length === 1), 'the first program');
  release.shift()!();
  await e.flush();
  const has = (n: number, ...pods: string[]) => pods.every((p) => runs[n]!.includes(`"cali${p}" : jump`));
  await store.create(wep('a', 'p0', 'n1', '10.0.1.1'));
  t.ok(await until(() => runs.length === 2), 'a write is programmed at once');
  t.ok(has(1, 'p0'));
  for (let i = 1; i <= 4; i++) await store.create(wep('a', `p${i}`, 'n1', `10.0.1.${i + 1}`));
  await new Promise((r) => setTimeout(r, 50));
  t.equal(runs.length, 2, 'nothing else starts while a transaction is in flight');
  release.shift()!();
  t.ok(await until(() => runs.length === 3));
  t.ok(has(2, 'p1', 'p2', 'p3', 'p4'), 'the four writes made meanwhile are the next transaction, together');
  await store.create(wep('a', 'p5', 'n1', '10.0.1.6'));
  release.shift()!();
  t.ok(await until(() => runs.length === 4));
  t.ok(has(3, 'p5'), 'a write during that one is in the one after: nothing waits behind later writes');
  release.shift()!();
  await e.flush();
  t.equal(runs.length, 4);
  t.equal(e.status().localEndpoints, 7);
});

/** A table whose runner stands in for nft refusing interface "calibad"'s element (the integration test
 *  uses the real refusal); what it accepts is kept in `committed`. */
function refusingTable(): { table: PolicyTable; committed: string[] } {
  const committed: string[] = [];
  const table = new PolicyTable({
    run: async (s) => {
      if (s.includes('"calibad"')) throw new NftError('nft transaction failed: Error: refused', '', s);
      committed.push(s);
    },
  });
  return { table, committed };
}

t.test('engine: an endpoint nft refuses is held out and reported; the others of its batch are programmed', async (t) => {
  const store = new ResourceStore(new MemoryDatastore());
  await store.create(nsProfile('a'));
  await store.create(wep('a', 'first', 'n1', '10.0.0.1'));
  const { table, committed } = refusingTable();
  const e = new PolicyEngine({ store, node: 'n1', table, logger: log('test'), retryMs: 50 });
  t.teardown(() => e.stop());
  e.start();
  t.ok(await until(() => committed.length === 1));
  await e.flush();
  const inKernel = (ifn: string) => committed.some((s) => s.includes(`"${ifn}" : jump`));
  await Promise.all([
    store.create(wep('a', 'ok1', 'n1', '10.0.1.1')),
    store.create(wep('a', 'bad', 'n1', '10.0.1.2')),
    store.create(wep('a', 'ok2', 'n1', '10.0.1.3')),
  ]);
  t.ok(await until(() => inKernel('caliok1') && inKernel('caliok2')), 'the endpoints written with it are programmed');
  await e.flush();
  t.notOk(inKernel('calibad'), 'the refused one is not');
  t.same(Object.keys(e.status().refusedEndpoints ?? {}), ['a/n1-k8s-bad-eth0'], 'reported by name');
  t.match(e.statusJson().refusedEndpoints, [{ name: 'a/n1-k8s-bad-eth0', error: /refused/ }]);
  t.equal(e.status().localEndpoints, 3, 'first, ok1, ok2');
  // later changes are not blocked behind it
  await store.create(wep('a', 'ok3', 'n1', '10.0.1.4'));
  t.ok(await until(() => inKernel('caliok3')), 'a later endpoint is programmed');
  // deleted: no longer reported
  await store.delete('WorkloadEndpoint', 'a/n1-k8s-bad-eth0');
  t.ok(await until(() => e.status().refusedEndpoints === undefined), 'gone from the report once deleted');
});

t.test('engine: a refused endpoint at start does not keep the others out', async (t) => {
  const store = new ResourceStore(new MemoryDatastore());
  await store.create(nsProfile('a'));
  for (const p of ['a1', 'bad', 'a2', 'a3']) await store.create(wep('a', p, 'n1', `10.0.2.${p.length + p.charCodeAt(1)}`));
  const { table, committed } = refusingTable();
  const e = new PolicyEngine({ store, node: 'n1', table, logger: log('test'), retryMs: 50 });
  t.teardown(() => e.stop());
  e.start();
  t.ok(await until(() => e.status().refusedEndpoints !== undefined), 'the refused endpoint is found');
  await e.flush();
  t.same(Object.keys(e.status().refusedEndpoints!), ['a/n1-k8s-bad-eth0']);
  t.equal(e.status().localEndpoints, 3);
  t.notOk(
    committed.some((s) => s.includes('"calibad"')),
    'never committed',
  );
});
