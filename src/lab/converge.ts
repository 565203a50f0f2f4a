// Waiting for a lab to converge: the cluster check (agent/cluster-check.ts) over each agent's live
// /status (read from its unix socket, several at a time) and the lab's datastore — every expected
// BGP session Established and every confirmed block routed in every other node's kernel. `lab up`
// runs its ping matrix only after this says converged, so a route that is still on its way is not
// reported as a broken pair.
import { openDatastore } from '../datastore/index.js';
import { checkCluster, type ClusterReport, type NodeStatusRecord } from '../agent/cluster-check.js';
import { loadClusterInput, recordFromStatus } from '../agent/cluster-input.js';
import { processAlive } from './netns.js';
import { lastLogLine } from './down.js';
import type { Lab } from './lab.js';
import { mapLimit } from './probe.js';

/** One check of the lab now (live status of every agent). */
export async function checkLab(lab: Lab): Promise<ClusterReport> {
  const now = new Date();
  const statuses = await mapLimit(lab.nodes, 16, async (n) => ({ name: n.name, s: await lab.agentStatus(n.name) }));
  const records = new Map<string, NodeStatusRecord>();
  for (const { name, s } of statuses) if (s) records.set(name, recordFromStatus(s, now));
  const ds = await openDatastore({ type: 'file', dir: lab.state.datastoreDir });
  try {
    const input = await loadClusterInput(ds, { records, now, staleAfterMs: 0 });
    input.expectNodes = lab.nodes.filter((n) => n.agent).map((n) => n.name);
    return checkCluster(input);
  } finally {
    await ds.close();
  }
}

export interface ConvergeResult {
  ok: boolean;
  elapsedMs: number;
  report?: ClusterReport;
  /** Agents that exited (waiting will not bring them back), with their last log line. */
  dead: string[];
}

/** Poll checkLab until converged, an agent dies, or the deadline; `onProgress` about every `progressMs`. */
export async function waitConverged(
  lab: Lab,
  opts: { timeoutMs: number; progressMs?: number; onProgress?: (r: ClusterReport, elapsedMs: number) => void },
): Promise<ConvergeResult> {
  const t0 = Date.now();
  let lastProgress = t0;
  let report: ClusterReport | undefined;
  for (;;) {
    const dead = lab.nodes
      .filter((n) => n.agent && !processAlive(n.agent.pid, n.agent.startTime))
      .map((n) => `${n.name} (tabby-node exited: ${lastLogLine(n.agent!.logFile)})`);
    if (dead.length > 0) return { ok: false, elapsedMs: Date.now() - t0, dead, ...(report ? { report } : {}) };
    try {
      report = await checkLab(lab);
    } catch {
      report = undefined; // the datastore may be mid-write by an agent: ask again
    }
    const elapsed = Date.now() - t0;
    if (report?.converged) return { ok: true, elapsedMs: elapsed, report, dead: [] };
    if (elapsed >= opts.timeoutMs) return { ok: false, elapsedMs: elapsed, dead: [], ...(report ? { report } : {}) };
    if (report && opts.onProgress && Date.now() - lastProgress >= (opts.progressMs ?? 5000)) {
      lastProgress = Date.now();
      opts.onProgress(report, elapsed);
    }
    await new Promise((r) => setTimeout(r, lab.nodes.length > 20 ? 1000 : 300));
  }
}

/** One line: how far the lab is. */
export function progressLine(r: ClusterReport): string {
  const ok = r.nodes.filter((n) => n.status === 'ok').length;
  const routed = r.nodes.reduce((s, n) => s + n.blocksRouted, 0);
  const want = r.nodes.reduce((s, n) => s + n.blocksExpected, 0);
  return `${ok}/${r.nodes.length} nodes converged, BGP sessions ${r.sessions.established}/${r.sessions.expected} Established, block routes ${routed}/${want} in kernels`;
}
