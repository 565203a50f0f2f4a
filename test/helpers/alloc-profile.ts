// Bytes allocated while `work` runs, by allocating function, from V8's sampling heap profiler with
// the objects young and full GCs collected counted too (garbage is what these tests bound).
import { Session } from 'node:inspector/promises';

export async function allocationsBy(work: () => unknown): Promise<Map<string, number>> {
  const s = new Session();
  s.connect();
  try {
    await s.post('HeapProfiler.startSampling', {
      samplingInterval: 256,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    await work();
    const { profile } = await s.post('HeapProfiler.stopSampling');
    const bytes = new Map<string, number>();
    const walk = (n: (typeof profile)['head']): void => {
      const f = n.callFrame.functionName || '(anonymous)';
      bytes.set(f, (bytes.get(f) ?? 0) + n.selfSize);
      for (const c of n.children) walk(c);
    };
    walk(profile.head);
    return bytes;
  } finally {
    s.disconnect();
  }
}

/** Every byte in an allocationsBy() result. */
export const totalBytes = (by: Map<string, number>): number => [...by.values()].reduce((a, b) => a + b, 0);
