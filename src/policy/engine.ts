// The policy engine of one node (tabby-node's hook): lists WorkloadEndpoints, NetworkPolicies,
// GlobalNetworkPolicies and Profiles, watches them, feeds every change to the incremental compile
// (state.ts) and programs what changed as one nft transaction. Group commit: the first change is
// programmed at once (no fixed delay); changes that arrive while a transaction is in flight go
// together into the next one, so N endpoints written at once cost ~2 transactions, and a steady
// stream of changes still has every change in the next transaction (nothing starves). Felix's doctrine: nothing is programmed before
// the first complete list — an agent restarting keeps the previous run's table in force until its
// own replaces it atomically. A failed program is retried (the kernel keeps the last good ruleset);
// a datastore outage keeps the kernel as it is.
import { EventEmitter } from 'node:events';
import type { Logger } from '../common/log.js';
import type { ResourceStore, ResourceKind, Resource } from '../datastore/resources.js';
import { storeName } from '../datastore/resources.js';
import { deltaOf, type Ruleset, type RulesetDelta } from './compile.js';
import type { PolicyInputs } from './model.js';
import { PolicyState, type PolicyResource } from './state.js';
import { POLICY_TABLE } from './render.js';
import type { PolicyStatusJson } from '../agent/status-types.js';
import { NftError, PolicyTable as PolicyTableImpl, nftRunner, type PolicyTable, type ProgramResult } from './nft.js';

const round = (ms: number) => Math.round(ms * 10) / 10;

export const POLICY_KINDS = ['WorkloadEndpoint', 'NetworkPolicy', 'GlobalNetworkPolicy', 'Profile'] as const;
type PolicyKind = (typeof POLICY_KINDS)[number];

export interface PolicyEngineOptions {
  store: ResourceStore;
  node: string;
  table: PolicyTable;
  logger: Logger;
  /** wait this long after a change before programming (default 0: at once; changes meanwhile join
   *  the next transaction anyway) */
  debounceMs?: number;
  retryMs?: number;
}

export interface PolicyEngineStatus {
  synced: boolean;
  programmed: boolean;
  localEndpoints: number;
  policies: number;
  /** ms: change seen → kernel programmed; compileMs, nftMs: its two parts */
  lastProgram?: ProgramResult & { at: string; ms: number; compileMs: number; nftMs: number };
  lastError?: string;
}

/** Events: 'programmed' (ProgramResult & {ms}), 'error' is never emitted (see status().lastError). */
export class PolicyEngine extends EventEmitter {
  private readonly data = new Map<PolicyKind, Map<string, Resource>>(POLICY_KINDS.map((k) => [k, new Map()]));
  private readonly abort = new AbortController();
  private synced = false;
  private timer: { cancel(): void } | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private state: PolicyState | undefined;
  /** changes since the last program; 'relist' after a (re)list: the state is rebuilt */
  private pending: { put: boolean; r: PolicyResource }[] | 'relist' = 'relist';
  private st: PolicyEngineStatus = { synced: false, programmed: false, localEndpoints: 0, policies: 0 };

  constructor(private readonly o: PolicyEngineOptions) {
    super();
  }

  status(): PolicyEngineStatus {
    return { ...this.st, synced: this.synced };
  }
  /** The agent's /status part. */
  statusJson(): PolicyStatusJson {
    const s = this.status();
    const lp = s.lastProgram;
    return {
      dataplane: 'nftables',
      table: `inet ${POLICY_TABLE}`,
      ...(this.o.table.via ? { nft: this.o.table.via } : {}),
      synced: s.synced,
      programmed: s.programmed,
      localEndpoints: s.localEndpoints,
      policies: s.policies,
      ...(lp
        ? {
            lastProgram: {
              mode: lp.mode,
              at: lp.at,
              ms: round(lp.ms),
              compileMs: round(lp.compileMs),
              nftMs: round(lp.nftMs),
              bytes: lp.bytes,
            },
          }
        : {}),
      ...(s.lastError ? { lastError: s.lastError } : {}),
    };
  }

  /** The ruleset last compiled (for explain). */
  get ruleset(): Ruleset | undefined {
    return this.state?.ruleset;
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
    this.timer?.cancel();
    this.timer = undefined;
  }

  /** Resolves after the next program pass (tests, benchmarks). */
  async flush(): Promise<void> {
    if (this.timer) {
      this.timer.cancel();
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
        this.pending = 'relist';
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
      const old = m.get(ev.name);
      if (ev.type === 'put') m.set(ev.name, ev.resource as Resource);
      else m.delete(ev.name);
      if (this.pending !== 'relist') {
        if (ev.type === 'put') this.pending.push({ put: true, r: ev.resource as PolicyResource });
        else if (old) this.pending.push({ put: false, r: old as PolicyResource });
      }
      this.schedule();
    }
    if (!signal.aborted) throw new Error(`${kind} watch ended`);
  }

  /** Program soon: after the events already delivered in this turn of the event loop (setImmediate),
   *  or after `delay` ms. While a program runs, program() only marks that another pass is due. */
  private schedule(delay = this.o.debounceMs ?? 0): void {
    if (this.timer || this.abort.signal.aborted || !this.synced) return;
    const fire = () => {
      this.timer = undefined;
      void this.program();
    };
    if (delay > 0) {
      const h = setTimeout(fire, delay);
      this.timer = { cancel: () => clearTimeout(h) };
    } else {
      const h = setImmediate(fire);
      this.timer = { cancel: () => clearImmediate(h) };
    }
  }

  /** Apply the pending changes to the incremental state (or rebuild it after a list) → what to program. */
  private compile(): { rs: Ruleset; delta: RulesetDelta | undefined } {
    const pending = this.pending;
    this.pending = [];
    if (pending === 'relist' || !this.state) {
      const prev = this.state?.ruleset;
      const st = new PolicyState(this.o.node);
      const inp = this.inputs();
      for (const r of [...inp.profiles, ...inp.endpoints, ...inp.policies, ...inp.globalPolicies]) st.put(r);
      st.commit();
      st.takeDelta();
      this.state = st;
      return { rs: st.ruleset, delta: prev ? deltaOf(prev, st.ruleset) : undefined };
    }
    for (const c of pending)
      if (c.put) this.state.put(c.r);
      else this.state.remove(c.r);
    this.state.commit();
    return { rs: this.state.ruleset, delta: this.state.takeDelta() };
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
          const { rs, delta } = this.compile();
          const compileMs = performance.now() - t0;
          const r = await this.o.table.program(rs, delta);
          const ms = performance.now() - t0;
          this.st = {
            ...this.st,
            programmed: true,
            localEndpoints: this.state!.localEndpoints,
            policies: this.state!.policyCount,
            lastProgram: { ...r, at: new Date().toISOString(), ms, compileMs, nftMs: ms - compileMs },
          };
          delete this.st.lastError;
          if (r.mode !== 'none')
            this.o.logger.info(
              {
                mode: r.mode,
                via: this.o.table.via,
                bytes: r.bytes,
                ms: Math.round(ms * 10) / 10,
                compileMs: Math.round(compileMs * 10) / 10,
                nftMs: Math.round((ms - compileMs) * 10) / 10,
                chains: rs.chains.size,
                sets: rs.sets.size,
                ...(r.stats ?? {}),
                ...(r.kept !== undefined ? { kept: r.kept } : {}),
              },
              'policy programmed',
            );
          this.emit('programmed', { ...r, ms });
        } catch (e) {
          if (!(e instanceof NftError)) this.pending = 'relist'; // the state may be half-updated: rebuild it
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
