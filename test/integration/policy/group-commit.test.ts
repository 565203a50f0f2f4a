// The policy engine's endpoint programming on the real kernel. Eight endpoints written at once → at
// most two transactions (group commit; counted at the runner: each call is one batch, one generation of
// the kernel's ruleset), none committed by an `nft` process (`nft monitor` prints "new generation … by
// process <pid> (<comm>)" per commit; libnftables commits from the engine's process), and every one of
// the eight in the to-wl map. A
// failed transaction commits nothing (nft's batch is all or nothing) and surfaces as an NftError. An
// endpoint nft refuses (an interface name longer than IFNAMSIZ, written to the datastore past
// validation) is held out and reported; the endpoints written with it are programmed.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { MemoryDatastore } from '../../../src/datastore/memory.js';
import { ResourceStore, resourceKey, storeName } from '../../../src/datastore/resources.js';
import { NftError, PolicyEngine, PolicyTable, nftRunner, type NftRunner } from '../../../src/policy/index.js';
import { log } from '../../../src/common/log.js';
import { isRoot, runTag } from '../../helpers/netns.js';
import { nsProfile, wep } from '../../unit/policy/fixtures.js';

const until = async (f: () => boolean, ms = 30_000) => {
  const end = Date.now() + ms;
  while (!f() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return f();
};

if (!isRoot()) {
  t.pass('skipped: needs root for network namespaces');
} else {
  const ns = `${runTag()}pgc`.slice(0, 15);
  spawnSync('ip', ['netns', 'add', ns]);
  t.teardown(() => spawnSync('ip', ['netns', 'del', ns]));
  const nft = (...args: string[]) => spawnSync('ip', ['netns', 'exec', ns, 'nft', ...args], { encoding: 'utf8' });
  const toWl = () => nft('list', 'map', 'inet', 'tabby-policy', 'to-wl').stdout;

  // The kernel's own record of commits in this netns.
  const monitor = spawn('ip', ['netns', 'exec', ns, 'nft', 'monitor'], { stdio: ['ignore', 'pipe', 'ignore'] }); // stderr: its own cache's warnings
  t.teardown(() => monitor.kill());
  let out = '';
  monitor.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  const commits = (text = out) => [...text.matchAll(/^# new generation \d+ by process \d+ \((.*)\)$/gm)].map((m) => m[1]!);
  // The monitor prints late under load: a marker commit of our own brackets the commits to count.
  let marks = 0;
  const mark = async (): Promise<{ start: number; end: number }> => {
    const tag = `tabby-mark-${++marks}`;
    nft('add', 'table', 'inet', tag);
    nft('delete', 'table', 'inet', tag);
    const re = new RegExp(`^delete table inet ${tag}\\n# new generation [^\\n]*\\n`, 'm');
    await until(() => re.test(out));
    const m = re.exec(out);
    const start = out.indexOf(`add table inet ${tag}\n`);
    if (!m || start < 0) return { start: out.length, end: out.length }; // missed by the monitor
    return { start, end: m.index + m[0].length };
  };

  t.test('eight endpoints at once: at most two transactions, no nft process', async (t) => {
    // the monitor is listening once it reports a commit made after it started
    for (let i = 0; i < 100 && !commits().length; i++) {
      nft('add', 'table', 'inet', 'tabby-probe');
      nft('delete', 'table', 'inet', 'tabby-probe');
      await new Promise((r) => setTimeout(r, 100));
    }
    t.ok(commits().length, 'nft monitor sees commits');

    const store = new ResourceStore(new MemoryDatastore());
    await store.create(nsProfile('a'));
    await store.create(wep('a', 'first', 'n1', '10.0.0.1'));
    const runner = nftRunner({ netnsPath: `/run/netns/${ns}` });
    t.equal(runner.via, 'libnftables', 'transactions through libnftables');
    let runs = 0;
    const counted: NftRunner = {
      via: runner.via,
      list: () => runner.list!(),
      run: (s) => {
        runs++;
        return runner.run(s);
      },
    };
    const e = new PolicyEngine({ store, node: 'n1', table: new PolicyTable(counted), logger: log('test') });
    t.teardown(() => e.stop());
    e.start();
    t.ok(await until(() => toWl().includes('"califirst"')), 'the first endpoint is programmed');
    await e.flush();
    const from = (await mark()).end;
    const runsBefore = runs;
    await Promise.all(Array.from({ length: 8 }, (_, i) => store.create(wep('a', `p${i}`, 'n1', `10.0.1.${i + 1}`))));
    t.ok(await until(() => Array.from({ length: 8 }, (_, i) => `"calip${i}"`).every((n) => toWl().includes(n))), 'all eight in to-wl');
    await e.flush();
    const n = runs - runsBefore;
    t.ok(n >= 1 && n <= 2, `8 endpoint changes → ${n} transaction(s) (≤ 2)`);
    // (under heavy load the monitor can miss events — a full socket buffer — but never invents one)
    const mine = commits(out.slice(from, (await mark()).start));
    t.same(
      mine.filter((c) => c === 'nft'),
      [],
      `no transaction committed by an nft process (seen: ${mine.join(', ') || 'none'})`,
    );
    t.equal(e.status().localEndpoints, 9);
    t.equal(e.statusJson().nft, 'libnftables', '/status says how transactions are made');
  });

  t.test('an endpoint nft refuses is held out and reported, the rest of its batch programmed', async (t) => {
    const ds = new MemoryDatastore();
    const store = new ResourceStore(ds);
    await store.create(nsProfile('b'));
    await store.create(wep('b', 'q0', 'n1', '10.0.2.1'));
    const e = new PolicyEngine({
      store,
      node: 'n1',
      table: new PolicyTable(nftRunner({ netnsPath: `/run/netns/${ns}` })),
      logger: log('test'),
    });
    t.teardown(() => e.stop());
    e.start();
    t.ok(await until(() => toWl().includes('"caliq0"')));
    await e.flush();
    const bad = wep('b', 'q2', 'n1', '10.0.2.3');
    bad.spec.interfaceName = 'caliq2-far-too-long-a-name'; // nft: "String exceeds maximum length of 16"
    await Promise.all([
      store.create(wep('b', 'q1', 'n1', '10.0.2.2')),
      ds.create(resourceKey('WorkloadEndpoint', storeName(bad)), bad),
      store.create(wep('b', 'q3', 'n1', '10.0.2.4')),
    ]);
    t.ok(await until(() => toWl().includes('"caliq1"') && toWl().includes('"caliq3"')), 'the two valid endpoints are programmed');
    t.ok(await until(() => e.status().refusedEndpoints !== undefined), 'the refused one is reported');
    t.match(e.statusJson().refusedEndpoints, [{ name: 'b/n1-k8s-q2-eth0', error: /exceeds maximum length/ }]);
    t.notMatch(toWl(), /caliq2/, 'and has no map entry (its traffic is dropped)');
  });

  t.test('the fallback without libnftables: an nft process per transaction, same result', async (t) => {
    const store = new ResourceStore(new MemoryDatastore());
    await store.create(nsProfile('c'));
    const runner = nftRunner({ netnsPath: `/run/netns/${ns}`, process: true });
    t.equal(runner.via, 'process');
    const e = new PolicyEngine({ store, node: 'n1', table: new PolicyTable(runner), logger: log('test') });
    t.teardown(() => e.stop());
    e.start();
    await e.flush();
    const from = (await mark()).end;
    await Promise.all(Array.from({ length: 4 }, (_, i) => store.create(wep('c', `r${i}`, 'n1', `10.0.3.${i + 1}`))));
    t.ok(await until(() => Array.from({ length: 4 }, (_, i) => `"calir${i}"`).every((n) => toWl().includes(n))), 'all four in to-wl');
    await e.flush();
    const mine = commits(out.slice(from, (await mark()).start));
    t.ok(
      mine.every((c) => c === 'nft'),
      `committed by nft processes (seen: ${mine.join(', ') || 'none'})`,
    );
    // a netns that cannot be entered: no context, the process runner, which then fails loudly
    const lost = nftRunner({ netnsPath: `/run/netns/${ns}-none` });
    t.equal(lost.via, 'process');
    const err = await lost.run('add table inet tabby-x\n').then(
      () => undefined,
      (e: unknown) => e,
    );
    t.match(String(err), /No such file or directory/, `refused: ${String(err)}`);
  });

  t.test('a failed transaction commits nothing and is an NftError with nft’s message', async (t) => {
    const runner = nftRunner({ netnsPath: `/run/netns/${ns}` });
    const before = toWl();
    const err = await runner
      .run('add element inet tabby-policy to-wl { "calibad" : drop }\nadd rule inet tabby-policy no-such-chain drop\n')
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    t.ok(err instanceof NftError, 'NftError');
    t.match((err as Error).message, /No such file or directory/, 'nft’s own message');
    t.equal(toWl(), before, 'the map is as it was: the element of the failed batch is not there');
  });
}
