// What a peer's flush allocates for itself: a session of 200k learned prefixes drops (TCP loss, no
// graceful restart) and the speaker lists the peer's prefixes before removing them in slices. The list
// is sized once from the peer's route count: grown by doubling from 256 entries it allocated twice its
// final size, and the dead copies (~1.3 MB at 200k) were ArrayBuffers at the agent's RSS peak, which is
// in its withdraw-all. Typed arrays made while the flush runs are counted by wrapping their
// constructors in the child before the speaker's modules load.
import t from 'tap';
import { lastJsonLine, runModule } from '../../helpers/node-child.js';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const mod = (p: string): string => JSON.stringify(pathToFileURL(path.resolve(here, p)).href);
const N = 200_000;

const code = `
let counting = false;
const made = new Map();
for (const name of ['Int32Array', 'Uint8Array', 'Uint16Array', 'Uint32Array']) {
  const Orig = globalThis[name];
  const Counted = class extends Orig {
    constructor(...a) {
      super(...a);
      if (counting && !(a[0] instanceof ArrayBuffer)) made.set(name, (made.get(name) ?? 0) + this.byteLength);
    }
  };
  Object.defineProperty(Counted, 'name', { value: name });
  globalThis[name] = Counted;
}
const { MemHub, memSpeaker, until } = await import(${mod('speaker-harness.js')});
const { buildFeed } = await import(${mod('../../helpers/bgp-feed.js')});
const { msgs } = buildFeed(${N}, '10.0.0.2');
const hub = new MemHub();
const a = memSpeaker(hub, '10.0.0.1', { asn: 65000, routerId: '1.1.1.1' });
const b = memSpeaker(hub, '10.0.0.2', { asn: 65100, routerId: '2.2.2.2' });
a.addPeer({ address: '10.0.0.2', asn: 65100, families: ['ipv4'] });
b.addPeer({ address: '10.0.0.1', asn: 65000, families: ['ipv4'] });
await a.start();
await b.start();
await until(() => a.peers()[0].state === 'Established', 10000, 'up');
const rx = hub.sessions.get('10.0.0.1>10.0.0.2');
for (const m of msgs) {
  while (rx.held) await new Promise((r) => setImmediate(r));
  rx.inject(m);
  rx.received.length = 0;
}
await until(() => a.idle, 120000, 'processed');
const routes = a.locRib().size;
let removed = -1;
const flushed = new Promise((r) => a.on('flushed', (e) => { removed = e.removed; r(); }));
counting = true;
rx.kill();
await flushed;
counting = false;
const bytes = [...made.values()].reduce((x, y) => x + y, 0);
console.log(JSON.stringify({ routes, removed, left: a.locRib().size, bytes, made: Object.fromEntries(made) }));
await Promise.all([a.stop(), b.stop()]);
`;

t.test('a dropped session of 200k prefixes: the flush lists them in arrays sized once', async (t) => {
  const r = runModule(code, { timeout: 300_000 });
  t.equal(r.status, 0, r.stderr);
  const m = lastJsonLine<{ routes: number; removed: number; left: number; bytes: number; made: Record<string, number> }>(r.stdout);
  t.equal(m.routes, N, 'every prefix learned');
  t.equal(m.removed, N, 'every prefix flushed');
  t.equal(m.left, 0, 'the Loc-RIB is empty');
  t.comment(`typed arrays made during the flush: ${(m.bytes / 1e6).toFixed(2)} MB (${JSON.stringify(m.made)})`);
  // the list itself is 5 B per prefix (1.0 MB); before: 2.6 MB for it alone (16 doublings from 256)
  t.ok(m.bytes < 2.5e6, `${(m.bytes / 1e6).toFixed(2)} MB of typed arrays < 2.5 MB (the list once, 1.0 MB, and the tables shrinking)`);
});
