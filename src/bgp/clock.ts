// Injected time for the BGP FSM and sessions: a real clock for the product, a virtual one for tests
// (advance() fires due timers in order, no sleeping). RFC 4271 §10 jitter is applied in one place:
// `jitter()`, used by every timer start that the RFC says to jitter (ConnectRetry, Keepalive, idle hold).

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since an arbitrary origin. */
  now(): number;
  setTimer(ms: number, fn: () => void): TimerHandle;
  /** Uniform random in [0, 1) — injected so jitter is deterministic in tests. */
  random(): number;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  },
  random: () => Math.random(),
};

/** RFC 4271 §10: jitter timers by a random factor in [0.75, 1.0]. */
export function jitter(ms: number, clock: Clock): number {
  return Math.round(ms * (0.75 + 0.25 * clock.random()));
}

/** A clock for tests: time moves only when advance() is called. */
export class VirtualClock implements Clock {
  private t = 0;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  constructor(private readonly rand: () => number = () => 0.5) {}
  now(): number {
    return this.t;
  }
  random(): number {
    return this.rand();
  }
  setTimer(ms: number, fn: () => void): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return { cancel: () => void this.timers.delete(id) };
  }
  /** Number of pending timers. */
  get pending(): number {
    return this.timers.size;
  }
  /** Move time forward by ms, firing due timers in time order (timers set while firing count too). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers)
        if (e[1].at <= end && (!next || e[1].at < next[1].at || (e[1].at === next[1].at && e[0] < next[0]))) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}
