// The agent's published status (Calico's CalicoNodeStatus idea): one compact NodeStatusRecord per
// node at STATUS_PREFIX<node> in the datastore, read by `tabbyctl cluster status` on any machine.
// Written when it changes (at most every `minIntervalMs`) and at least every `heartbeatMs`, so a
// reader can tell a stopped agent by the record's age. Records expire with their node: readers ignore
// a record whose Node is gone, and every agent deletes such records now and then (`gcEveryMs`).
// Publishing never blocks or fails the agent: a datastore error is kept for the next record.
import type { Datastore } from '../datastore/types.js';
import { DatastoreConflict, DatastoreExists, DatastoreNotFound } from '../datastore/types.js';
import type { Logger } from '../common/log.js';
import type { NodeStatusRecord } from './cluster-check.js';
import { NODES_PREFIX, STATUS_PREFIX } from '../datastore/keys.js';
import { statusKey } from './cluster-input.js';
import { isoTime } from '../common/iso-time.js';

export interface PublisherOptions {
  ds: Datastore;
  node: string;
  /** The record as of now (updatedAt is set by the publisher). */
  source: () => NodeStatusRecord;
  logger: Logger;
  checkMs?: number;
  minIntervalMs?: number;
  heartbeatMs?: number;
  gcEveryMs?: number;
  now?: () => number;
}

export const PUBLISH_DEFAULTS = { checkMs: 1000, minIntervalMs: 2000, heartbeatMs: 30_000, gcEveryMs: 60_000 } as const;

const comparable = (r: NodeStatusRecord): string => JSON.stringify({ ...r, updatedAt: '' });

export class NodeStatusPublisher {
  private timer: NodeJS.Timeout | undefined;
  private lastBody = '';
  private lastWrite = 0;
  private lastGc = 0;
  private running: Promise<void> | undefined;
  private lastError: string | undefined;
  private readonly o: Required<Omit<PublisherOptions, 'now'>> & { now: () => number };

  constructor(opts: PublisherOptions) {
    this.o = { ...PUBLISH_DEFAULTS, now: Date.now, ...opts };
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      void this.tick();
    }, this.o.checkMs);
    this.timer.unref();
    void this.tick();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** A stopping agent says so (readers need not wait for the record to go stale); best effort. */
  async publishStopped(why: string): Promise<void> {
    this.stop();
    await this.running?.catch(() => undefined);
    let rec: NodeStatusRecord;
    try {
      rec = this.o.source();
    } catch {
      return;
    }
    rec.ready = false;
    rec.problems = [...rec.problems, `tabby-node stopped (${why}) at ${isoTime(this.o.now())}`];
    rec.updatedAt = isoTime(this.o.now());
    rec.intervalMs = this.o.heartbeatMs;
    // Never hold up a shutdown on an unreachable datastore.
    await Promise.race([this.write(rec).catch(() => undefined), new Promise<void>((r) => setTimeout(r, 2000).unref())]);
  }

  /** One check: publish when changed (rate-limited) or when the heartbeat is due. Exposed for tests. */
  tick(): Promise<void> {
    this.running ??= this.publishIfDue().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async publishIfDue(): Promise<void> {
    const now = this.o.now();
    let rec: NodeStatusRecord;
    try {
      rec = this.o.source();
    } catch {
      return;
    }
    if (this.lastError && !rec.lastError) rec.lastError = `publishing status: ${this.lastError}`;
    const body = comparable(rec);
    const changed = body !== this.lastBody;
    const since = now - this.lastWrite;
    if (!(changed && since >= this.o.minIntervalMs) && since < this.o.heartbeatMs) return;
    rec.updatedAt = isoTime(now);
    rec.intervalMs = this.o.heartbeatMs;
    try {
      await this.write(rec);
      this.lastBody = body;
      this.lastWrite = now;
      this.lastError = undefined;
    } catch (e) {
      this.lastError = e instanceof Error ? e.message : String(e);
      this.o.logger.debug({ err: this.lastError }, 'status not published (retrying)');
    }
    if (now - this.lastGc >= this.o.gcEveryMs) {
      this.lastGc = now;
      await this.gc().catch(() => undefined);
    }
  }

  private async write(rec: NodeStatusRecord): Promise<void> {
    const key = statusKey(this.o.node);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const cur = await this.o.ds.get<NodeStatusRecord>(key);
        if (cur) await this.o.ds.update(key, rec, cur.revision);
        else await this.o.ds.create(key, rec);
        return;
      } catch (e) {
        if (e instanceof DatastoreConflict || e instanceof DatastoreExists || e instanceof DatastoreNotFound) continue;
        throw e;
      }
    }
  }

  /** Delete the records of nodes whose Node resource is gone (they expire with their node). */
  async gc(): Promise<string[]> {
    const [records, nodes] = await Promise.all([this.o.ds.list<NodeStatusRecord>(STATUS_PREFIX), this.o.ds.list(NODES_PREFIX)]);
    const names = new Set(nodes.items.map((kv) => kv.key.slice(kv.key.lastIndexOf('/') + 1)));
    const gone: string[] = [];
    for (const kv of records.items) {
      const node = kv.key.slice(STATUS_PREFIX.length);
      if (names.has(node) || node === this.o.node) continue;
      try {
        await this.o.ds.delete(kv.key, kv.revision);
        gone.push(node);
      } catch {
        /* another agent did it, or it was rewritten */
      }
    }
    return gone;
  }
}
