// Readiness (pure): ready = BGP sessions to every configured peer Established (or none configured),
// the dataplane in sync with the desired routes, the datastore reachable, and no blocking problem
// (e.g. a pool needing IPIP on a kernel without ipip). Each unmet condition is one reason, in words.
import type { ReadinessJson, PeerStatusJson } from './status-types.js';

export interface ReadinessInput {
  peers: readonly Pick<PeerStatusJson, 'address' | 'state' | 'info'>[];
  /** undefined: no dataplane (route-reflector mode, backend none). */
  dataplaneInSync?: boolean;
  datastoreUp: boolean;
  datastoreError?: string;
  problems: readonly string[];
  /** Start-up not finished yet (reason given). */
  starting?: string;
}

export function computeReadiness(i: ReadinessInput): ReadinessJson {
  const reasons: string[] = [];
  if (i.starting) reasons.push(`starting: ${i.starting}`);
  const established = i.peers.filter((p) => p.state === 'Established').length;
  for (const p of i.peers) {
    if (p.state !== 'Established') reasons.push(`BGP not established with ${p.address}: ${p.info || p.state}`);
  }
  if (i.dataplaneInSync === false) reasons.push('dataplane not in sync: kernel routes still being programmed');
  if (!i.datastoreUp) reasons.push(`datastore down${i.datastoreError ? `: ${i.datastoreError}` : ''}`);
  reasons.push(...i.problems);
  return {
    ready: reasons.length === 0,
    reasons,
    datastore: i.datastoreUp ? 'up' : 'down',
    dataplaneInSync: i.dataplaneInSync ?? true,
    bgp: { configured: i.peers.length, established },
  };
}
