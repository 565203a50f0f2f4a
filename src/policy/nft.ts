// The nft shell of the policy engine: knows whether the kernel holds what it last programmed and turns
// the next ruleset into ONE nft transaction (libnftables in the process, or an `nft -f -` process) — on the first run the table a previous run left is
// adopted (its content-named chains kept, the rest added/refilled/removed) or, when there is none or it
// cannot be adopted, the whole table is replaced atomically (enforcement never lapses across a
// restart); after that only the delta. A failed transaction changes nothing in the kernel (nft's all-or-nothing batch); the
// next apply then rewrites the whole table. (The generic Reconciler applies deletes and adds as two
// batches; nft needs adds before deletes inside one transaction, hence this shell of its own.)
import { spawn, spawnSync } from 'node:child_process';
import { native, type NftHandle } from '../native/index.js';
import type { Ruleset } from './compile.js';
import type { RulesetDelta } from './compile.js';
import { adoptScript, deltaScript, diffScript, fullScript, parseListing, type DiffStats } from './render.js';

export class NftError extends Error {
  readonly code = 'ENFT';
  constructor(
    message: string,
    readonly stderr: string,
    readonly script: string,
  ) {
    super(message);
    this.name = 'NftError';
  }
}

export interface NftRunner {
  run(script: string): Promise<void>;
  /** `nft -t` listing of chains, sets and maps (all inet tables); absent: never adopt */
  list?(): Promise<string>;
  /** how transactions reach the kernel: libnftables in this process, or an `nft -f -` process each */
  readonly via?: 'libnftables' | 'process';
}

const LIST = 'list chains inet\nlist sets inet\nlist maps inet\n';
const firstLine = (s: string) => s.trim().split('\n')[0] ?? '';

/** Transactions through libnftables in this process (the agent's own netns, or `netnsPath`): the same
 *  parser and the same one batch per script as `nft -f -`, with no process to start and nft's cache of
 *  the table kept between transactions. Falls back to a process per transaction when libnftables.so.1
 *  or the native addon is missing, or when a binary (`nft`) or `process` is asked for. Listing (once
 *  per run, for adopt) always uses the process. */
export function nftRunner(opts: { netnsPath?: string; nft?: string; process?: boolean } = {}): NftRunner {
  const proc = processRunner(opts);
  if (opts.nft || opts.process) return proc;
  let h: NftHandle | null = null;
  try {
    h = native().nftOpen(opts.netnsPath);
  } catch {
    h = null; // no addon, or the netns cannot be entered: the process runner says why on its first run
  }
  if (!h) return proc;
  const handle = h;
  return {
    via: 'libnftables',
    list: proc.list,
    run: (script) =>
      new Promise<void>((resolve, reject) =>
        native().nftRun(handle, script, (err, text) => {
          if (!err) resolve();
          else reject(new NftError(`nft transaction failed: ${firstLine(text) || err.message}`, text, script));
        }),
      ),
  };
}

/** nftRunner opened at the first transaction (tabby-node's): listing is a process in any case, so an agent
 *  whose node has no endpoint — nothing to program, a previous run's table found absent by a listing —
 *  never loads libnftables and its libraries (~2 MB of RSS). `via` is undefined until then. */
export function lazyNftRunner(opts: { netnsPath?: string; nft?: string } = {}): NftRunner {
  const proc = processRunner(opts);
  let real: NftRunner | undefined;
  return {
    get via() {
      return real?.via;
    },
    list: proc.list,
    run: (script) => {
      real ??= nftRunner(opts);
      return real.run(script);
    },
  };
}

/** Runs `nft -f -` (in `netnsPath` when given: spawned from the thread while it is in that netns). */
function processRunner(opts: { netnsPath?: string; nft?: string }): NftRunner & { list(): Promise<string> } {
  const bin = opts.nft ?? 'nft';
  const check = (status: number | null, stderr: string, script: string, err?: Error) => {
    if (err) throw new NftError(`nft: ${err.message}`, '', script);
    if (status !== 0) throw new NftError(`nft -f - failed (exit ${status}): ${firstLine(stderr)}`, stderr, script);
  };
  return {
    via: 'process',
    async list() {
      const r = opts.netnsPath
        ? native().withNetns(opts.netnsPath, () => spawnSync(bin, ['-t', '-f', '-'], { input: LIST, encoding: 'utf8', timeout: 60_000 }))
        : await new Promise<{ status: number | null; stdout: string; stderr: string; error?: Error }>((resolve) => {
            const p = spawn(bin, ['-t', '-f', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
            let stdout = '';
            let stderr = '';
            p.stdout.setEncoding('utf8').on('data', (d: string) => {
              stdout += d;
            });
            p.stderr.setEncoding('utf8').on('data', (d: string) => {
              stderr += d;
            });
            p.on('error', (error) => resolve({ status: null, stdout, stderr, error }));
            p.on('close', (status) => resolve({ status, stdout, stderr }));
            p.stdin.end(LIST);
          });
      check(r.status, r.stderr ?? '', LIST, r.error);
      return r.stdout ?? '';
    },
    async run(script) {
      if (opts.netnsPath) {
        const r = native().withNetns(opts.netnsPath, () =>
          spawnSync(bin, ['-f', '-'], { input: script, encoding: 'utf8', timeout: 60_000 }),
        );
        check(r.status, r.stderr ?? '', script, r.error);
        return;
      }
      await new Promise<void>((resolve, reject) => {
        const p = spawn(bin, ['-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
        let stderr = '';
        p.stderr.setEncoding('utf8').on('data', (d: string) => {
          stderr += d;
        });
        p.on('error', (e) => reject(new NftError(`nft: ${e.message}`, '', script)));
        p.on('close', (code) => {
          try {
            check(code, stderr, script);
            resolve();
          } catch (e) {
            reject(e as Error);
          }
        });
        p.stdin.end(script);
      });
    },
  };
}

export interface ProgramResult {
  /** adopt: the first program of a run, keeping the chains a previous run left (see render.ts);
   *  isolate: nft refused a transaction, the endpoints it refused were found and held out (engine.ts) */
  mode: 'full' | 'adopt' | 'diff' | 'none' | 'isolate';
  bytes: number;
  stats?: DiffStats;
  /** adopt: chains kept from the previous run */
  kept?: number;
}

export class PolicyTable {
  /** undefined: the kernel state is unknown (start, or after a failure) → the next apply adopts or rewrites */
  private applied: Ruleset | null | undefined;
  constructor(private readonly runner: NftRunner) {}

  /** how its transactions reach the kernel (the runner's) */
  get via(): NftRunner['via'] {
    return this.runner.via;
  }

  get current(): Ruleset | null | undefined {
    return this.applied;
  }

  /** Make the kernel hold `next` (null: no endpoint here → no table). `delta`: what changed since the
   *  last program (the incremental state's); without it the two rulesets are compared. */
  async program(next: Ruleset | null, delta?: RulesetDelta): Promise<ProgramResult> {
    const empty = !next || (next.toWl.size === 0 && next.fromWl.size === 0);
    const target = empty ? null : next;
    const prev = this.applied;
    if (prev === null && target === null) return { mode: 'none', bytes: 0 };
    // nothing wanted and the kernel state unknown (start-up of a node without endpoints): remove a previous
    // run's table only if a listing shows one — no transaction (and no libnftables, lazyNftRunner) otherwise
    if (prev === undefined && target === null && this.runner.list) {
      const listed = await this.runner.list().then(parseListing, () => undefined);
      if (listed === null) {
        this.applied = null;
        return { mode: 'none', bytes: 0 };
      }
    }
    let script: string;
    let result: ProgramResult;
    if (prev === undefined && target !== null) {
      const adopted = await this.adopt(target);
      if (adopted) return adopted;
    }
    if (prev === undefined || prev === null || target === null) {
      script = fullScript(target);
      result = { mode: 'full', bytes: script.length };
    } else {
      const d = delta ? deltaScript(delta) : diffScript(prev, target);
      if (!d.script) {
        this.applied = target;
        return { mode: 'none', bytes: 0 };
      }
      script = d.script;
      result = { mode: 'diff', bytes: script.length, stats: d.stats };
    }
    this.applied = undefined;
    await this.runner.run(script);
    this.applied = target;
    return result;
  }

  /** The first program of a run over a table a previous run left; null: not adoptable, or it failed
   *  (the kernel is as it was: the caller replaces the whole table). */
  private async adopt(target: Ruleset): Promise<ProgramResult | null> {
    if (!this.runner.list) return null;
    try {
      const ex = parseListing(await this.runner.list());
      const a = ex && adoptScript(ex, target);
      if (!a) return null;
      await this.runner.run(a.script);
      this.applied = target;
      return { mode: 'adopt', bytes: a.script.length, kept: a.kept };
    } catch {
      return null;
    }
  }

  /** Forget what was programmed: the next program() adopts or rewrites the whole table. */
  invalidate(): void {
    this.applied = undefined;
  }
}
