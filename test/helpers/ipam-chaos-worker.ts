// An IPAM client for the fault suite: allocates one address per handle and releases some, forever
// (until killed), appending one line per ACKNOWLEDGED operation: `A <handle> <ip>` / `R <handle>`
// (and `r <handle>` just before a release starts).
//   argv: <store dir> <worker id> <ack file> <node>
// Its random choices come from TABBY_TEST_SEED (the suite gives each worker one from its own stream).
import fs from 'node:fs';
import { prng, runSeed } from './seed.js';
import { FileDatastore } from '../../src/datastore/file.js';
import { Ipam } from '../../src/ipam/index.js';

const [dir, id, ackFile, node] = process.argv.slice(2);
if (!node) {
  process.stdout.write('1..0 # SKIP helper process of the IPAM fault suite (needs arguments)\n');
  process.exit(0);
}
const ds = new FileDatastore(dir!);
const ipam = new Ipam(ds, { logger: { info() {}, warn() {}, error() {} } });
const ack = fs.openSync(ackFile!, 'a');
const held: string[] = [];
const random = prng(runSeed());
const run = async (): Promise<void> => {
  for (let n = 0; ; n++) {
    const handle = `chaos.${id}.${n}`;
    const r = await ipam.autoAssign({ handle, node: node!, num4: 1, attrs: { node: node! } });
    fs.writeSync(ack, `A ${handle} ${r.ipv4[0]!.split('/')[0]}\n`);
    held.push(handle);
    if (held.length > 3 || random() < 0.4) {
      const h = held.splice(random.int(held.length), 1)[0]!;
      fs.writeSync(ack, `r ${h}\n`); // about to release: a kill from here on may or may not have released it
      await ipam.releaseByHandle(h);
      fs.writeSync(ack, `R ${h}\n`);
    }
  }
};
run().catch((e: unknown) => {
  process.stderr.write(`ipam-chaos-worker: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
