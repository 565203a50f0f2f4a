// The one datastore interface every part of tabby uses: a typed KV with revisions.
// Backends: `file` (embedded, one machine, many processes) and `etcdv3`; `memory` for unit tests.
// Every write that depends on a read is a compare-and-swap on the revision read (see ipam/).

/** A value with the datastore revision at which it was last written (etcd's mod_revision). */
export interface KVPair<T = unknown> {
  key: string;
  value: T;
  revision: number;
}

export type WatchEvent<T = unknown> =
  | { type: 'put'; key: string; value: T; revision: number; previous?: T }
  | { type: 'delete'; key: string; revision: number; previous?: T };

export interface ListResult<T = unknown> {
  items: KVPair<T>[];
  /** The store's revision when the list was taken: watch from revision + 1 to miss nothing. */
  revision: number;
}

/** One operation of a multi-key commit, with the condition the single-key call would check. */
export type TxnOp =
  | { op: 'create'; key: string; value: unknown }
  | { op: 'update'; key: string; value: unknown; expectedRevision: number }
  | { op: 'delete'; key: string; expectedRevision?: number };

export interface Datastore {
  readonly kind: 'file' | 'etcdv3' | 'memory';
  get<T = unknown>(key: string): Promise<KVPair<T> | undefined>;
  /** The value as the store holds it, not copied (a store that copies on get): the caller must not change
   *  it. For a hot read whose caller copies what it changes anyway (IPAM's block rounds). */
  getShared?<T = unknown>(key: string): Promise<KVPair<Readonly<T>> | undefined>;
  list<T = unknown>(prefix: string): Promise<ListResult<T>>;
  /** Fails with DatastoreExists when the key exists. Returns the new revision. */
  create<T>(key: string, value: T): Promise<KVPair<T>>;
  /** Compare-and-swap: fails with DatastoreConflict when the key's revision is not expectedRevision
   *  (or DatastoreNotFound when it is gone). */
  update<T>(key: string, value: T, expectedRevision: number): Promise<KVPair<T>>;
  /** Delete; with expectedRevision it is a CAS. Fails with DatastoreNotFound when absent. */
  delete(key: string, expectedRevision?: number): Promise<void>;
  /** Several writes as one: every condition holds and all are made, or the first failing one's error
   *  (DatastoreExists / DatastoreConflict / DatastoreNotFound) is thrown and none is. Durable together
   *  (the file store: one log record, one fdatasync; etcd: one Txn). Returns each op's new revision (a
   *  delete's: the commit's). At most one op per key. */
  commit(ops: TxnOp[]): Promise<number[]>;
  /** Events for keys under prefix with revision >= fromRevision, in order, until the signal aborts.
   *  Resumable: after a disconnect, watch again from the last revision seen + 1.
   *  Throws DatastoreCompacted when fromRevision is older than the history kept (re-list then). */
  watch<T = unknown>(prefix: string, fromRevision: number, signal?: AbortSignal): AsyncIterable<WatchEvent<T>>;
  /** The store's current revision. */
  revision(): Promise<number>;
  close(): Promise<void>;
}

export class DatastoreError extends Error {
  constructor(
    readonly code: string,
    readonly key: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class DatastoreConflict extends DatastoreError {
  constructor(
    key: string,
    readonly expectedRevision: number,
    readonly actualRevision?: number,
  ) {
    super(
      'ECONFLICT',
      key,
      `update of "${key}" at revision ${expectedRevision} conflicts: it is now at revision ${actualRevision ?? 'unknown'} (re-read and retry)`,
    );
  }
}

export class DatastoreExists extends DatastoreError {
  constructor(key: string) {
    super('EEXIST', key, `"${key}" already exists`);
  }
}

export class DatastoreNotFound extends DatastoreError {
  constructor(key: string) {
    super('ENOTFOUND', key, `"${key}" does not exist`);
  }
}

export class DatastoreUnavailable extends DatastoreError {
  constructor(key: string, cause: string) {
    super('EUNAVAILABLE', key, `datastore unavailable: ${cause}`);
  }
}

export class DatastoreCompacted extends DatastoreError {
  constructor(
    prefix: string,
    readonly fromRevision: number,
    readonly compactRevision: number,
  ) {
    super(
      'ECOMPACTED',
      prefix,
      `watch of "${prefix}" from revision ${fromRevision} is older than the history kept (${compactRevision}): list again`,
    );
  }
}

/** The file store's log is damaged where valid records follow (not a torn tail): writes are refused
 *  and nothing is truncated; readers keep the state before the damage. */
export class DatastoreCorrupt extends DatastoreError {
  constructor(
    readonly file: string,
    readonly offset: number,
    detail: string,
  ) {
    super(
      'ECORRUPT',
      file,
      `datastore log ${file} is corrupt at byte offset ${offset} (${detail}): writes are refused and nothing was truncated; run "tabbyctl datastore check", then restore a backup`,
    );
  }
}

/** Refuse an empty commit or one naming a key twice (its outcome would depend on the order). */
export function checkTxnOps(ops: TxnOp[]): void {
  if (ops.length === 0) throw new TypeError('a datastore commit needs at least one operation');
  const keys = new Set<string>();
  for (const o of ops) {
    if (typeof o.key !== 'string' || o.key === '') throw new TypeError('datastore key must be a non-empty string');
    if (keys.has(o.key)) throw new TypeError(`a datastore commit names "${o.key}" twice`);
    keys.add(o.key);
    if (o.op !== 'delete' && (o.value === undefined || typeof o.value === 'function'))
      throw new TypeError(`datastore value for "${o.key}" must be JSON-serializable`);
  }
}

/** A commit's preconditions against the entries as they are (`revisionOf`: undefined when absent): a create
 *  needs the key absent, an update or delete needs it present (at `expectedRevision` when given). Throws
 *  what the same single write would, before anything is written. */
export function checkTxnPreconditions(ops: TxnOp[], revisionOf: (key: string) => number | undefined): void {
  for (const o of ops) {
    const rev = revisionOf(o.key);
    if (o.op === 'create') {
      if (rev !== undefined) throw new DatastoreExists(o.key);
      continue;
    }
    if (rev === undefined) throw new DatastoreNotFound(o.key);
    if (o.expectedRevision !== undefined && rev !== o.expectedRevision) throw new DatastoreConflict(o.key, o.expectedRevision, rev);
  }
}

export const isConflict = (e: unknown): e is DatastoreConflict => e instanceof DatastoreConflict;
