// Restoring a `tabbyctl datastore backup` into etcd (`tabbyctl datastore restore` over etcdv3): the
// keys under the tabby prefix become exactly the backup's.
//  - Refused when the prefix holds keys, unless `force`: then the keys not in the backup are deleted
//    and the others overwritten (etcd refuses a put inside a range deleted by the same transaction).
//    What was looked at is checked again by a range compare in the first transaction (empty; or, with
//    force, no key under the prefix changed since it was listed), so a writer that slips in between
//    the look and the write makes the restore fail with nothing changed.
//  - Written in transactions of bounded size (etcd refuses more than --max-txn-ops = 128 operations or
//    --max-request-bytes = 1.5 MiB in one request). A restore that fits one transaction is atomic.
//    A longer one puts a marker key (outside the prefix, so backups and watchers of the prefix never
//    see it) in its first transaction and deletes it in its last; each later transaction runs only if
//    the marker is still the one it put. An interrupted restore leaves the marker: `datastore check`
//    reports it, and a restore refuses to run over it unless `force` (which starts over).
//  - Revisions: etcd's revision only goes forward. The restored keys get new mod revisions (one per
//    transaction), not the backup's; running agents see the restore as ordinary deletes and puts on
//    their watches and follow it, with no compaction or re-list.
import type { Etcd3 } from 'etcd3';
import { DatastoreUnavailable } from './types.js';

/** The marker of a restore in progress: outside `/tabby/` (`-` sorts before `/`). */
export const RESTORE_MARKER = '/tabby-restore-in-progress';

export interface EtcdRestoreOptions {
  force?: boolean;
  /** Operations per transaction (default 100, under etcd's default limit of 128). */
  maxOps?: number;
  /** Bytes of keys and values per transaction (default 1 MiB, under etcd's 1.5 MiB request limit). */
  maxBytes?: number;
  /** Test seam: runs after the emptiness check, before the first transaction. */
  beforeFirstTransaction?: () => Promise<void>;
}

export interface EtcdRestoreResult {
  /** The store revision after the restore. */
  revision: number;
  transactions: number;
  /** Keys that were under the prefix before (deleted or overwritten; 0 without force). */
  replaced: number;
}

type Op = { request_put: { key: Buffer; value: Buffer } } | { request_delete_range: { key: Buffer; range_end?: Buffer } };

/** The end of the range of keys starting with `prefix` (etcd's "prefix + 1"). */
export function prefixEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      b[i]! += 1;
      return b.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/** Cut the puts into transactions within the bounds (`first` operations ride in the first one). */
export function planBatches(puts: Op[], first: number, maxOps: number, maxBytes: number): Op[][] {
  const size = (op: Op) =>
    'request_put' in op ? op.request_put.key.length + op.request_put.value.length : op.request_delete_range.key.length;
  const batches: Op[][] = [[]];
  let ops = first;
  let bytes = 0;
  for (const op of puts) {
    const n = size(op);
    if (batches.at(-1)!.length > 0 && (ops + 2 > maxOps || bytes + n > maxBytes)) {
      batches.push([]);
      ops = 0;
      bytes = 0;
    }
    batches.at(-1)!.push(op);
    ops++;
    bytes += n;
  }
  return batches;
}

export async function restoreEtcd(
  client: Etcd3,
  prefix: string,
  entries: { key: string; value: unknown }[],
  opts: EtcdRestoreOptions = {},
): Promise<EtcdRestoreResult> {
  const maxOps = opts.maxOps ?? 100;
  const maxBytes = opts.maxBytes ?? 1 << 20;
  const kv = client.kv;
  const key = Buffer.from(prefix);
  const end = prefixEnd(prefix);
  const marker = Buffer.from(RESTORE_MARKER);
  const where = 'etcd';

  const listed = await client.getAll().prefix(prefix).exec();
  const existing = listed.kvs.map((k) => k.key.toString());
  const listedAt = Number(listed.header.revision);
  const unfinished = await client.get(RESTORE_MARKER).string();
  if (!opts.force) {
    if (unfinished !== null)
      throw new DatastoreUnavailable(where, `an earlier restore did not finish (${RESTORE_MARKER} is set): re-run it with --force`);
    if (existing.length > 0)
      throw new DatastoreUnavailable(
        where,
        `${existing.length} keys are under ${prefix}: restore into an empty store, or pass --force to replace them (nothing was changed)`,
      );
  }
  const keep = new Set(entries.map((e) => e.key));
  const stale = existing.filter((k) => !keep.has(k));
  const puts: Op[] = [
    ...stale.map((k) => ({ request_delete_range: { key: Buffer.from(k) } })),
    ...entries.map((e) => ({ request_put: { key: Buffer.from(e.key), value: Buffer.from(JSON.stringify(e.value)) } })),
  ];
  // The first transaction may also carry the marker (several transactions) or its removal (a re-run).
  let batches = planBatches(puts, 1, maxOps, maxBytes);
  const several = batches.length > 1;
  if (several) batches = planBatches(puts, 2, maxOps, maxBytes);

  await opts.beforeFirstTransaction?.();
  let markerRev = 0;
  let revision = 0;
  for (let i = 0; i < batches.length; i++) {
    const last = i === batches.length - 1;
    const success: Op[] = [];
    const compare: Record<string, unknown>[] = [];
    if (i === 0) {
      // Empty: create revision 0 for every key of the range (true of an empty range). Forced: no key
      // under the prefix was written since it was listed.
      if (opts.force) compare.push({ key, range_end: end, target: 'Mod', result: 'Less', mod_revision: listedAt + 1 });
      else compare.push({ key, range_end: end, target: 'Create', result: 'Equal', create_revision: 0 });
      if (several)
        success.push({ request_put: { key: marker, value: Buffer.from(JSON.stringify({ started: new Date().toISOString() })) } });
      else if (unfinished !== null) success.push({ request_delete_range: { key: marker } });
    } else {
      compare.push({ key: marker, target: 'Mod', result: 'Equal', mod_revision: markerRev });
    }
    success.push(...batches[i]!);
    if (last && i > 0) success.push({ request_delete_range: { key: marker } });
    let res: Awaited<ReturnType<typeof kv.txn>>;
    try {
      res = await kv.txn({ compare, success, failure: [] } as Parameters<typeof kv.txn>[0]);
    } catch (e) {
      throw new DatastoreUnavailable(
        where,
        i === 0
          ? `restore failed: ${(e as Error).message} (nothing was changed)`
          : `restore stopped after ${i} of ${batches.length} transactions: ${(e as Error).message} (${RESTORE_MARKER} is left set; re-run with --force)`,
      );
    }
    if (!res.succeeded) {
      throw new DatastoreUnavailable(
        where,
        i === 0
          ? `keys under ${prefix} were written while the restore started: nothing was changed (re-run it)`
          : `another restore took over after ${i} of ${batches.length} transactions (${RESTORE_MARKER} changed): this one stopped`,
      );
    }
    revision = Number(res.header.revision);
    if (i === 0) markerRev = revision;
  }
  return { revision, transactions: batches.length, replaced: opts.force ? existing.length : 0 };
}
