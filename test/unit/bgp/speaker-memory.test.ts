// Memory of the speaker per learned prefix, measured in a fresh process with a forced GC: the ingest
// benchmarks' feed (200k IPv4 prefixes /24–/32, 20 per attribute set, AS paths, communities, MEDs) goes
// through the real decoder into a BgpSpeaker from an eBGP peer (in-memory transport, speaker-harness.ts),
// then the peer withdraws everything. What a prefix costs is its Loc-RIB slot plus its share of an
// attribute set; nothing of it may sit in V8's large-object space (a JS array of pointers per table
// there left a dead copy at every doubling and counted against the old generation).
import t from 'tap';
import { lastJsonLine, runModule } from '../../helpers/node-child.js';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const mod = (p: string): string => JSON.stringify(pathToFileURL(path.resolve(here, p)).href);
const N = 200_000;

const code = `
import v8 from 'node:v8';
const { MemHub, memSpeaker, until } = await import(${mod('speaker-harness.js')});
const { buildFeed } = await import(${mod('../../helpers/bgp-feed.js')});
const { encodeUpdate } = await import(${mod('../../../src/bgp/codec/message.js')});
const { AS4_CAPS } = await import(${mod('../../../src/bgp/codec/types.js')});
const { prefixListFromStrings, emptyPrefixList } = await import(${mod('../../../src/bgp/codec/prefix.js')});
const { msgs, sets } = buildFeed(${N}, '10.0.0.2');
const hub = new MemHub();
const a = memSpeaker(hub, '10.0.0.1', { asn: 65000, routerId: '1.1.1.1' });
const b = memSpeaker(hub, '10.0.0.2', { asn: 65100, routerId: '2.2.2.2' });
a.addPeer({ address: '10.0.0.2', asn: 65100, families: ['ipv4'] });
b.addPeer({ address: '10.0.0.1', asn: 65000, families: ['ipv4'] });
let changes = 0;
a.on('changes', (c) => { changes += c.count; });
await a.start();
await b.start();
await until(() => a.peers()[0].state === 'Established', 10000, 'up');
const rx = hub.sessions.get('10.0.0.1>10.0.0.2'); // a's session: what is injected here, a receives from b
const space = (name) => v8.getHeapSpaceStatistics().find((s) => s.space_name === name).space_used_size;
// heap without compiled code (which varies with what the JIT did), plus ArrayBuffers
const held = () => { gc(); gc(); const m = process.memoryUsage(); return { heap: m.heapUsed - space('code_space') - space('code_large_object_space'), ab: m.arrayBuffers, lo: space('large_object_space') }; };
const feed = async (list) => {
  for (const m of list) {
    while (rx.held) await new Promise((r) => setImmediate(r));
    rx.inject(m);
    rx.received.length = 0; // the harness keeps every decoded message for assertions
  }
  await until(() => a.idle, 120000, 'processed');
};
const base = held();
await feed(msgs);
const routes = a.locRib().size;
const attrSets = a.attributeSets;
const full = held();
let all = [...a.locRib().routes()].map((r) => r.prefix);
const wd = [];
for (let i = 0; i < all.length; i += 500) wd.push(encodeUpdate({ type: 'update', withdrawn: prefixListFromStrings(1, all.slice(i, i + 500)), attrs: undefined, nlri: emptyPrefixList(1) }, AS4_CAPS));
all = undefined;
await feed(wd);
wd.length = 0;
const left = a.locRib().size;
const gone = held();
console.log(JSON.stringify({ routes, sets, attrSets, setsLeft: a.attributeSets, changes, left, base, full, gone }));
await Promise.all([a.stop(), b.stop()]);
process.exit(0);
`;

t.test(
  '200k learned prefixes: bytes per prefix in the speaker, none in the large-object space, all gone after a withdraw-all',
  async (t) => {
    const r = runModule(code, { exposeGc: true, timeout: 300_000 });
    t.equal(r.status, 0, r.stderr);
    const m = lastJsonLine<{
      routes: number;
      sets: number;
      attrSets: number;
      changes: number;
      left: number;
      setsLeft: number;
      base: { heap: number; ab: number; lo: number };
      full: { heap: number; ab: number; lo: number };
      gone: { heap: number; ab: number; lo: number };
    }>(r.stdout);
    t.equal(m.routes, N, 'every prefix in the Loc-RIB');
    t.ok(m.attrSets <= m.sets && m.attrSets > 0.99 * m.sets, `about one attribute set per UPDATE of the feed (${m.attrSets} of ${m.sets})`);
    t.equal(m.changes, 2 * N, 'each prefix handed to the agent as learned, then as withdrawn');
    t.equal(m.left, 0, 'no prefix left');
    t.equal(m.setsLeft, 0, 'no attribute set left');
    const total = m.full.heap + m.full.ab - (m.base.heap + m.base.ab);
    const lo = m.full.lo - m.base.lo;
    t.comment(
      `held with ${N} prefixes (${m.sets} attribute sets): ${(total / N).toFixed(1)} B per prefix ` +
        `(heap ${((m.full.heap - m.base.heap) / 1e6).toFixed(2)} MB, ArrayBuffers ${((m.full.ab - m.base.ab) / 1e6).toFixed(2)} MB, ` +
        `large-object space ${(lo / 1e6).toFixed(2)} MB)`,
    );
    // before: 62.6 B per prefix, 3.8 MB in the large-object space (the Loc-RIB's pointer arrays 2.9, Maps 0.9);
    // 8.1 MB left after the withdraw-all (tables at their peak size, 4096 cached attribute sets)
    // now: Loc-RIB slots ~10 B (a 4 B key and a 2 B path id per slot, at most 4/5 full), attribute sets and paths ~27 B (~0.54 KB per set)
    // 35.9–37.1 B seen (21 runs, load 10–17): the bound halfway (geometrically) to the 62.6 B before
    t.ok(total / N < 48, `${(total / N).toFixed(1)} B per prefix < 48`);
    t.ok(lo < 0.5e6, `large-object space grew ${(lo / 1e6).toFixed(2)} MB < 0.5 MB`);
    const left = m.gone.heap + m.gone.ab - (m.base.heap + m.base.ab);
    // what stays: the change batch's arrays at their high-water mark (0.5–1.3 MB with the slices' timing), tables' minimum sizes
    t.ok(left < 4e6, `after the withdraw-all ${(left / 1e6).toFixed(2)} MB left (< 4 MB)`);
  },
);
