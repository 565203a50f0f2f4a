// The IPReservation resource (projectcalico.org/v3): `spec.reservedCIDRs`, addresses ("192.168.2.3")
// and CIDRs ("cafe:f00d::/123") of either family that automatic IP assignment must not hand out
// (src/ipam/reservations.ts applies them). Registered in validation.ts and resources.ts.
// Entries are kept as written (trimmed) so a file round-trips unchanged; a CIDR with host bits set
// ("10.0.2.3/24") is accepted and means its network (10.0.2.0/24), as Calico's ParseCIDROrIP reads it.
import { parseCidr } from '../common/ip.js';
import type { Checker } from './check-kit.js';

export interface IPReservationSpec {
  reservedCIDRs: string[];
}

type Obj = Record<string, unknown>;
const show = (v: unknown): string => (typeof v === 'string' ? `"${v}"` : JSON.stringify(v));

export function checkIPReservation(c: Checker, _name: string, spec: Obj): Obj {
  c.known(spec, 'spec.', ['reservedCIDRs']);
  const list = c.array(spec, 'reservedCIDRs', 'spec.') ?? [];
  const out: string[] = [];
  list.forEach((v, i) => {
    const p = `spec.reservedCIDRs[${i}]`;
    if (typeof v !== 'string') {
      c.add(`${p} must be an address or CIDR string, got ${show(v)}`);
      return;
    }
    const t = v.trim();
    try {
      parseCidr(t);
    } catch (e) {
      c.add(`${p} ${show(v)} is not an IP address or CIDR: ${(e as Error).message}`);
      return;
    }
    out.push(t);
  });
  return { reservedCIDRs: out };
}
