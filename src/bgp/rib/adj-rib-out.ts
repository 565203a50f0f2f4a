// Adj-RIB-Out of one peer: what the peer has from us (`sent`) and what should change (`pending`).
// Changes are coalesced per prefix (only the latest wish counts) and handed out in batches grouped
// by identical attribute set — the speaker packs each group into as few UPDATEs as fit (BIRD's
// "buckets"). Withdrawals come first, grouped per family. Export attribute sets are interned in the
// shared AttrTable and reference-counted here while the peer holds them.
import type { PrefixList } from '../codec/types.js';
import type { AttrSet, AttrTable } from './attrs.js';
import { PrefixTable, newPrefixList, writePrefix, afiOfBucket, type PrefixKey } from './prefix-table.js';

export interface OutBatch {
  afi: 1 | 2;
  /** null: withdraw these prefixes. */
  attrs: AttrSet | null;
  prefixes: PrefixList;
}

export class AdjRibOut {
  readonly sent = new PrefixTable<AttrSet>();
  private readonly pending = new PrefixTable<AttrSet | null>();
  /** Prefixes to send again unchanged (route refresh); a set, so repeated requests coalesce. */
  private readonly resend = new PrefixTable<true>();
  private readonly resendByAfi = [0, 0];

  constructor(private readonly table: AttrTable) {}

  get pendingCount(): number {
    return this.pending.size + this.resend.size;
  }

  /** Route refresh (RFC 2918 §4): queue everything the peer has of `afi` to be sent again, in the normal output path. */
  resendAll(afi: 1 | 2): void {
    this.sent.forEach((_a, b, k) => {
      if (afiOfBucket(b) !== afi || this.resend.get(b, k)) return;
      this.resend.set(b, k, true);
      this.resendByAfi[afi - 1]!++;
    });
  }

  /** Re-sends still queued for a family. */
  resendPending(afi: 1 | 2): boolean {
    return this.resendByAfi[afi - 1]! > 0;
  }

  /** Record that the peer has this prefix without sending it (leaving an update group: what it was queued). */
  seed(bucket: number, key: PrefixKey, attrs: AttrSet): void {
    this.table.ref(attrs);
    const cur = this.sent.get(bucket, key);
    if (cur) this.table.unref(cur);
    this.sent.set(bucket, key, attrs);
  }

  /** What we want the peer to have for this prefix: an attribute set, or null (nothing). Returns
   *  whether a change for it is now pending (false: the peer already has exactly that). */
  want(bucket: number, key: PrefixKey, attrs: AttrSet | null): boolean {
    const cur = this.sent.get(bucket, key);
    if (cur === attrs || (attrs === null && cur === undefined)) {
      this.pending.delete(bucket, key);
      return false;
    }
    this.pending.set(bucket, key, attrs);
    return true;
  }

  /** Take up to `max` pending changes as batches (withdrawals first); `sent` is updated as if they were sent. */
  take(max = Infinity): OutBatch[] {
    const withdraw: [number, PrefixKey][][] = [[], []];
    const groups = new Map<AttrSet, [number, PrefixKey][]>();
    let n = 0;
    for (const [b, k, attrs] of this.pending.entries()) {
      if (n >= max) break;
      n++;
      this.pending.delete(b, k);
      if (this.resend.get(b, k)) {
        this.resend.delete(b, k);
        this.resendByAfi[afiOfBucket(b) - 1]!--;
      } // goes out now anyway
      const cur = this.sent.get(b, k);
      if (attrs === null) {
        if (cur === undefined) continue;
        this.sent.delete(b, k);
        this.table.unref(cur);
        withdraw[afiOfBucket(b) - 1]!.push([b, k]);
        continue;
      }
      if (cur === attrs) continue;
      this.table.ref(attrs);
      if (cur) this.table.unref(cur);
      this.sent.set(b, k, attrs);
      let g = groups.get(attrs);
      if (!g) groups.set(attrs, (g = []));
      g.push([b, k]);
    }
    // Re-sends (route refresh) after the real changes; a prefix changed meanwhile went out above.
    for (const [b, k] of this.resend.entries()) {
      if (n >= max) break;
      n++;
      this.resend.delete(b, k);
      this.resendByAfi[afiOfBucket(b) - 1]!--;
      const cur = this.sent.get(b, k);
      if (cur === undefined) continue;
      let g = groups.get(cur);
      if (!g) groups.set(cur, (g = []));
      g.push([b, k]);
    }
    const out: OutBatch[] = [];
    for (const afi of [1, 2] as const) {
      const w = withdraw[afi - 1]!;
      if (w.length) out.push({ afi, attrs: null, prefixes: toList(afi, w) });
    }
    for (const [attrs, keys] of groups) {
      const afi = afiOfBucket(keys[0]![0]);
      const same = keys.filter((x) => afiOfBucket(x[0]) === afi);
      out.push({ afi, attrs, prefixes: toList(afi, same) });
      if (same.length !== keys.length) {
        const other = afi === 1 ? 2 : 1;
        out.push({
          afi: other,
          attrs,
          prefixes: toList(
            other,
            keys.filter((x) => afiOfBucket(x[0]) === other),
          ),
        });
      }
    }
    return out;
  }

  /** Everything the peer has, as batches (route refresh: resend the Adj-RIB-Out, RFC 2918 §4). */
  dump(afi?: 1 | 2): OutBatch[] {
    const groups = new Map<AttrSet, [number, PrefixKey][]>();
    this.sent.forEach((attrs, b, k) => {
      if (afi !== undefined && afiOfBucket(b) !== afi) return;
      let g = groups.get(attrs);
      if (!g) groups.set(attrs, (g = []));
      g.push([b, k]);
    });
    const out: OutBatch[] = [];
    for (const [attrs, keys] of groups) {
      for (const f of [1, 2] as const) {
        const ks = keys.filter((x) => afiOfBucket(x[0]) === f);
        if (ks.length) out.push({ afi: f, attrs, prefixes: toList(f, ks) });
      }
    }
    return out;
  }

  /** Forget everything (session down): drop references. */
  clear(): void {
    this.sent.forEach((attrs) => this.table.unref(attrs));
    this.sent.clear();
    this.pending.clear();
    this.resend.clear();
    this.resendByAfi[0] = this.resendByAfi[1] = 0;
  }
}

function toList(afi: 1 | 2, keys: [number, PrefixKey][]): PrefixList {
  const list = newPrefixList(afi, keys.length);
  for (let i = 0; i < keys.length; i++) writePrefix(list, i, keys[i]![0], keys[i]![1]);
  list.count = keys.length;
  return list;
}
