// tabbyctl ipam — calicoctl's `ipam` group over tabby's IPAM:
//   show [--show-blocks] [--ip=ADDR]   pool usage (total / in use / free), per block, or who holds an address
//   check [--gc] [--json]              leaked addresses, handle mismatches, blocks of gone nodes (and clean up)
//   release --ip=ADDR…                 release addresses by hand
//   configure [--strictaffinity] [--max-blocks-per-host]
// The datastore comes from the usual variables / config file (DATASTORE_TYPE, TABBY_DATASTORE_DIR, …).
import type { Argv, CommandModule } from 'yargs';
import type { IpamCheckReport, IpInfo, PoolUsage, BlockInfo, Ipam } from '../../ipam/index.js';

interface Opts {
  'show-blocks'?: boolean;
  ip?: string | string[];
  gc?: boolean;
  json?: boolean;
  strictaffinity?: string;
  'max-blocks-per-host'?: number;
}

async function withIpam<T>(fn: (ipam: Ipam) => Promise<T>): Promise<T> {
  const [{ datastoreConfigFromEnv, openDatastore }, { Ipam }] = await Promise.all([
    import('../../datastore/index.js'),
    import('../../ipam/index.js'),
  ]);
  const ds = await openDatastore(datastoreConfigFromEnv(process.env));
  try {
    return await fn(new Ipam(ds));
  } finally {
    await ds.close();
  }
}

const pct = (n: bigint | number, total: bigint | number): string => {
  const t = BigInt(total);
  if (t === 0n) return '0%';
  return `${(BigInt(n) * 100n) / t}%`;
};

/** An ASCII table the way calicoctl draws them. */
export function renderTable(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = `+${w.map((n) => '-'.repeat(n + 2)).join('+')}+`;
  const fmt = (r: string[]) => `| ${r.map((c, i) => c.padEnd(w[i]!)).join(' | ')} |`;
  return [line, fmt(header), line, ...rows.map(fmt), line].join('\n');
}

/** One block's row of the usage table; `affinity` is the last column's text. */
function blockRow(b: BlockInfo, affinity: string): string[] {
  return [
    'Block',
    b.cidr,
    String(b.size),
    `${b.inUse} (${pct(b.inUse, b.size)})`,
    `${b.free} (${pct(b.free, b.size)})`,
    b.node ?? '(none)',
    affinity,
  ];
}

export function renderUsage(usage: PoolUsage[], blocks?: BlockInfo[]): string {
  const rows: string[][] = [];
  for (const p of usage) {
    rows.push(['IP Pool', p.cidr, p.total.toString(), `${p.inUse} (${pct(p.inUse, p.total)})`, `${p.free} (${pct(p.free, p.total)})`]);
    if (blocks) {
      for (const b of blocks.filter((x) => x.pool === p.name).sort((x, y) => (x.cidr < y.cidr ? -1 : 1))) {
        rows.push(blockRow(b, b.affinityState ?? ''));
      }
    }
  }
  if (blocks) {
    for (const b of blocks.filter((x) => x.pool === null)) {
      rows.push(blockRow(b, `${b.affinityState ?? ''} (no pool)`));
    }
    return renderTable(
      ['GROUPING', 'CIDR', 'IPS TOTAL', 'IPS IN USE', 'IPS FREE', 'NODE', 'AFFINITY'],
      rows.map((r) => [...r, '', ''].slice(0, 7)),
    );
  }
  return renderTable(['GROUPING', 'CIDR', 'IPS TOTAL', 'IPS IN USE', 'IPS FREE'], rows);
}

export function renderIpInfo(i: IpInfo): string {
  if (!i.allocated) {
    return `IP ${i.ip} is not assigned${i.pool ? ` (pool ${i.pool}${i.block ? `, block ${i.block}` : ', no block yet'})` : ' and is in no IP pool'}`;
  }
  const lines = [
    `IP ${i.ip} is in use`,
    `  Handle:   ${i.handle ?? '(none)'}`,
    `  Block:    ${i.block}${i.blockNode ? ` (affine to ${i.blockNode})` : ''}`,
    `  Pool:     ${i.pool ?? '(none)'}`,
  ];
  if (i.sequenceNumber !== undefined) lines.push(`  Sequence: ${i.sequenceNumber}`);
  const attrs = Object.entries(i.attrs);
  if (attrs.length) lines.push('  Attributes:', ...attrs.map(([k, v]) => `    ${k}: ${v}`));
  return lines.join('\n');
}

export function renderCheck(r: IpamCheckReport): string {
  const out = [
    `Checked ${r.blocks} blocks, ${r.allocations} allocated addresses, ${r.handles} handles.`,
    `Leaked addresses (allocated, owner gone): ${r.leaked.length}`,
    ...r.leaked.map((l) => `  ${l.ip}  block ${l.block}  handle ${l.handle ?? '(none)'}: ${l.reason}`),
    `Handle/block mismatches: ${r.handleMismatches.length}`,
    ...r.handleMismatches.map((m) => `  ${m.handle} in ${m.block}: handle says ${m.handleCount}, block holds ${m.blockCount}`),
    `Blocks affine to nodes that no longer exist: ${r.blocksOfGoneNodes.length}`,
    ...r.blocksOfGoneNodes.map((b) => `  ${b.cidr}  node ${b.node}`),
    `Affinities of nodes that no longer exist: ${r.affinitiesOfGoneNodes.length}`,
    ...r.affinitiesOfGoneNodes.map((a) => `  ${a.cidr}  node ${a.node} (${a.state})`),
    `Pending affinities: ${r.pendingAffinities.length}`,
    ...r.pendingAffinities.map((a) => `  ${a.cidr}  node ${a.node}`),
  ];
  if (r.problems.length) out.push(`Block corruption: ${r.problems.length}`, ...r.problems.map((p) => `  ${p}`));
  for (const n of r.notes) out.push(`Note: ${n}`);
  return out.join('\n');
}

/** Findings that are problems (pending affinities are claims in progress, not counted). */
export function problemCount(r: IpamCheckReport): number {
  return r.leaked.length + r.handleMismatches.length + r.blocksOfGoneNodes.length + r.affinitiesOfGoneNodes.length + r.problems.length;
}

const toList = (v: string | string[] | undefined): string[] =>
  (Array.isArray(v) ? v : v === undefined ? [] : [v])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter(Boolean);

const write = (s: string) => process.stdout.write(`${s}\n`);

export const ipamCommand: CommandModule<object, Opts> = {
  command: 'ipam <command>',
  describe: 'IP address management: usage, holders, consistency check, release',
  builder: (y: Argv<object>) =>
    y
      .command<Opts>(
        'show',
        'IP pool usage (total / in use / free), blocks, or who holds an address',
        (yy) =>
          yy
            .option('show-blocks', { type: 'boolean', describe: 'also list every block with its node and usage' })
            .option('ip', { type: 'string', describe: 'show who holds this address' })
            .option('json', { type: 'boolean', describe: 'JSON output' }),
        async (a) =>
          withIpam(async (ipam) => {
            const ip = toList(a.ip)[0];
            if (ip) {
              const info = await ipam.ipInfo(ip);
              write(a.json ? JSON.stringify(info, null, 2) : renderIpInfo(info));
              return;
            }
            const usage = await ipam.usage();
            const blocks = a['show-blocks'] ? await ipam.listBlocks() : undefined;
            if (a.json)
              write(
                JSON.stringify(
                  {
                    pools: usage.map((u) => ({ ...u, total: u.total.toString(), free: u.free.toString() })),
                    ...(blocks ? { blocks } : {}),
                  },
                  null,
                  2,
                ),
              );
            else write(renderUsage(usage, blocks));
          }),
      )
      .command<Opts>(
        'check',
        'report leaked addresses, handle mismatches and blocks of nodes that are gone',
        (yy) =>
          yy
            .option('gc', { type: 'boolean', describe: 'release what the report finds (sequence-number guarded)' })
            .option('json', { type: 'boolean', describe: 'JSON output' }),
        async (a) =>
          withIpam(async (ipam) => {
            const r = await ipam.check();
            write(a.json ? JSON.stringify(r, null, 2) : renderCheck(r));
            // Exit 1 when a problem is found (with --gc: when one is left after releasing), so scripts notice.
            let left = problemCount(r);
            if (a.gc) {
              const g = await ipam.gc(r);
              write(
                `Released ${g.releasedIps.length} addresses, ${g.releasedBlocks.length} block affinities, ${g.deletedHandles.length} stale handles.`,
              );
              if (left) left = problemCount(await ipam.check());
            }
            if (left) process.exitCode = 1;
          }),
      )
      .command<Opts>(
        'release',
        'release addresses by hand (--ip may repeat or be a comma list)',
        (yy) => yy.option('ip', { type: 'string', array: true, demandOption: true, describe: 'address to release' }),
        async (a) =>
          withIpam(async (ipam) => {
            const ips = toList(a.ip);
            const r = await ipam.releaseIPs(ips);
            for (const ip of r.released) write(`Released ${ip}`);
            for (const ip of r.notAllocated) write(`${ip} was not assigned`);
            if (r.released.length === 0) process.exitCode = 1;
          }),
      )
      .command<Opts>(
        'configure',
        'set strictAffinity / maxBlocksPerHost',
        (yy) =>
          yy
            .option('strictaffinity', {
              type: 'string',
              choices: ['true', 'false'],
              describe: "never borrow addresses from other nodes' blocks",
            })
            .option('max-blocks-per-host', { type: 'number', describe: 'most blocks one node may claim (default 20)' }),
        async (a) =>
          withIpam(async (ipam) => {
            const change: { strictAffinity?: boolean; maxBlocksPerHost?: number } = {};
            if (a.strictaffinity !== undefined) change.strictAffinity = a.strictaffinity === 'true';
            if (a['max-blocks-per-host'] !== undefined) {
              const n = a['max-blocks-per-host'];
              if (!Number.isInteger(n) || n < 1) throw new Error(`--max-blocks-per-host ${n}: expected a positive integer`);
              change.maxBlocksPerHost = n;
            }
            const c = Object.keys(change).length ? await ipam.setConfig(change) : await ipam.getConfig();
            write(`StrictAffinity: ${c.strictAffinity}\nMaxBlocksPerHost: ${c.maxBlocksPerHost}`);
          }),
      )
      .demandCommand(1, 'name an ipam command: show, check, release, configure'),
  handler: () => undefined,
};
