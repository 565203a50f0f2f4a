// tabbyctl ipam, run as a user runs it: the compiled CLI against a file datastore in a temp dir.
import { runTabbyctl } from '../../helpers/tabbyctl.js';
import { NODES_PREFIX, POOLS_PREFIX } from '../../../src/datastore/keys.js';
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileDatastore } from '../../../src/datastore/file.js';
import { Ipam } from '../../../src/ipam/index.js';
import yargs from 'yargs';
import { ipamCommand } from '../../../src/cli/commands/ipam.js';
import { runTag } from '../../helpers/run-tag.js';

const _cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src/cli/main.js');

/** The ipam command in this process (fast); stdout captured. */
async function inProcess(dir: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  Object.assign(process.env, { DATASTORE_TYPE: 'file', TABBY_DATASTORE_DIR: dir, TABBY_CONFIG: path.join(dir, 'none.cfg') });
  const write = process.stdout.write.bind(process.stdout);
  let stdout = '';
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  }) as typeof process.stdout.write;
  process.exitCode = 0;
  try {
    await yargs(args)
      .command(ipamCommand)
      .strict()
      .fail((msg, err) => {
        throw err ?? new Error(msg);
      })
      .parseAsync();
  } finally {
    process.stdout.write = write;
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { code, stdout, stderr: '' };
}

const tabbyctl = (dir: string, args: string[]) =>
  runTabbyctl(args, {
    env: { DATASTORE_TYPE: 'file', TABBY_DATASTORE_DIR: dir, TABBY_CONFIG: path.join(dir, 'none.cfg') },
    timeoutMs: 30_000,
  });

t.test('ipam show / --show-blocks / --ip / check / release / configure', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${runTag()}ipcli-`));
  fs.writeFileSync(path.join(dir, 'none.cfg'), '');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const ds = new FileDatastore(dir);
  await ds.create(`${POOLS_PREFIX}pool-a`, { metadata: { name: 'pool-a' }, spec: { cidr: '10.20.0.0/24', blockSize: 26 } });
  await ds.create(`${NODES_PREFIX}n1`, { metadata: { name: 'n1' }, spec: {} });
  const ipam = new Ipam(ds);
  const a = await ipam.autoAssign({
    handle: 'k8s-pod-network.c1',
    node: 'n1',
    num4: 3,
    attrs: { namespace: 'default', pod: 'web-1', node: 'n1' },
  });
  await ipam.autoAssign({ handle: 'gone', node: 'n1', num4: 1 });
  await ipam.store.deleteHandle('gone');
  await ds.close();

  const show = await tabbyctl(dir, ['ipam', 'show']);
  t.equal(show.code, 0, show.stderr);
  t.match(show.stdout, /\| IP Pool\s+\| 10\.20\.0\.0\/24\s+\| 256\s+\| 4 \(1%\)\s+\| 252 \(98%\)/);

  const blocks = await inProcess(dir, ['ipam', 'show', '--show-blocks']);
  t.match(blocks.stdout, /\| Block\s+\| 10\.20\.0\.\d+\/26\s+\| 64\s+\| 4 \(6%\)\s+\| 60 \(93%\)\s+\| n1\s+\| confirmed/);

  const ip = a.ipv4[0]!.split('/')[0]!;
  const who = await inProcess(dir, ['ipam', 'show', `--ip=${ip}`]);
  t.match(who.stdout, new RegExp(`IP ${ip.replace(/\./g, '\\.')} is in use`));
  t.match(who.stdout, /Handle:\s+k8s-pod-network\.c1/);
  t.match(who.stdout, /pod: web-1/);
  t.match((await inProcess(dir, ['ipam', 'show', '--ip=10.20.0.250'])).stdout, /not assigned/);

  const chk = await inProcess(dir, ['ipam', 'check']);
  t.equal(chk.code, 1, 'a problem found: exit 1');
  t.match(chk.stdout, /Leaked addresses \(allocated, owner gone\): 1/);
  const gc = await inProcess(dir, ['ipam', 'check', '--gc']);
  t.match(gc.stdout, /Released 1 addresses/);
  t.equal(gc.code, 0, 'everything found was released: exit 0');
  const clean = await inProcess(dir, ['ipam', 'check']);
  t.match(clean.stdout, /Leaked addresses \(allocated, owner gone\): 0/);
  t.equal(clean.code, 0, 'nothing found: exit 0');

  const rel = await inProcess(dir, ['ipam', 'release', `--ip=${ip}`]);
  t.equal(rel.code, 0);
  t.match(rel.stdout, new RegExp(`Released ${ip.replace(/\./g, '\\.')}`));
  t.match((await inProcess(dir, ['ipam', 'show'])).stdout, /\| 2 \(0%\)/);
  const again = await inProcess(dir, ['ipam', 'release', `--ip=${ip}`]);
  t.equal(again.code, 1);
  t.match(again.stdout, /was not assigned/);

  const conf = await inProcess(dir, ['ipam', 'configure', '--strictaffinity=true', '--max-blocks-per-host=4']);
  t.match(conf.stdout, /StrictAffinity: true\nMaxBlocksPerHost: 4/);
});

t.test('ipam check exits non-zero for the blocks of a deleted node (the compiled CLI)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${runTag()}ipcli-`));
  fs.writeFileSync(path.join(dir, 'none.cfg'), '');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const ds = new FileDatastore(dir);
  await ds.create(`${POOLS_PREFIX}pool-a`, { metadata: { name: 'pool-a' }, spec: { cidr: '10.20.0.0/24', blockSize: 26 } });
  await ds.create(`${NODES_PREFIX}node-1`, { metadata: { name: 'node-1' }, spec: {} });
  await ds.create(`${NODES_PREFIX}node-4`, { metadata: { name: 'node-4' }, spec: {} });
  await new Ipam(ds).autoAssign({ handle: 'k8s-pod-network.c4', node: 'node-4', num4: 2, attrs: { node: 'node-4' } });
  t.equal((await tabbyctl(dir, ['ipam', 'check'])).code, 0, 'all fine while the node exists');
  await ds.delete(`${NODES_PREFIX}node-4`);
  await ds.close();
  const r = await tabbyctl(dir, ['ipam', 'check']);
  t.match(r.stdout, /Blocks affine to nodes that no longer exist: 1/);
  t.equal(r.code, 1, 'exit 1');
});
