// Child process for the IPAM concurrency test: opens the datastore described by argv[2] (JSON), then
// runs `count` autoAssign calls for `node`, one handle each, and prints one JSON line:
// {ips, ms, errors}.
import { openDatastore, type DatastoreConfig } from '../../../src/datastore/index.js';
import { Ipam } from '../../../src/ipam/index.js';

async function main(): Promise<void> {
  const [cfgJson, node, prefix, countText] = process.argv.slice(2);
  const ds = await openDatastore(JSON.parse(cfgJson!) as DatastoreConfig);
  const ipam = new Ipam(ds, { logger: { info() {}, warn() {}, error() {} } });
  const ips: string[] = [];
  const lat: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < Number(countText); i++) {
    const s = performance.now();
    const r = await ipam.autoAssign({ handle: `${prefix}-${i}`, node: node!, num4: 1, attrs: { node: node! } });
    lat.push(performance.now() - s);
    ips.push(...r.ipv4);
  }
  const ms = performance.now() - t0;
  await ds.close();
  lat.sort((a, b) => a - b);
  process.stdout.write(`${JSON.stringify({ ips, ms, p50: lat[Math.floor(lat.length / 2)], p99: lat[Math.floor(lat.length * 0.99)] })}\n`);
}

if (process.argv.length < 6) {
  // Run directly by a test runner scanning the directory: not a test.
  process.stdout.write('1..0 # SKIP helper process of concurrency.test (needs arguments)\n');
  process.exit(0);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`assign-worker: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
