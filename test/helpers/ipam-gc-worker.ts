// One IPAM garbage collector as tabby-node runs it (src/ipam/gc.ts), for the takeover test: argv
// <store dir> <holder> <graceMs> <leaseMs>; prints one line per tick where it holds the lease.
import { FileDatastore } from '../../src/datastore/file.js';
import { Ipam, IpamGc } from '../../src/ipam/index.js';

const [dir, holder, grace, lease] = process.argv.slice(2);
if (!lease) {
  process.stdout.write('1..0 # SKIP helper process of the IPAM GC test (needs arguments)\n');
  process.exit(0);
}
const ds = new FileDatastore(dir!);
const ipam = new Ipam(ds);
const gc = new IpamGc({ ds, ipam, holder: holder!, graceMs: Number(grace), leaseMs: Number(lease), intervalMs: Number(lease) / 5 });
const loop = async (): Promise<void> => {
  for (;;) {
    const r = await gc.tick().catch((e: unknown) => {
      process.stderr.write(`${String(e)}\n`);
      return undefined;
    });
    if (r?.leader) process.stdout.write(`${JSON.stringify({ holder, released: r.releasedIps })}\n`);
    await new Promise((res) => setTimeout(res, Number(lease) / 5));
  }
};
void loop();
