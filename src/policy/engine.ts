// The policy engine of one node (tabby-node's hook): lists WorkloadEndpoints, NetworkPolicies,
// GlobalNetworkPolicies and Profiles, watches them, feeds every change to the incremental compile
// (state.ts) and programs what changed as one nft transaction. Group commit: the first change is
// programmed at once (no fixed delay); changes that arrive while a transaction is in flight go
// together into the next one, so N endpoints written at once cost ~2 transactions, and a steady
// stream of changes still has every change in the next transaction (nothing starves). Felix's doctrine: nothing is programmed before
// the first complete list — an agent restarting keeps the previous run's table in force until its
// own replaces it atomically. A failed program is retried (the kernel keeps the last good ruleset);
// a datastore outage keeps the kernel as it is. When nft refuses a transaction that carried local
// endpoints, they are held out and admitted again in halves until the ones nft refuses are found: those
// stay out (no map entry: their traffic is dropped, never passed) and are reported by name in the
// status; the others are programmed. A refused endpoint is tried again when it changes and every
// retryRefusedMs.
import { EventEmitter } from 'node:events';
import type { Logger } from '../common/log.js';
import type { ResourceStore, ResourceKind, Resource } from '../datastore/resources.js';
import { storeName } from '../datastore/resources.js';
import { deltaOf, type Ruleset, type RulesetDelta } from './compile.js';
import type { PolicyInputs } from './model.js';
import { PolicyState, type PolicyResource } from './state.js';
import { POLICY_TABLE } from './render.js';
import type { PolicyStatusJson } from '../agent/status-types.js';
import { NftError, PolicyTable as PolicyTableImpl, lazyNftRunner, type PolicyTable, type ProgramResult } from './nft.js';
import { isoTime } from '../common/iso-time.js';

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
  /** endpoints nft refused are tried again this often (default 30 s) */
  retryRefusedMs?: number;
}

export interface PolicyEngineStatus {
  synced: boolean;
  programmed: boolean;
  localEndpoints: number;
  policies: number;
  /** ms: change seen → kernel programmed; compileMs, nftMs: its two parts */
  lastProgram?: ProgramResult & { at: string; ms: number; compileMs: number; nftMs: number };
  lastError?: string;
  /** local endpoints held out of the ruleset because nft refused them: name → nft's message */
  refusedEndpoints?: Record<string, string>;
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
  /** local endpoints (store names) held out of the ruleset → nft's message ('' while under test) */
  private readonly refused = new Map<string, string>();
  private refusedTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: PolicyEngineOptions) {
    super();
  }

  status(): PolicyEngineStatus {
    const refused = [...this.refused].filter(([, m]) => m);
    return { ...this.st, synced: this.synced, ...(refused.length ? { refusedEndpoints: Object.fromEntries(refused) } : {}) };
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
      ...(s.refusedEndpoints ? { refusedEndpoints: Object.entries(s.refusedEndpoints).map(([name, error]) => ({ name, error })) } : {}),
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
    // refused endpoints get another try (a transient refusal must not keep a pod cut off for good)
    this.refusedTimer = setInterval(() => {
      const again = [...this.refused.keys()].filter((n) => this.refused.get(n));
      if (!again.length || this.pending === 'relist') return;
      const weps = this.data.get('WorkloadEndpoint')!;
      for (const n of again) {
        this.refused.delete(n);
        const w = weps.get(n);
        if (w) this.pending.push({ put: true, r: w as PolicyResource });
      }
      this.schedule();
    }, this.o.retryRefusedMs ?? 30_000);
    this.refusedTimer.unref();
  }

  stop(): void {
    this.abort.abort();
    this.timer?.cancel();
    this.timer = undefined;
    if (this.refusedTimer) clearInterval(this.refusedTimer);
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
      if (kind === 'WorkloadEndpoint') this.refused.delete(ev.name); // changed: it gets another try
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
  /** `local`: the local endpoints this pass put (what to suspect when nft refuses the transaction). */
  private compile(): { rs: Ruleset; delta: RulesetDelta | undefined; local: string[] } {
    const pending = this.pending;
    this.pending = [];
    const isLocal = (r: PolicyResource) => r.kind === 'WorkloadEndpoint' && r.spec.node === this.o.node;
    if (pending === 'relist' || !this.state) {
      const prev = this.state?.ruleset;
      const st = new PolicyState(this.o.node);
      const inp = this.inputs();
      const endpoints = inp.endpoints.filter((w) => !this.refused.has(storeName(w)));
      for (const r of [...inp.profiles, ...endpoints, ...inp.policies, ...inp.globalPolicies]) st.put(r);
      st.commit();
      st.takeDelta();
      this.state = st;
      return { rs: st.ruleset, delta: prev ? deltaOf(prev, st.ruleset) : undefined, local: endpoints.filter(isLocal).map(storeName) };
    }
    for (const c of pending)
      if (c.put) this.state.put(c.r);
      else this.state.remove(c.r);
    this.state.commit();
    const local = [...new Set(pending.filter((c) => c.put && isLocal(c.r)).map((c) => storeName(c.r)))];
    return { rs: this.state.ruleset, delta: this.state.takeDelta(), local };
  }

  /** nft refused a transaction that put the local endpoints `suspects`: program everything else, then
   *  admit them again in halves; the ones nft still refuses stay out (reported). A ruleset with no local
   *  endpoint is never programmed here (that is no table at all: their traffic would pass unfiltered).
   *  Throws the original error when the transaction fails without them too, or nft refuses them all
   *  (not theirs: the normal retry). */
  private async isolate(suspects: string[], err: NftError): Promise<void> {
    const giveUp = (e: unknown) => {
      for (const n of suspects) this.refused.delete(n);
      this.pending = 'relist';
      return e;
    };
    for (const n of suspects) this.refused.set(n, '');
    this.pending = 'relist';
    const { rs } = this.compile();
    if (this.state!.localEndpoints > 0) await this.o.table.program(rs).catch((e: unknown) => Promise.reject(giveUp(e)));
    await this.admit(suspects);
    if (suspects.every((n) => this.refused.has(n))) throw giveUp(err);
  }

  private async admit(group: string[]): Promise<void> {
    const weps = this.data.get('WorkloadEndpoint')!;
    const present = group.map((n) => [n, weps.get(n)] as const).filter((x): x is [string, PolicyResource & Resource] => !!x[1]);
    for (const n of group) this.refused.delete(n); // deleted meanwhile: nothing to hold out
    for (const [, w] of present) this.state!.put(w);
    this.state!.commit();
    try {
      const delta = this.state!.takeDelta();
      if (this.state!.localEndpoints === 0) return; // none of them is there any more
      await this.o.table.program(this.state!.ruleset, delta);
    } catch (e) {
      if (!(e instanceof NftError)) throw e;
      for (const [n, w] of present) {
        this.refused.set(n, '');
        this.state!.remove(w);
      }
      this.state!.commit();
      this.state!.takeDelta(); // the kernel did not change: the table adopts what the state holds next time
      if (present.length === 1) {
        const [n] = present[0]!;
        this.refused.set(n, e.message);
        this.o.logger.error(
          { endpoint: n, err: e.message },
          'policy: nft refused this endpoint; it stays unprogrammed (its traffic is dropped)',
        );
        return;
      }
      const half = Math.ceil(present.length / 2);
      await this.admit(present.slice(0, half).map(([n]) => n));
      await this.admit(present.slice(half).map(([n]) => n));
    }
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
          const { rs, delta, local } = this.compile();
          const compileMs = performance.now() - t0;
          let r: ProgramResult;
          try {
            r = await this.o.table.program(rs, delta);
          } catch (e) {
            if (!(e instanceof NftError) || !local.length) throw e;
            await this.isolate(local, e);
            r = { mode: 'isolate', bytes: 0 };
          }
          const ms = performance.now() - t0;
          this.st = {
            ...this.st,
            programmed: true,
            localEndpoints: this.state!.localEndpoints,
            policies: this.state!.policyCount,
            lastProgram: { ...r, at: isoTime(), ms, compileMs, nftMs: ms - compileMs },
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
    table: new PolicyTableImpl(lazyNftRunner(o.nft ? { nft: o.nft } : {})),
  });
  e.start();
  return e;
}
