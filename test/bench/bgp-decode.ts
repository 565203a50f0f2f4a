// Benchmark (prints figures, asserts nothing): encoder and decoder throughput on a synthetic stream of
// 100,000 distinct IPv4 /24s, 20 per attribute set (as INTEROP.md's anchor feed), packed into
// UPDATEs as a real speaker would (≤ 4096 bytes), framed from 64 KiB chunks like a TCP socket.
//   node dist/test/bench/bgp-decode.js [prefixes=100000] [perAttrSet=20]
import { Framer } from '../../src/bgp/codec/framer.js';
import { decodeMessage, encodeUpdate } from '../../src/bgp/codec/message.js';
import { emptyPrefixList } from '../../src/bgp/codec/prefix.js';
import { AS4_CAPS, type PrefixList, type UpdateMessage } from '../../src/bgp/codec/types.js';

const N = Number(process.argv[2] ?? (process.env.BENCH_QUICK ? 20_000 : 100_000)); // BENCH_QUICK: make bench QUICK=1
const PER = Number(process.argv[3] ?? 20);

function build(): Buffer {
  const msgs: Buffer[] = [];
  for (let base = 0; base < N; base += PER) {
    const n = Math.min(PER, N - base);
    const addrs = new Uint32Array(n);
    for (let i = 0; i < n; i++) addrs[i] = (0x0b000000 + (base + i) * 256) >>> 0;
    const nlri: PrefixList = { afi: 1, safi: 1, count: n, addrs, lens: new Uint8Array(n).fill(24), pathIds: null };
    const set = base / PER;
    const u: UpdateMessage = {
      type: 'update',
      withdrawn: emptyPrefixList(1),
      nlri,
      attrs: {
        origin: 0,
        asPath: [{ type: 2, asns: [64512, 64600 + (set % 500), 65000 + (set % 97)] }],
        nextHop: '10.0.0.1',
        med: set % 10,
        communities: [64512 * 65536 + (set % 100)],
      },
    };
    msgs.push(encodeUpdate(u, AS4_CAPS));
  }
  return Buffer.concat(msgs);
}

for (let run = 0; run < 3; run++) {
  const t0 = process.hrtime.bigint();
  build();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(
    `encode run ${run}: ${s.toFixed(3)} s  ${(Math.ceil(N / PER) / s / 1e3).toFixed(0)}k UPDATEs/s  ${(N / s / 1e6).toFixed(2)}M prefixes/s`,
  );
}
const stream = build();
const updates = Math.ceil(N / PER);
console.log(`stream: ${updates} UPDATEs, ${N} prefixes, ${(stream.length / 1e6).toFixed(2)} MB`);
for (let run = 0; run < 5; run++) {
  const t0 = process.hrtime.bigint();
  const f = new Framer();
  let msgs = 0;
  let prefixes = 0;
  for (let p = 0; p < stream.length; p += 65536) {
    for (const frame of f.push(stream.subarray(p, p + 65536))) {
      const m = decodeMessage(frame, AS4_CAPS);
      msgs++;
      if (m.type === 'update') prefixes += m.nlri.count;
    }
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(
    `run ${run}: ${s.toFixed(3)} s  ${(msgs / s / 1e3).toFixed(0)}k messages/s  ${(prefixes / s / 1e6).toFixed(2)}M prefixes/s  (${msgs} msgs, ${prefixes} prefixes)`,
  );
}
