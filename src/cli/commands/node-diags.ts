// `tabbyctl node diags [--output FILE] [--log FILE]`: one tar.gz with what a support thread needs from
// this node — links, addresses, routes (every table), neighbours and FDB as JSON from netlink (no `ip`),
// the nft ruleset (`nft list ruleset`, when nft is installed), the agent's /status, /readiness and
// /sessions, its recent log (the lab's agent.log, or --log), this node's published status record and
// the datastore revision. What could not be collected is listed in `errors.txt`, never silently left out.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFile } from 'node:child_process';
import type { Argv, CommandModule } from 'yargs';
import { DEFAULT_STATE_DIR, STATUS_SOCKET_NAME, HEALTH_PATHS } from '../../agent/constants.js';
import { withDatastoreFlags, datastoreConfigFromFlags, type DatastoreFlags } from './resources.js';
import { queryAgent } from './node.js';

/** A minimal ustar archive (regular files only). */
export function tarFiles(files: readonly { name: string; data: Buffer }[], mtime = Math.floor(Date.now() / 1000)): Buffer {
  const blocks: Buffer[] = [];
  for (const f of files) {
    const h = Buffer.alloc(512);
    h.write(f.name.slice(0, 99), 0, 'utf8');
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(`${f.data.length.toString(8).padStart(11, '0')}\0`, 124);
    h.write(`${mtime.toString(8).padStart(11, '0')}\0`, 136);
    h.write('        ', 148);
    h.write('0', 156);
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(h, f.data, Buffer.alloc((512 - (f.data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

const run = (cmd: string, args: string[]): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 64 << 20, timeout: 10_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout),
    );
  });

interface Args extends DatastoreFlags {
  output?: string;
  log?: string;
  'state-dir'?: string;
}

export const nodeDiagsCommand: CommandModule<object, Args> = {
  command: 'diags',
  describe:
    "collect this node's diagnostics into one tar.gz (kernel state via netlink, nft, agent status and sessions, log, datastore revision)",
  builder: (y) =>
    withDatastoreFlags(y)
      .option('output', { type: 'string', describe: 'archive path (default: ./tabby-diags-<node>-<time>.tar.gz)' })
      .option('log', { type: 'string', describe: "the agent's log file (default: $TABBY_STATE_DIR/agent.log when present)" })
      .option('state-dir', {
        type: 'string',
        describe: `tabby-node's state directory [env TABBY_STATE_DIR, default ${DEFAULT_STATE_DIR}]`,
      }) as unknown as Argv<Args>,
  handler: async (argv) => {
    const files: { name: string; data: Buffer }[] = [];
    const errors: string[] = [];
    const add = (name: string, v: unknown): void => {
      files.push({ name, data: Buffer.from(typeof v === 'string' ? v : `${JSON.stringify(v, null, 2)}\n`) });
    };
    const attempt = async (what: string, fn: () => Promise<void>): Promise<void> => {
      try {
        await fn();
      } catch (e) {
        errors.push(`${what}: ${e instanceof Error ? e.message : String(e)}`);
      }
    };
    const dir = argv['state-dir'] ?? process.env.TABBY_STATE_DIR ?? DEFAULT_STATE_DIR;
    const sock = path.join(dir, STATUS_SOCKET_NAME);
    let node = process.env.NODENAME ?? 'node';
    await attempt('agent /status', async () => {
      const r = await queryAgent<{ nodeName: string }>(sock, HEALTH_PATHS.status);
      node = r.body.nodeName || node;
      add('agent/status.json', r.body);
    });
    await attempt('agent /readiness', async () => add('agent/readiness.json', (await queryAgent(sock, HEALTH_PATHS.readiness)).body));
    await attempt('agent /sessions', async () => add('agent/sessions.json', (await queryAgent(sock, HEALTH_PATHS.sessions)).body));
    await attempt('kernel (netlink)', async () => {
      const { openNetlink } = await import('../../dataplane/index.js');
      const nl = await openNetlink();
      try {
        add('kernel/links.json', await nl.listLinks());
        add('kernel/addresses.json', await nl.listAddresses());
        add('kernel/routes.json', await nl.listRoutes());
        add('kernel/neighbours.json', await nl.listNeighbors());
        add('kernel/fdb.json', await nl.listNeighbors('bridge'));
      } finally {
        nl.close();
      }
    });
    await attempt('nft list ruleset', async () => add('kernel/nft-ruleset.txt', await run('nft', ['list', 'ruleset'])));
    const logFile = argv.log ?? path.join(dir, 'agent.log');
    await attempt(`agent log ${logFile}`, async () => {
      const st = fs.statSync(logFile);
      const fd = fs.openSync(logFile, 'r');
      try {
        const len = Math.min(st.size, 2 << 20); // the last 2 MiB
        const buf = Buffer.alloc(len);
        fs.readSync(fd, buf, 0, len, st.size - len);
        files.push({ name: 'agent/agent.log', data: buf });
      } finally {
        fs.closeSync(fd);
      }
    });
    await attempt('datastore', async () => {
      const [{ openDatastore }, { statusKey }] = await Promise.all([
        import('../../datastore/index.js'),
        import('../../agent/cluster-input.js'),
      ]);
      const ds = await openDatastore(datastoreConfigFromFlags(argv));
      try {
        add('datastore/revision.txt', `${await ds.revision()}\n`);
        add('datastore/status-record.json', (await ds.get(statusKey(node)))?.value ?? null);
      } finally {
        await ds.close();
      }
    });
    add('errors.txt', errors.length ? `${errors.join('\n')}\n` : 'none\n');
    add('README.txt', `tabby node diagnostics of ${node}, ${new Date().toISOString()}\n`);
    const out = argv.output ?? `tabby-diags-${node}-${new Date().toISOString().replace(/[:.]/g, '')}.tar.gz`;
    fs.writeFileSync(out, zlib.gzipSync(tarFiles(files.map((f) => ({ ...f, name: `tabby-diags-${node}/${f.name}` })))));
    process.stdout.write(`wrote ${out}: ${files.length} files${errors.length ? `; not collected: ${errors.join('; ')}` : ''}\n`);
  },
};
