// Re-detection every AUTODETECT_POLL_INTERVAL: run the resolver again and report a changed address
// (the agent then updates its Node, re-checks conflicts and re-peers). Timers are injected so a test
// drives the loop without waiting.
import { log } from '../common/log.js';

export interface PollTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: PollTimers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface PolledAddresses {
  ipv4?: string | undefined;
  ipv6?: string | undefined;
}

export interface AddressPoller {
  stop(): void /** Run one round now (tests, SIGHUP). */;
  pollNow(): Promise<void>;
}

/**
 * Call `resolve` every `intervalMs`; when the result differs from the last one, call `onChange`.
 * Errors (no address any more, conflicts) go to `onError` and keep the previous address.
 * intervalMs <= 0: never polls (pollNow still works).
 */
export function startAddressPolling(opts: {
  intervalMs: number;
  initial: PolledAddresses;
  resolve: () => Promise<PolledAddresses>;
  onChange: (now: PolledAddresses, before: PolledAddresses) => void | Promise<void>;
  onError?: (err: unknown) => void;
  timers?: PollTimers;
}): AddressPoller {
  const timers = opts.timers ?? realTimers;
  const logger = log('autodetect', { loop: 'poll' });
  let current = { ...opts.initial };
  let handle: unknown;
  let stopped = false;
  let running: Promise<void> | undefined;

  const round = async (): Promise<void> => {
    try {
      const next = await opts.resolve();
      if (stopped) return;
      if (next.ipv4 !== current.ipv4 || next.ipv6 !== current.ipv6) {
        const before = current;
        current = { ...next };
        logger.info({ before, now: next }, 'node address changed');
        await opts.onChange(next, before);
      }
    } catch (err) {
      if (opts.onError) opts.onError(err);
      else logger.warn({ err: (err as Error).message }, 'address re-detection failed; keeping the current address');
    }
  };
  const schedule = (): void => {
    if (stopped || opts.intervalMs <= 0) return;
    handle = timers.setTimeout(() => {
      running = round().finally(() => {
        running = undefined;
        schedule();
      });
    }, opts.intervalMs);
  };
  schedule();
  return {
    stop() {
      stopped = true;
      if (handle !== undefined) timers.clearTimeout(handle);
    },
    async pollNow() {
      if (running) await running;
      await round();
    },
  };
}
