// The lab's pod-to-pod reachability probe: which pairs to ping (all of them up to a limit, beyond it a
// deterministic sample in which every pod is a source and a destination equally often), and pinging
// them several at a time with progress — a 100-node lab has 9,900 pairs, one at a time it never ends.
export interface ProbePair {
  from: string;
  to: string;
  toIp: string;
}

/** All ordered pairs when there are at most `maxPairs`, else about `maxPairs` spread over every pod. */
export function planPairs(
  pods: readonly { name: string; ip: string }[],
  maxPairs: number,
): { pairs: ProbePair[]; total: number; sampled: boolean } {
  const n = pods.length;
  const total = n * (n - 1);
  const pairs: ProbePair[] = [];
  if (maxPairs <= 0 || total <= maxPairs) {
    for (const a of pods) for (const b of pods) if (a !== b) pairs.push({ from: a.name, to: b.name, toIp: b.ip });
    return { pairs, total, sampled: false };
  }
  // Each pod pings k others at offsets spread over the ring, so destinations differ per source and every
  // pod is pinged exactly k times.
  const k = Math.max(1, Math.min(n - 1, Math.floor(maxPairs / n)));
  const stride = (n - 1) / k;
  for (let i = 0; i < n; i++) {
    const seen = new Set<number>();
    for (let j = 0; j < k; j++) {
      const off = 1 + Math.floor(j * stride);
      const t = (i + off) % n;
      if (seen.has(t)) continue;
      seen.add(t);
      pairs.push({ from: pods[i]!.name, to: pods[t]!.name, toIp: pods[t]!.ip });
    }
  }
  return { pairs, total, sampled: true };
}

/** Run `fn` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}
