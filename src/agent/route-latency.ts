// Route latency for metrics: UPDATE received → kernel route programmed, and withdraw received →
// kernel route removed. The speaker hands the agent its best-route changes in batches (one per
// event-loop turn); each batch is stamped when it arrives and completed by the first kernel apply that
// *started after* it (an apply already running may not carry the change). One observation per batch
// and kind, so the hot path does no per-prefix work here. During a graceful restart deletes are held
// back: a withdraw then counts when the apply ends although the route stays until convergence.
export class RouteLatency {
  private readonly pending: { t0: number; adds: boolean; withdraws: boolean }[] = [];

  constructor(
    private readonly observe: (kind: 'add' | 'withdraw', seconds: number) => void,
    private readonly now: () => number = () => performance.now(),
    private readonly maxPending = 10_000,
  ) {}

  /** A batch of best-route changes arrived (adds: some prefix got a best route; withdraws: some lost it). */
  onBatch(adds: boolean, withdraws: boolean): void {
    if (!adds && !withdraws) return;
    if (this.pending.length >= this.maxPending) return; // no apply for a long time: keep the oldest stamps
    this.pending.push({ t0: this.now(), adds, withdraws });
  }

  /** A kernel apply finished successfully after `seconds`: complete every batch older than its start. */
  onApplied(seconds: number): void {
    const end = this.now();
    const start = end - seconds * 1000;
    let n = 0;
    for (const b of this.pending) {
      if (b.t0 > start) break;
      if (b.adds) this.observe('add', (end - b.t0) / 1000);
      if (b.withdraws) this.observe('withdraw', (end - b.t0) / 1000);
      n++;
    }
    this.pending.splice(0, n);
  }

  get size(): number {
    return this.pending.length;
  }
}
