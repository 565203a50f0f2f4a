// The agent's link to the datastore: watches on the resource and IPAM prefixes (any event → onChange),
// plus a reachability probe (revision() with a timeout) that decides "datastore up/down". Down: the
// agent keeps its kernel and BGP state; back up: watches restart and onChange fires so the agent
// re-lists everything (changes made meanwhile by other writers are picked up).
import type { Datastore } from '../datastore/types.js';
import type { Logger } from '../common/log.js';
import { msg, sleep, withTimeout } from './util.js';

export interface DatastoreWatchOptions {
  ds: Datastore;
  prefixes: readonly string[];
  probeIntervalMs: number;
  probeTimeoutMs: number;
  logger: Logger;
  onChange: () => void;
}

export class DatastoreWatch {
  private up = true;
  private error: string | undefined;
  private readonly abort = new AbortController();
  private watchAbort: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: DatastoreWatchOptions) {}

  get isUp(): boolean {
    return this.up;
  }
  get lastError(): string | undefined {
    return this.error;
  }

  start(): void {
    this.startWatches();
    this.timer = setInterval(() => {
      void this.probe();
    }, this.o.probeIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.abort.abort();
    this.watchAbort?.abort();
    if (this.timer) clearInterval(this.timer);
  }

  /** Record the outcome of any datastore call the agent made. */
  mark(up: boolean, err?: unknown): void {
    if (up === this.up) {
      if (!up) this.error = msg(err);
      return;
    }
    this.up = up;
    this.error = up ? undefined : msg(err);
    if (up) this.o.logger.info('datastore up');
    else this.o.logger.warn({ err: this.error }, 'datastore down: keeping the kernel and BGP state as they are');
  }

  private startWatches(): void {
    this.watchAbort?.abort();
    const ac = new AbortController();
    this.watchAbort = ac;
    for (const prefix of this.o.prefixes) void this.watchLoop(prefix, ac.signal);
  }

  private async watchLoop(prefix: string, signal: AbortSignal): Promise<void> {
    while (!signal.aborted && !this.abort.signal.aborted) {
      try {
        const rev = await this.o.ds.revision();
        this.o.onChange();
        for await (const ev of this.o.ds.watch(prefix, rev + 1, signal)) {
          void ev;
          this.o.onChange();
        }
      } catch (e) {
        if (signal.aborted || this.abort.signal.aborted) return;
        this.mark(false, e);
        await sleep(1000, this.abort.signal);
      }
    }
  }

  private async probe(): Promise<void> {
    try {
      await withTimeout(this.o.ds.revision(), this.o.probeTimeoutMs, 'datastore did not answer');
      if (!this.up) {
        this.o.logger.info('datastore reachable again: resyncing');
        this.mark(true);
        this.startWatches();
        this.o.onChange();
      }
    } catch (e) {
      this.mark(false, e);
    }
  }
}
