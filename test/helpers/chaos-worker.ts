// A writer for the datastore fault suite: CAS-increments random counters in a file store forever (until
// killed) and appends one line per ACKNOWLEDGED increment to its ack file: `<key> <revision> <value>`.
// It checks its own view never goes back in revision (exit 3), stops on DatastoreCorrupt (exit 4, the
// offset on stderr), and counts writes refused for lack of space or a read-only store (not acknowledged).
//   argv: <store dir> <ack file> <number of keys> <options JSON: {compactBytes, dieInCompaction}>
// dieInCompaction = probability of SIGKILLing itself at each compaction step (a kill inside compaction).
// Its random choices come from TABBY_TEST_SEED (the suite gives each worker one from its own stream).
import fs from 'node:fs';
import { prng, runSeed } from './seed.js';
import { FileDatastore } from '../../src/datastore/file.js';
import { DatastoreConflict, DatastoreCorrupt, DatastoreUnavailable } from '../../src/datastore/types.js';

async function main(): Promise<void> {
  const [dir, ackFile, keysText, optsJson] = process.argv.slice(2);
  const o = JSON.parse(optsJson ?? '{}') as { compactBytes?: number; dieInCompaction?: number };
  const random = prng(runSeed());
  const ds = new FileDatastore(dir!, {
    compactBytes: o.compactBytes ?? 4096,
    historyKeep: 8, // a small snapshot: compaction every few KB
    onCompactStep: () => {
      if (random() < (o.dieInCompaction ?? 0)) process.kill(process.pid, 'SIGKILL');
    },
  });
  const keys = Number(keysText);
  const ack = fs.openSync(ackFile!, 'a');
  let lastRev = 0;
  for (;;) {
    const key = `/chaos/c${random.int(keys)}`;
    try {
      const rev = await ds.revision();
      if (rev < lastRev) {
        process.stderr.write(`BACKWARDS ${lastRev} -> ${rev}\n`);
        process.exit(3);
      }
      lastRev = rev;
      const cur = await ds.get<number>(key);
      // Missing only when this process could not replay the log past damage: the write says why.
      const kv = await ds.update(key, (cur?.value ?? 0) + 1, cur?.revision ?? 0);
      if (kv.revision < lastRev) {
        process.stderr.write(`BACKWARDS ${lastRev} -> ${kv.revision}\n`);
        process.exit(3);
      }
      lastRev = kv.revision;
      fs.writeSync(ack, `${key} ${kv.revision} ${kv.value}\n`);
    } catch (e) {
      if (e instanceof DatastoreConflict) continue;
      if (e instanceof DatastoreCorrupt) {
        process.stderr.write(`CORRUPT ${e.offset}\n`);
        process.exit(4);
      }
      if (e instanceof DatastoreUnavailable) {
        fs.writeSync(ack, `REFUSED ${e.message.includes('ENOSPC') ? 'ENOSPC' : 'OTHER'}\n`);
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      throw e;
    }
  }
}

if (process.argv.length < 6) {
  process.stdout.write('1..0 # SKIP helper process of the fault suite (needs arguments)\n');
  process.exit(0);
}
main().catch((e: unknown) => {
  process.stderr.write(`chaos-worker: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
