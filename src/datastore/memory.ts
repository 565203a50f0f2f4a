// In-process datastore for unit tests and fakes: same semantics as the real backends
// (revisions, CAS, ordered resumable watch), no persistence. Fault injection: failNext().
import {
  DatastoreCompacted,
  DatastoreConflict,
  DatastoreExists,
  DatastoreNotFound,
  type Datastore,
  type KVPair,
  checkTxnOps,
  checkTxnPreconditions,
  type ListResult,
  type TxnOp,
  type WatchEvent,
} from './types.js';

export class MemoryDatastore implements Datastore {
  readonly kind = 'memory' as const;
  private rev = 0;
  private readonly data = new Map<string, { value: unknown; revision: number }>();
  private readonly history: WatchEvent[] = [];
  private readonly waiters = new Set<() => void>();
  private injected: Error[] = [];

  /** The next write (create/update/delete) throws this error instead of writing. */
  failNext(err: Error): void {
    this.injected.push(err);
  }

  async revision(): Promise<number> {
    return this.rev;
  }

  async get<T>(key: string): Promise<KVPair<T> | undefined> {
    const e = this.data.get(key);
    return e ? { key, value: structuredClone(e.value) as T, revision: e.revision } : undefined;
  }

  async list<T>(prefix: string): Promise<ListResult<T>> {
    const items: KVPair<T>[] = [];
    for (const [key, e] of [...this.data].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (key.startsWith(prefix)) items.push({ key, value: structuredClone(e.value) as T, revision: e.revision });
    }
    return { items, revision: this.rev };
  }

  async create<T>(key: string, value: T): Promise<KVPair<T>> {
    this.takeInjected();
    if (this.data.has(key)) throw new DatastoreExists(key);
    return this.put(key, value, undefined);
  }

  async update<T>(key: string, value: T, expectedRevision: number): Promise<KVPair<T>> {
    this.takeInjected();
    const e = this.data.get(key);
    if (!e) throw new DatastoreNotFound(key);
    if (e.revision !== expectedRevision) throw new DatastoreConflict(key, expectedRevision, e.revision);
    return this.put(key, value, e.value);
  }

  async delete(key: string, expectedRevision?: number): Promise<void> {
    this.takeInjected();
    const e = this.data.get(key);
    if (!e) throw new DatastoreNotFound(key);
    if (expectedRevision !== undefined && e.revision !== expectedRevision) throw new DatastoreConflict(key, expectedRevision, e.revision);
    this.data.delete(key);
    this.emit({ type: 'delete', key, revision: ++this.rev, previous: e.value });
  }

  async commit(ops: TxnOp[]): Promise<number[]> {
    checkTxnOps(ops);
    this.takeInjected();
    checkTxnPreconditions(ops, (k) => this.data.get(k)?.revision);
    return ops.map((o) => {
      const e = this.data.get(o.key);
      if (o.op !== 'delete') return this.put(o.key, o.value, e?.value).revision;
      this.data.delete(o.key);
      this.emit({ type: 'delete', key: o.key, revision: ++this.rev, previous: e!.value });
      return this.rev;
    });
  }

  async *watch<T>(prefix: string, fromRevision: number, signal?: AbortSignal): AsyncIterable<WatchEvent<T>> {
    // fromRevision <= 0: only events from now on (etcd's start_revision 0).
    if (fromRevision <= 0) fromRevision = this.rev + 1;
    const oldest = this.history[0]?.revision ?? this.rev + 1;
    if (fromRevision < oldest && fromRevision <= this.rev) throw new DatastoreCompacted(prefix, fromRevision, oldest);
    let next = fromRevision;
    while (!signal?.aborted) {
      for (const ev of this.history) {
        if (ev.revision >= next && ev.key.startsWith(prefix)) {
          next = ev.revision + 1;
          yield structuredClone(ev) as WatchEvent<T>;
        }
      }
      next = Math.max(next, this.rev + 1);
      if (signal?.aborted) break;
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.waiters.delete(wake);
          signal?.removeEventListener('abort', wake);
          resolve();
        };
        this.waiters.add(wake);
        signal?.addEventListener('abort', wake, { once: true });
      });
    }
  }

  async close(): Promise<void> {
    for (const w of [...this.waiters]) w();
  }

  private takeInjected(): void {
    const err = this.injected.shift();
    if (err) throw err;
  }

  private put<T>(key: string, value: T, previous: unknown): KVPair<T> {
    const revision = ++this.rev;
    this.data.set(key, { value: structuredClone(value), revision });
    this.emit({ type: 'put', key, value: structuredClone(value), revision, ...(previous === undefined ? {} : { previous }) });
    return { key, value, revision };
  }

  private emit(ev: WatchEvent): void {
    this.history.push(ev);
    for (const w of [...this.waiters]) w();
  }
}
