// A child process for datastore tests: opens the datastore described by argv[2] (a DatastoreConfig as
// JSON) and does one job, then prints a JSON summary line on stdout.
//   inc <key> <count>     CAS-increment the number at <key> count times (retry on conflict)
//   put <prefix> <count>  create <prefix>0 .. <prefix>(count-1)
import { openDatastore, DatastoreConflict, type DatastoreConfig } from '../../src/datastore/index.js';

async function main(): Promise<void> {
  const [cfgJson, job, arg, countText] = process.argv.slice(2);
  const ds = await openDatastore(JSON.parse(cfgJson!) as DatastoreConfig);
  const count = Number(countText);
  const t0 = performance.now();
  let conflicts = 0;
  const lat: number[] = [];
  if (job === 'inc') {
    for (let i = 0; i < count; i++) {
      const s = performance.now();
      for (;;) {
        const cur = await ds.get<number>(arg!);
        if (!cur) throw new Error(`${arg} missing`);
        try {
          await ds.update(arg!, cur.value + 1, cur.revision);
          lat.push(performance.now() - s);
          break;
        } catch (e) {
          if (!(e instanceof DatastoreConflict)) throw e;
          conflicts++;
        }
      }
    }
  } else if (job === 'put') {
    for (let i = 0; i < count; i++) await ds.create(`${arg}${i}`, { i, pid: process.pid });
  } else {
    throw new Error(`unknown job ${job}`);
  }
  const ms = performance.now() - t0;
  await ds.close();
  lat.sort((a, b) => a - b);
  const pct = (q: number) => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))] ?? 0;
  process.stdout.write(`${JSON.stringify({ conflicts, ms, p50: pct(0.5), p99: pct(0.99), max: lat[lat.length - 1] ?? 0 })}\n`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`datastore-worker: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
