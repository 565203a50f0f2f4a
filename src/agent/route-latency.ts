// Route latency for metrics: UPDATE received → kernel route programmed, and withdraw received →
// kernel route removed. The speaker's best/withdrawn events stamp a prefix; the next kernel apply
// that *started after* the stamp completes it (an apply already running may not carry the change).
// A prefix changed again before it reached the kernel keeps its first stamp (the user waited that long).
// During a graceful restart deletes are held back: a withdraw is then counted when the apply ends,
// although the route stays until convergence (the figure is the agent's, not the hold's).
export class RouteLatency {
  private readonly added = new Map<string, number>();
  private readonly removed = new Map<string, number>();

  constructor(
    private readonly observe: (kind: 'add' | 'withdraw', seconds: number) => void,
    private readonly now: () => number = () => performance.now(),
    private readonly maxPending = 100_000,
  ) {}

  onBest(prefix: string): void {
    this.removed.delete(prefix);
    if (!this.added.has(prefix) && this.added.size < this.maxPending) this.added.set(prefix, this.now());
  }

  onWithdrawn(prefix: string): void {
    this.added.delete(prefix);
    if (!this.removed.has(prefix) && this.removed.size < this.maxPending) this.removed.set(prefix, this.now());
  }

  /** A kernel apply finished successfully after `seconds`: complete every stamp older than its start. */
  onApplied(seconds: number): void {
    const end = this.now();
    const start = end - seconds * 1000;
    for (const [map, kind] of [[this.added, 'add'], [this.removed, 'withdraw']] as const) {
      for (const [prefix, t0] of map) {
        if (t0 > start) continue;
        this.observe(kind, (end - t0) / 1000);
        map.delete(prefix);
      }
    }
  }

  get pending(): number { return this.added.size + this.removed.size; }
}
