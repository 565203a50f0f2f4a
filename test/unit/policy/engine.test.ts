// The engine over a real (in-memory) datastore and a recording nft runner: nothing programmed before the
// first complete list, one transaction per burst of changes, a failed transaction retried as a full one.
import t from 'tap';
import { MemoryDatastore } from '../../../src/datastore/memory.js';
import { ResourceStore } from '../../../src/datastore/resources.js';
import { PolicyEngine, PolicyTable } from '../../../src/policy/index.js';
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
