// Bounded fuzz run: mutated UPDATEs (byte flips, truncation, garbage tails, length fields patched so
// the body decoder sees them) through the decoder and into a live speaker. Nothing may throw except
// BgpMessageError from the decoder; the speaker must never fail internally, never hang, and must
// not leak (all interned attribute sets released once the peer's routes are gone).
// TABBY_FUZZ_ITERATIONS (default 100000) sets the number of messages; `make fuzz` runs more. Each run
// draws new mutations (test/helpers/seed.ts: a failure prints the TABBY_TEST_SEED that repeats them).
import t from 'tap';
import { Buffer } from 'node:buffer';
import { until, establishedPair } from './speaker-harness.js';
import { decodeMessage } from '../../../src/bgp/codec/message.js';
import { AS4_CAPS, BgpMessageError } from '../../../src/bgp/codec/types.js';
import { attr, update, valid, ORIGIN, AS_PATH, NEXT_HOP, MED } from './update-bytes.js';
import { seeded } from '../../helpers/seed.js';

const N = Number(process.env.TABBY_FUZZ_ITERATIONS ?? 100_000);

const seeds: Buffer[] = [
  update({ attrs: valid(), nlri: ['10.1.0.0/16', '10.2.3.0/24', '10.9.9.9/32'] }),
  update({
    withdrawn: ['10.1.0.0/16'],
    attrs: [ORIGIN(1), AS_PATH(65001, 65002), NEXT_HOP('10.0.0.9'), MED(5), attr(0xc0, 8, [0, 1, 0, 2, 0xff, 0xff, 0xff, 0x01])],
    nlri: ['10.4.0.0/22'],
  }),
  update({ withdrawn: ['10.2.3.0/24', '0.0.0.0/0'] }),
  update({
    attrs: [...valid(), attr(0x80, 9, [1, 2, 3, 4]), attr(0x80, 10, [5, 6, 7, 8, 9, 9, 9, 9]), attr(0xc0, 32, Buffer.alloc(12, 1))],
    nlri: ['172.16.0.0/12'],
  }),
  update({
    attrs: [
      ORIGIN(0),
      AS_PATH(),
      attr(0x80, 14, [0, 2, 1, 16, 0xfd, 0, ...Buffer.alloc(14), 0, 64, 0xfd, 0, 0, 1, 0, 0, 0, 0]),
      attr(0x40, 5, [0, 0, 0, 100]),
    ],
  }),
  update({ attrs: [attr(0x80, 15, [0, 2, 1, 64, 0xfd, 0, 0, 1, 0, 0, 0, 0])] }),
  update({
    attrs: [...valid(), attr(0xc0, 16, Buffer.alloc(16, 2)), attr(0xc0, 7, [0, 0, 0xfd, 0xe8, 10, 0, 0, 1]), attr(0x40, 6, [])],
    nlri: ['10.7.0.0/16'],
  }),
];

function mutate(rnd: (n: number) => number, src: Buffer): Buffer {
  let b = Buffer.from(src);
  const kind = rnd(6);
  if (kind === 0 || kind === 5) for (let i = 0, n = 1 + rnd(4); i < n; i++) b[19 + rnd(b.length - 19)] = rnd(256);
  else if (kind === 1) b = b.subarray(0, 19 + rnd(b.length - 19));
  else if (kind === 2) b = Buffer.concat([b, Buffer.from(Array.from({ length: 1 + rnd(40) }, () => rnd(256)))]);
  else if (kind === 3) {
    const p = 19 + rnd(b.length - 19);
    b[p] = (b[p]! + (rnd(2) ? 1 : -1)) & 255;
  } else {
    const p = 19 + rnd(Math.max(1, b.length - 21));
    b.writeUInt16BE(rnd(65536), Math.min(p, b.length - 2));
  }
  if (rnd(4) !== 0 && b.length >= 19) b.writeUInt16BE(Math.min(b.length, 0xffff), 16); // keep the header consistent most of the time
  return b;
}

t.test(`fuzz: ${N} mutated UPDATEs never crash, hang or leak`, async (t) => {
  const rnd = seeded(t).int;
  const { b, rx } = await establishedPair(t, {}, ['ipv4', 'ipv6']);
  let rejected = 0,
    accepted = 0,
    foreign = 0;
  const started = Date.now();
  for (let i = 0; i < N; i++) {
    const msg = mutate(rnd, seeds[rnd(seeds.length)]!);
    try {
      const m = decodeMessage(msg, AS4_CAPS);
      accepted++;
      if (m.type === 'update') rx.emit('update', m);
    } catch (e) {
      if (e instanceof BgpMessageError) rejected++;
      else {
        foreign++;
        t.fail(`decoder threw ${(e as Error).name}: ${(e as Error).message} on ${msg.toString('hex')}`);
      }
    }
    if ((i & 1023) === 1023) await until(() => b.idle, 10_000, 'speaker drained the queue');
  }
  await until(() => b.idle, 10_000, 'speaker drained the queue');
  t.equal(foreign, 0, 'only BgpMessageError from the decoder');
  t.equal(b.internalErrors, 0, 'the speaker never failed on decoded input');
  t.ok(
    accepted > N / 20 && rejected > N / 20,
    `both paths exercised (${accepted} decoded, ${rejected} rejected, ${b.locRib().size} routes)`,
  );
  t.comment(`${N} messages in ${Date.now() - started} ms`);
  // No leak: once the peer's routes go, every interned attribute set is released.
  rx.kill();
  await until(() => b.locRib().size === 0, 10_000, 'routes flushed');
  t.equal(b.attributeSets, 0, 'no attribute set left behind');
});
