// The nft shell of the policy engine: keeps what it last programmed and turns the next compiled
// ruleset into ONE `nft -f -` transaction — the whole table on the first run (replacing any table a
// previous run left, atomically: enforcement never lapses across a restart), only the difference
// after that. A failed transaction changes nothing in the kernel (nft's all-or-nothing batch); the
// next apply then rewrites the whole table. (The generic Reconciler applies deletes and adds as two
// batches; nft needs adds before deletes inside one transaction, hence this shell of its own.)
import { spawn, spawnSync } from 'node:child_process';
import { native } from '../native/index.js';
import type { Ruleset } from './compile.js';
import { diffScript, fullScript, type DiffStats } from './render.js';

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
}

/** Runs `nft -f -` (in `netnsPath` when given: spawned from the thread while it is in that netns). */
export function nftRunner(opts: { netnsPath?: string; nft?: string } = {}): NftRunner {
  const bin = opts.nft ?? 'nft';
  const check = (status: number | null, stderr: string, script: string, err?: Error) => {
    if (err) throw new NftError(`nft: ${err.message}`, '', script);
    if (status !== 0) {
      const first = stderr.trim().split('\n')[0] ?? '';
      throw new NftError(`nft -f - failed (exit ${status}): ${first}`, stderr, script);
    }
  };
  return {
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
  mode: 'full' | 'diff' | 'none';
  bytes: number;
  stats?: DiffStats;
}

export class PolicyTable {
  /** undefined: the kernel state is unknown (start, or after a failure) → the next apply is a full rewrite */
  private applied: Ruleset | null | undefined;
  constructor(private readonly runner: NftRunner) {}

  get current(): Ruleset | null | undefined {
    return this.applied;
  }

  /** Make the kernel hold `next` (null: no endpoint here → no table). */
  async program(next: Ruleset | null): Promise<ProgramResult> {
    const empty = !next || (next.toWl.size === 0 && next.fromWl.size === 0);
    const target = empty ? null : next;
    const prev = this.applied;
    let script: string;
    let result: ProgramResult;
    if (prev === undefined || prev === null || target === null) {
      if (prev === null && target === null) return { mode: 'none', bytes: 0 };
      script = fullScript(target);
      result = { mode: 'full', bytes: script.length };
    } else {
      const d = diffScript(prev, target);
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

  /** Forget what was programmed: the next program() rewrites the whole table. */
  invalidate(): void {
    this.applied = undefined;
  }
}
