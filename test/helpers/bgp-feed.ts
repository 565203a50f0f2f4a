// The ingest benchmarks' feed (bgp-ingest.ts, agent-ingest.ts): N distinct IPv4 prefixes (/24–/32,
// 20 per attribute set, a realistic mix of AS paths, communities, MEDs), pre-encoded as UPDATEs.
import { encodeUpdate } from '../../src/bgp/codec/message.js';
import { AS4_CAPS, type PathAttributes, type PrefixList } from '../../src/bgp/codec/types.js';
import { emptyPrefixList } from '../../src/bgp/codec/prefix.js';

export const FEEDER_ASN = 65100;
/** The feed's first /24 block: prefix i lies in block FEED_BASE + 256·i. */
export const FEED_BASE = (11 << 24) >>> 0;

let seed = 12345;
const rnd = (n: number): number => {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return (seed >>> 8) % n;
};

/** N distinct prefixes, 20 per attribute set, pre-encoded as UPDATEs (one attribute set each). */
export function buildFeed(n: number, nextHop: string): { msgs: Buffer[]; sets: number; bytes: number } {
  seed = 12345;
  const msgs: Buffer[] = [];
  let bytes = 0;
  const per = 20;
  let made = 0;
  let sets = 0;
  // Distinct prefixes: walk /24s from 11.0.0.0; ~25% of them become a longer prefix (/25–/32) inside it.
  let block = FEED_BASE;
  while (made < n) {
    const count = Math.min(per, n - made);
    const list: PrefixList = { afi: 1, safi: 1, count, addrs: new Uint32Array(count), lens: new Uint8Array(count), pathIds: null };
    for (let i = 0; i < count; i++) {
      const len = rnd(4) === 0 ? 25 + rnd(8) : 24;
      list.addrs[i] = block;
      list.lens[i] = len;
      block = (block + 256) >>> 0;
    }
    const asns = [FEEDER_ASN];
    for (let i = 0, k = 1 + rnd(5); i < k; i++) asns.push(1 + rnd(60000));
    const attrs: PathAttributes = { origin: rnd(10) === 0 ? 2 : 0, asPath: [{ type: 2, asns }], nextHop };
    if (rnd(3) === 0) attrs.med = rnd(1000);
    const nc = rnd(4);
    if (nc) attrs.communities = Array.from({ length: nc }, () => ((FEEDER_ASN << 16) | rnd(50)) >>> 0);
    const m = encodeUpdate({ type: 'update', withdrawn: emptyPrefixList(1), attrs, nlri: list }, AS4_CAPS);
    msgs.push(m);
    bytes += m.length;
    made += count;
    sets++;
  }
  return { msgs, sets, bytes };
}
