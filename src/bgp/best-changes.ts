// Best-route changes handed out in batches (the route pipeline's speaker → agent stage, DESIGN.md):
// one 'changes' event per turn of the event loop instead of one event object per prefix. Prefixes
// stay in the RIB's form — (bucket, key): IPv4 length + network as int32 in typed arrays, IPv6 as a
// short string key — and are formatted only when the consumer asks (prefix(i)). Next hops are the
// best path's interned array (the same frozen array for every prefix of an attribute set); null means
// withdrawn. A batch is valid only during its event: the arrays are reused for the next one.
import { formatPrefixKey, BUCKET_V6, type PrefixKey } from './rib/prefix-table.js';
import { doubled } from '../common/typed-array.js';

export interface BestChanges {
  readonly count: number;
  /** "10.1.2.0/24" of change i */
  prefix(i: number): string;
  /** the best path's next hops (interned, do not mutate), or null: no best route any more */
  nextHop(i: number): readonly string[] | null;
  /** the peer the best path came from ('' = originated here) */
  source(i: number): string;
  /** the kernel route priority a BGPFilter setPriority gave the best path (undefined: none) */
  metric(i: number): number | undefined;
  /** the prefix length of an IPv4 change i, or -1 (IPv6): then net4(i) is its network (int32) */
  len4(i: number): number;
  net4(i: number): number;
}

/** Above this many slots the arrays are dropped after a batch (a 1M-prefix dump does not pin them). */
const KEEP_SLOTS = 65536;

export class BestChangeBatch implements BestChanges {
  count = 0;
  private buckets = new Uint8Array(1024);
  private keys4 = new Int32Array(1024);
  // Kept between batches and cleared in place (their length is the high-water mark): emptied with
  // `length = 0`, every batch grew them again from nothing — 3× their size in garbage per batch,
  // the largest allocation on the ingest path (~180 B per prefix).
  private keys6: (string | undefined)[] = [];
  private hops: (readonly string[] | null)[] = [];
  private sources: string[] = [];
  /** sparse: only set when some change has a metric */
  private metrics: (number | undefined)[] = [];
  private hasV6 = false;
  private hasMetric = false;
  private scheduled = false;

  /** The microtask, made once: an arrow written inside push() made V8 allocate a context for `this` on
   *  every call (~40 B per prefix of garbage, the largest single allocation of an ingest). */
  private readonly flushTask = (): void => this.flush();

  /** onFlush runs once after the current synchronous work (a microtask) with the batch, then it is reset. */
  constructor(private readonly onFlush: (b: BestChanges) => void) {}

  push(bucket: number, key: PrefixKey, nextHops: readonly string[] | null, source: string, metric?: number): void {
    const i = this.count++;
    if (i >= this.buckets.length) {
      this.buckets = doubled(this.buckets);
      this.keys4 = doubled(this.keys4);
    }
    this.buckets[i] = bucket;
    if (bucket === BUCKET_V6) {
      this.keys6[i] = key as string;
      this.hasV6 = true;
    } else this.keys4[i] = key as number;
    if (i < this.hops.length) {
      this.hops[i] = nextHops;
      this.sources[i] = source;
    } else {
      this.hops.push(nextHops);
      this.sources.push(source);
    }
    if (metric !== undefined) {
      this.metrics[i] = metric;
      this.hasMetric = true;
    } else if (this.hasMetric) this.metrics[i] = undefined;
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flushTask);
    }
  }

  prefix(i: number): string {
    const b = this.buckets[i]!;
    return formatPrefixKey(b, b === BUCKET_V6 ? this.keys6[i]! : this.keys4[i]!);
  }
  len4(i: number): number {
    const b = this.buckets[i]!;
    return b === BUCKET_V6 ? -1 : b;
  }
  net4(i: number): number {
    return this.keys4[i]!;
  }
  nextHop(i: number): readonly string[] | null {
    return this.hops[i] ?? null;
  }
  source(i: number): string {
    return this.sources[i] ?? '';
  }
  metric(i: number): number | undefined {
    return this.hasMetric ? this.metrics[i] : undefined;
  }

  private flush(): void {
    this.scheduled = false;
    if (!this.count) return;
    try {
      this.onFlush(this);
    } finally {
      const n = this.count;
      this.count = 0;
      if (n > KEEP_SLOTS) {
        this.buckets = new Uint8Array(1024);
        this.keys4 = new Int32Array(1024);
        this.hops = [];
        this.sources = [];
      } else {
        // drop the references (next-hop arrays of paths that may be gone), keep the storage
        this.hops.fill(null, 0, n);
        this.sources.fill('', 0, n);
      }
      if (this.hasMetric) this.metrics = [];
      if (this.hasV6) this.keys6 = [];
      this.hasMetric = this.hasV6 = false;
    }
  }
}
