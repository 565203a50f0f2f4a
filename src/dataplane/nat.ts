// natOutgoing (Calico's cali-nat-outgoing): masquerade traffic from a pool with natOutgoing to any
// destination outside all pools. tabby keeps its rules in its own nftables tables (`ip tabby`,
// `ip6 tabby`) and replaces them atomically: one `nft -f -` transaction that (re)creates the table,
// deletes it and defines it again — readers never see a half-written rule set. nft is the only child
// process of the dataplane. Inside a netns (lab, tests) nft is spawned synchronously from the thread
// while it is in that netns (native().withNetns), so the child starts there.
import { spawnSync } from 'node:child_process';
import { native } from '../native/index.js';
import { parseCidr, formatCidr } from '../common/ip.js';

export const NAT_TABLE = 'tabby';

export interface NatPool {
  cidr: string;
  natOutgoing: boolean;
  disabled?: boolean;
}

export interface NatOptions {
  netnsPath?: string;
  /** nft binary (default "nft" from PATH) */
  nft?: string;
}

export class NatError extends Error {
  readonly code = 'ENAT';
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'NatError';
  }
}

function tableFor(family: 'ip' | 'ip6', all: string[], masq: string[]): string {
  const type = family === 'ip' ? 'ipv4_addr' : 'ipv6_addr';
  const addr = family === 'ip' ? 'ip' : 'ip6';
  const lines = [
    `table ${family} ${NAT_TABLE} {`,
    `  set all-pools {`,
    `    type ${type}; flags interval;`,
    ...(all.length ? [`    elements = { ${all.join(', ')} }`] : []),
    `  }`,
    `  set masq-pools {`,
    `    type ${type}; flags interval;`,
    ...(masq.length ? [`    elements = { ${masq.join(', ')} }`] : []),
    `  }`,
    `  chain nat-outgoing {`,
    `    ${addr} saddr @masq-pools ${addr} daddr != @all-pools masquerade`,
    `  }`,
    `  chain postrouting {`,
    `    type nat hook postrouting priority srcnat; policy accept;`,
    `    jump nat-outgoing`,
    `  }`,
    `}`,
  ];
  return lines.join('\n');
}

/** The nft script applyNatOutgoing runs (pure; exposed for tests and `--dry-run`). */
export function natOutgoingScript(pools: readonly NatPool[]): string {
  const out: string[] = [];
  for (const family of ['ip', 'ip6'] as const) {
    const fam = family === 'ip' ? 4 : 6;
    const cidrs = pools.map((p) => ({ ...p, c: parseCidr(p.cidr) })).filter((p) => p.c.family === fam);
    const all = cidrs.map((p) => formatCidr(p.c));
    const masq = cidrs.filter((p) => p.natOutgoing && !p.disabled).map((p) => formatCidr(p.c));
    // create-if-missing, delete, define: one atomic transaction
    out.push(`table ${family} ${NAT_TABLE}`, `delete table ${family} ${NAT_TABLE}`);
    if (masq.length) out.push(tableFor(family, [...new Set(all)], [...new Set(masq)]));
  }
  return `${out.join('\n')}\n`;
}

function runNft(script: string, opts: NatOptions): void {
  const run = () => spawnSync(opts.nft ?? 'nft', ['-f', '-'], { input: script, encoding: 'utf8', timeout: 20_000 });
  const r = opts.netnsPath ? native().withNetns(opts.netnsPath, run) : run();
  if (r.error) throw new NatError(`nft: ${r.error.message}`, '');
  if (r.status !== 0) throw new NatError(`nft -f - failed (exit ${r.status}): ${r.stderr.trim().split('\n')[0] ?? ''}`, r.stderr);
}

/** Replace tabby's NAT rules for these pools, atomically. No natOutgoing pool → no tabby table. */
export function applyNatOutgoing(pools: readonly NatPool[], opts: NatOptions = {}): void {
  runNft(natOutgoingScript(pools), opts);
}

/** Remove tabby's NAT tables (idempotent). */
export function removeNatOutgoing(opts: NatOptions = {}): void {
  runNft(natOutgoingScript([]), opts);
}
