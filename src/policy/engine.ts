// The policy engine of one node (tabby-node's hook): lists WorkloadEndpoints, NetworkPolicies,
// GlobalNetworkPolicies and Profiles, watches them, and after every burst of changes compiles the
// node's ruleset and programs it (one nft transaction). Felix's doctrine: nothing is programmed before
// the first complete list — an agent restarting keeps the previous run's table in force until its
// own replaces it atomically. A failed program is retried (the kernel keeps the last good ruleset);
// a datastore outage keeps the kernel as it is.
import { EventEmitter } from 'node:events';
import type { Logger } from '../common/log.js';
import type { ResourceStore, ResourceKind, Resource } from '../datastore/resources.js';
import { storeName } from '../datastore/resources.js';
import { compile, newCompileCache, type Ruleset } from './compile.js';
import type { PolicyInputs } from './model.js';
import { PolicyTable as PolicyTableImpl, nftRunner, type PolicyTable, type ProgramResult } from './nft.js';

export const POLICY_KINDS = ['WorkloadEndpoint', 'NetworkPolicy', 'GlobalNetworkPolicy', 'Profile'] as const;
type PolicyKind = (typeof POLICY_KINDS)[number];

export interface PolicyEngineOptions {
  store: ResourceStore;
  node: string;
  table: PolicyTable;
  logger: Logger;
  /** coalesce a burst of changes (default 5 ms) */
  debounceMs?: number;
  retryMs?: number;
}

export interface PolicyEngineStatus {
  synced: boolean;
  programmed: boolean;
  localEndpoints: number;
  policies: number;
  lastProgram?: ProgramResult & { at: string; ms: number };
  lastError?: string;
}

/** Events: 'programmed' (ProgramResult & {ms}), 'error' is never emitted (see status().lastError). */
export class PolicyEngine extends EventEmitter {
  private readonly data = new Map<PolicyKind, Map<string, Resource>>(POLICY_KINDS.map((k) => [k, new Map()]));
  private readonly abort = new AbortController();
  private synced = false;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private last: Ruleset | undefined;
  private readonly cache = newCompileCache();
  private st: PolicyEngineStatus = { synced: false, programmed: false, localEndpoints: 0, policies: 0 };

  constructor(private readonly o: PolicyEngineOptions) {
    super();
  }

  status(): PolicyEngineStatus {
    return { ...this.st, synced: this.synced };
  }
  /** The ruleset last compiled (for explain). */
  get ruleset(): Ruleset | undefined {
    return this.last;
  }

  inputs(): PolicyInputs {
    const v = <K extends PolicyKind>(k: K) => [...this.data.get(k)!.values()] as Extract<Resource, { kind: K }>[];
    return {
      endpoints: v('WorkloadEndpoint'),
      policies: v('NetworkPolicy'),
      globalPolicies: v('GlobalNetworkPolicy'),
      profiles: v('Profile'),
    };
  }

  start(): void {
    void this.run();
  }

  stop(): void {
    this.abort.abort();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Resolves after the next program pass (tests, benchmarks). */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
      await this.program();
    }
    while (this.running) await this.running;
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        const revs: number[] = [];
        for (const k of POLICY_KINDS) {
          const l = await this.o.store.list(k as ResourceKind);
          const m = new Map<string, Resource>();
          for (const r of l.items) m.set(storeName(r), r);
          this.data.set(k, m);
          revs.push(l.revision);
        }
        this.synced = true;
        this.schedule(0);
        // One watch per kind from its list's revision: nothing between the list and the watch is missed.
        // When one fails, all four stop and the loop lists again.
        const round = new AbortController();
        const stopRound = () => round.abort();
        signal.addEventListener('abort', stopRound, { once: true });
        try {
          await Promise.race(POLICY_KINDS.map((k, i) => this.watchKind(k, revs[i]! + 1, round.signal)));
        } finally {
          round.abort();
          signal.removeEventListener('abort', stopRound);
        }
      } catch (e) {
        if (signal.aborted) return;
        this.st.lastError = `datastore: ${e instanceof Error ? e.message : String(e)}`;
        this.o.logger.warn({ err: this.st.lastError }, 'policy: watch failed, listing again (the kernel keeps its rules)');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  private async watchKind(kind: PolicyKind, from: number, signal: AbortSignal): Promise<void> {
    for await (const ev of this.o.store.watch(kind as ResourceKind, from, signal)) {
      const m = this.data.get(kind)!;
      if (ev.type === 'put') m.set(ev.name, ev.resource as Resource);
      else m.delete(ev.name);
      this.schedule();
    }
    if (!signal.aborted) throw new Error(`${kind} watch ended`);
  }

  private schedule(delay = this.o.debounceMs ?? 5): void {
    if (this.timer || this.abort.signal.aborted || !this.synced) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.program();
    }, delay);
  }

  private program(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        const t0 = performance.now();
        try {
          const inp = this.inputs();
          const rs = compile(inp, this.o.node, this.cache);
          this.last = rs;
          const compiledMs = performance.now() - t0;
          const r = await this.o.table.program(rs);
          const ms = performance.now() - t0;
          this.st = {
            ...this.st,
            programmed: true,
            localEndpoints: rs.toWl.size,
            policies: inp.policies.length + inp.globalPolicies.length,
            lastProgram: { ...r, at: new Date().toISOString(), ms },
          };
          delete this.st.lastError;
          if (r.mode !== 'none')
            this.o.logger.info(
              {
                mode: r.mode,
                bytes: r.bytes,
                ms: Math.round(ms * 10) / 10,
                compileMs: Math.round(compiledMs * 10) / 10,
                chains: rs.chains.size,
                sets: rs.sets.size,
                ...(r.stats ?? {}),
              },
              'policy programmed',
            );
          this.emit('programmed', { ...r, ms });
        } catch (e) {
          this.st.lastError = e instanceof Error ? e.message : String(e);
          this.o.logger.error(
            { err: this.st.lastError },
            'policy: programming nftables failed; retrying (the kernel keeps the previous ruleset)',
          );
          if (!this.abort.signal.aborted) setTimeout(() => this.schedule(0), this.o.retryMs ?? 1000).unref();
        }
      } while (this.again && !this.abort.signal.aborted);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }
}

/** tabby-node's one call: the engine over the real nft (in the agent's own netns), started. */
export function startPolicyEngine(o: { store: ResourceStore; node: string; logger: Logger; nft?: string }): PolicyEngine {
  const e = new PolicyEngine({
    store: o.store,
    node: o.node,
    logger: o.logger,
    table: new PolicyTableImpl(nftRunner(o.nft ? { nft: o.nft } : {})),
  });
  e.start();
  return e;
}
