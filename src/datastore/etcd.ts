// The `etcdv3` datastore: a real etcd v3 cluster through the `etcd3` client.
//  - Revisions are etcd's: a KV's revision is its mod_revision, the store revision is header.revision.
//  - create = txn(create_revision == 0 → put); update = txn(mod_revision == expected → put, else get);
//    delete with expectedRevision = txn(mod_revision == expected → delete, else get).
//  - watch = an etcd watch from a revision with prev_kv; on a dropped stream it resumes from the last
//    revision delivered + 1 (we set it ourselves: the client's own bookkeeping may skip events);
//    a start below etcd's compaction gives DatastoreCompacted.
//  - Several endpoints, TLS client certificates (ETCD_CA_CERT_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE),
//    and reconnection after etcd restarts: calls that fail because etcd is unreachable are retried
//    with backoff until opTimeoutMs, then raise DatastoreUnavailable.
import { readFileSync } from 'node:fs';
import { Etcd3, isRecoverableError, type ComparatorBuilder, type IOptions, type IKeyValue, type Watcher } from 'etcd3';
import { log } from '../common/log.js';
import type { DatastoreConfig } from './config.js';
import {
  DatastoreCompacted,
  DatastoreConflict,
  DatastoreError,
  DatastoreExists,
  DatastoreNotFound,
  DatastoreUnavailable,
  type Datastore,
  type KVPair,
  checkTxnOps,
  type ListResult,
  type TxnOp,
  type WatchEvent,
} from './types.js';

export interface EtcdDatastoreOptions {
  /** Give up retrying an operation while etcd is unreachable after this long (default 10 s). */
  opTimeoutMs?: number;
  /** Deadline of a single etcd call (default 3 s). */
  callTimeoutMs?: number;
}

type Host = NonNullable<NonNullable<IOptions['faultHandling']>['host']>;

/** A host policy that lets every call through (etcd3's default circuit breaker would refuse calls for
 *  5 s after three failures — too slow to notice that a restarted etcd is back). Retrying is ours. */
const passThroughPolicy: Host = () =>
  ({
    onSuccess: () => ({
      dispose() {
        /* nothing */
      },
    }),
    onFailure: () => ({
      dispose() {
        /* nothing */
      },
    }),
    execute: <T>(fn: (ctx: { signal: AbortSignal }) => PromiseLike<T> | T, signal?: AbortSignal) =>
      Promise.resolve().then(() => fn({ signal: signal ?? new AbortController().signal })),
  }) as unknown as ReturnType<Host>;

const num = (s: string | number | undefined): number => Number(s ?? 0);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Wait for p, but at most ms (the timer does not keep the process alive afterwards). */
async function atMost(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p.catch(() => undefined),
    new Promise<void>((r) => {
      timer = setTimeout(r, ms);
    }),
  ]);
  clearTimeout(timer);
}

function decode<T>(kv: IKeyValue): T {
  return JSON.parse(kv.value.toString('utf8')) as T;
}

function isUnreachable(e: unknown): boolean {
  if (e instanceof DatastoreError) return false;
  if (typeof e === 'object' && e !== null && isRecoverableError(e as Error)) return true;
  const m = e instanceof Error ? e.message : String(e);
  return /UNAVAILABLE|ECONNREFUSED|ECONNRESET|DEADLINE_EXCEEDED|No connection established|connection|socket|Broken circuit/i.test(m);
}

export class EtcdDatastore implements Datastore {
  readonly kind = 'etcdv3' as const;
  readonly client: Etcd3;
  private readonly opTimeoutMs: number;
  private readonly logger;
  private closed = false;
  private readonly watchers = new Set<Watcher>();
  private readonly wakers = new Set<() => void>();

  constructor(
    readonly endpoints: string[],
    tls: { caFile?: string; certFile?: string; keyFile?: string } = {},
    opts: EtcdDatastoreOptions = {},
  ) {
    this.opTimeoutMs = opts.opTimeoutMs ?? 10_000;
    const callTimeout = opts.callTimeoutMs ?? 3_000;
    this.logger = log('datastore', { backend: 'etcdv3', endpoints });
    const options: IOptions = {
      hosts: endpoints,
      dialTimeout: callTimeout,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + callTimeout }),
      faultHandling: { host: passThroughPolicy },
    };
    if (tls.caFile || tls.certFile) {
      const read = (f: string, what: string) => {
        try {
          return readFileSync(f);
        } catch (e) {
          throw new DatastoreUnavailable('', `cannot read ${what} ${f}: ${(e as Error).message}`);
        }
      };
      options.credentials = {
        rootCertificate: tls.caFile ? read(tls.caFile, 'ETCD_CA_CERT_FILE') : Buffer.alloc(0),
        ...(tls.certFile ? { certChain: read(tls.certFile, 'ETCD_CERT_FILE') } : {}),
        ...(tls.keyFile ? { privateKey: read(tls.keyFile, 'ETCD_KEY_FILE') } : {}),
      };
      if (!tls.caFile) delete (options.credentials as { rootCertificate?: Buffer }).rootCertificate;
    }
    this.client = new Etcd3(options);
  }

  static async connect(cfg: DatastoreConfig, opts?: EtcdDatastoreOptions): Promise<EtcdDatastore> {
    const tls: { caFile?: string; certFile?: string; keyFile?: string } = {};
    if (cfg.etcdCaCertFile) tls.caFile = cfg.etcdCaCertFile;
    if (cfg.etcdCertFile) tls.certFile = cfg.etcdCertFile;
    if (cfg.etcdKeyFile) tls.keyFile = cfg.etcdKeyFile;
    return new EtcdDatastore(cfg.etcdEndpoints ?? ['http://127.0.0.1:2379'], tls, opts);
  }

  /** Run `fn`, retrying while etcd is unreachable. `attempt` > 0 tells fn that an earlier try may
   *  have been applied by etcd before the connection broke (so a failed compare may be our own write). */
  private async retry<T>(what: string, key: string, fn: (attempt: number) => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.opTimeoutMs;
    let delay = 50;
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new DatastoreUnavailable(key, 'the datastore is closed');
      try {
        return await fn(attempt);
      } catch (e) {
        if (!isUnreachable(e)) throw e;
        if (Date.now() + delay > deadline) {
          throw new DatastoreUnavailable(
            key,
            `etcd at ${this.endpoints.join(',')} did not answer ${what} within ${this.opTimeoutMs} ms: ${(e as Error).message.split(/\.? Resolution note|\n/)[0]}`,
          );
        }
        this.logger.debug({ err: (e as Error).message, attempt }, `etcd ${what} failed, retrying`);
        await sleep(delay * (0.5 + Math.random()));
        delay = Math.min(delay * 2, 1000);
      }
    }
  }

  async revision(): Promise<number> {
    return this.retry('revision', '', async () => num((await this.client.get('\0').exec()).header.revision));
  }

  async get<T>(key: string): Promise<KVPair<T> | undefined> {
    return this.retry('get', key, async () => {
      const res = await this.client.get(key).exec();
      const kv = res.kvs[0];
      return kv ? { key, value: decode<T>(kv), revision: num(kv.mod_revision) } : undefined;
    });
  }

  async list<T>(prefix: string): Promise<ListResult<T>> {
    return this.retry('list', prefix, async () => {
      const res = await this.client.getAll().prefix(prefix).sort('Key', 'Ascend').exec();
      return {
        items: res.kvs.map((kv) => ({ key: kv.key.toString('utf8'), value: decode<T>(kv), revision: num(kv.mod_revision) })),
        revision: num(res.header.revision),
      };
    });
  }

  async create<T>(key: string, value: T): Promise<KVPair<T>> {
    const json = encode(key, value);
    return this.retry('create', key, async (attempt) => {
      const res = await this.client.if(key, 'Create', '==', 0).then(this.client.put(key).value(json)).else(this.client.get(key)).commit();
      if (res.succeeded) return { key, value, revision: num(res.header.revision) };
      const cur = res.responses[0]?.response_range?.kvs[0];
      if (attempt > 0 && cur && cur.value.toString('utf8') === json && num(cur.create_revision) === num(cur.mod_revision)) {
        return { key, value, revision: num(cur.mod_revision) }; // our earlier attempt landed
      }
      throw new DatastoreExists(key);
    });
  }

  async update<T>(key: string, value: T, expectedRevision: number): Promise<KVPair<T>> {
    const json = encode(key, value);
    if (!(expectedRevision > 0)) throw new DatastoreConflict(key, expectedRevision);
    return this.retry('update', key, async (attempt) => {
      const res = await this.client
        .if(key, 'Mod', '==', expectedRevision)
        .then(this.client.put(key).value(json))
        .else(this.client.get(key))
        .commit();
      if (res.succeeded) return { key, value, revision: num(res.header.revision) };
      const cur = res.responses[0]?.response_range?.kvs[0];
      if (!cur) throw new DatastoreNotFound(key);
      if (attempt > 0 && cur.value.toString('utf8') === json && num(cur.mod_revision) > expectedRevision) {
        return { key, value, revision: num(cur.mod_revision) }; // our earlier attempt landed
      }
      throw new DatastoreConflict(key, expectedRevision, num(cur.mod_revision));
    });
  }

  async delete(key: string, expectedRevision?: number): Promise<void> {
    await this.retry('delete', key, async (attempt) => {
      if (expectedRevision === undefined) {
        const res = await this.client.delete().key(key).exec();
        if (num(res.deleted) === 0 && attempt === 0) throw new DatastoreNotFound(key);
        return;
      }
      const res = await this.client
        .if(key, 'Mod', '==', expectedRevision)
        .then(this.client.delete().key(key))
        .else(this.client.get(key))
        .commit();
      if (res.succeeded) return;
      const cur = res.responses[0]?.response_range?.kvs[0];
      if (!cur) {
        if (attempt > 0) return; // our earlier attempt landed
        throw new DatastoreNotFound(key);
      }
      throw new DatastoreConflict(key, expectedRevision, num(cur.mod_revision));
    });
  }

  /** One etcd Txn: every op's compare (create: create_revision == 0; update / delete with a revision:
   *  mod_revision == it; delete without: the key exists), then every write; else a read of each key to
   *  say which compare failed. */
  async commit(ops: TxnOp[]): Promise<number[]> {
    checkTxnOps(ops);
    const json = ops.map((o) => (o.op === 'delete' ? '' : encode(o.key, o.value)));
    return this.retry('commit', ops[0]!.key, async (attempt) => {
      let b: ComparatorBuilder | undefined;
      for (const o of ops) {
        const [col, cmp, v] =
          o.op === 'create'
            ? (['Create', '==', 0] as const)
            : o.expectedRevision !== undefined
              ? (['Mod', '==', o.expectedRevision] as const)
              : (['Create', '>', 0] as const);
        b = b ? b.and(o.key, col, cmp, v) : this.client.if(o.key, col, cmp, v);
      }
      const res = await b!
        .then(...ops.map((o, i) => (o.op === 'delete' ? this.client.delete().key(o.key) : this.client.put(o.key).value(json[i]!))))
        .else(...ops.map((o) => this.client.get(o.key)))
        .commit();
      const rev = num(res.header.revision);
      if (res.succeeded) return ops.map(() => rev);
      const cur = ops.map((_, i) => res.responses[i]?.response_range?.kvs[0]);
      if (attempt > 0) {
        // Our earlier attempt may have landed: every put's value there at one shared revision, every delete gone.
        const mods = new Set(cur.filter((kv) => kv).map((kv) => num(kv!.mod_revision)));
        const landed = mods.size <= 1 && ops.every((o, i) => (o.op === 'delete' ? !cur[i] : cur[i]?.value.toString('utf8') === json[i]));
        if (landed) return ops.map(() => (mods.size ? [...mods][0]! : rev));
      }
      ops.forEach((o, i) => {
        const kv = cur[i];
        if (o.op === 'create') {
          if (kv) throw new DatastoreExists(o.key);
        } else if (!kv) throw new DatastoreNotFound(o.key);
        else if (o.expectedRevision !== undefined && num(kv.mod_revision) !== o.expectedRevision)
          throw new DatastoreConflict(o.key, o.expectedRevision, num(kv.mod_revision));
      });
      throw new DatastoreConflict(ops[0]!.key, 0); // a compare failed between the Txn and its reads
    });
  }

  /** etcd refuses a read at a compacted revision: use that to tell "compacted" from other failures. */
  private async compactedAt(prefix: string, rev: number): Promise<number | undefined> {
    try {
      await this.client.getAll().prefix(prefix).revision(rev).limit(1).keys();
      return undefined;
    } catch (e) {
      if (/compacted/i.test((e as Error).message)) {
        return num((await this.client.get('\0').exec()).header.revision);
      }
      if (/future revision/i.test((e as Error).message)) return undefined;
      throw e;
    }
  }

  async *watch<T>(prefix: string, fromRevision: number, signal?: AbortSignal): AsyncIterable<WatchEvent<T>> {
    let next = fromRevision <= 0 ? (await this.revision()) + 1 : fromRevision;
    const compacted = await this.retry('watch', prefix, () => this.compactedAt(prefix, next));
    if (compacted !== undefined) throw new DatastoreCompacted(prefix, next, compacted);

    const queue: WatchEvent<T>[] = [];
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    const poke = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    let received = next - 1; // last revision handed to the queue

    const watcher = this.client.watch().prefix(prefix).startRevision(String(next)).withPreviousKV().watcher();
    this.watchers.add(watcher);
    watcher.on('data', (res) => {
      // Events of one transaction share its revision (a restore writes many keys in one): only those at
      // or below what an earlier response delivered are a replay after a resume.
      const delivered = received;
      for (const ev of res.events) {
        const revision = num(ev.kv.mod_revision);
        if (revision <= delivered) continue; // replay after a resume
        received = revision;
        const key = ev.kv.key.toString('utf8');
        const previous = ev.prev_kv ? { previous: decode<T>(ev.prev_kv) } : {};
        queue.push(
          ev.type === 'Put'
            ? { type: 'put', key, value: decode<T>(ev.kv), revision, ...previous }
            : { type: 'delete', key, revision, ...previous },
        );
      }
      if (queue.length) poke();
    });
    watcher.on('disconnected', (err: Error) => {
      // Resume exactly after what we delivered (the client would resume after the last header revision).
      (watcher as unknown as { request: { start_revision: string } }).request.start_revision = String(received + 1);
      this.logger.debug({ prefix, resumeFrom: received + 1, err: err?.message }, 'etcd watch disconnected; will resume');
    });
    watcher.on('error', (err: Error) => {
      failure = err;
      poke();
    });
    const onAbort = () => poke();
    signal?.addEventListener('abort', onAbort, { once: true });
    this.wakers.add(onAbort);
    try {
      while (!signal?.aborted && !this.closed) {
        const ev = queue.shift();
        if (ev) {
          next = ev.revision + 1;
          yield ev;
          continue;
        }
        if (failure) {
          const c = await this.compactedAt(prefix, next).catch(() => undefined);
          if (c !== undefined) throw new DatastoreCompacted(prefix, next, c);
          throw new DatastoreUnavailable(prefix, `etcd watch of "${prefix}" failed: ${failure.message}`);
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.wakers.delete(onAbort);
      this.watchers.delete(watcher);
      await atMost(watcher.cancel(), 1000);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of [...this.wakers]) w();
    if (this.watchers.size) await atMost(Promise.all([...this.watchers].map((w) => w.cancel().catch(() => undefined))), 1000);
    this.client.close();
  }
}

function encode(key: string, value: unknown): string {
  if (typeof key !== 'string' || key === '') throw new TypeError('datastore key must be a non-empty string');
  const json = JSON.stringify(value);
  if (json === undefined) throw new TypeError(`datastore value for "${key}" must be JSON-serializable`);
  return json;
}
