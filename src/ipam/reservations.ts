// IPReservation (projectcalico.org/v3 `spec.reservedCIDRs`) as IPAM uses it, Calico's way: automatic
// assignment never hands out a reserved address (it stays free in its block and is skipped), a block
// whose every address is reserved is never claimed or borrowed from, and a requested address
// (assignIP: a pod's annotation, a static tunnel address) may still be reserved on purpose.
// Addresses handed out before the reservation existed keep their owner. Pure: no datastore access.
import { cidrContains, cidrContainsCidr, cidrsOverlap, parseCidr, type Cidr, type Ip } from '../common/ip.js';

export class Reservations {
  private readonly cidrs: Cidr[];

  /** `texts`: addresses ("10.0.2.3") or CIDRs ("cafe:f00d::/123"); unparseable entries are skipped
   *  (validation refuses them before they reach the datastore). */
  constructor(texts: readonly string[] = []) {
    this.cidrs = [];
    for (const t of texts) {
      try {
        this.cidrs.push(parseCidr(t));
      } catch {
        // not reachable through validated resources
      }
    }
  }

  get empty(): boolean {
    return this.cidrs.length === 0;
  }

  matchesIp(ip: Ip): boolean {
    return this.cidrs.some((c) => cidrContains(c, ip));
  }

  /** Every address of `c` is reserved. Reservations may overlap or tile `c` between them. */
  matchesWhole(c: Cidr): boolean {
    const inside = this.cidrs.filter((r) => r.family === c.family && cidrsOverlap(r, c));
    if (inside.some((r) => cidrContainsCidr(r, c))) return true;
    if (inside.length === 0) return false;
    // Tiled by smaller reservations: sum the sizes of the outermost ones (duplicates and nested ones once).
    const uniq = [...new Map(inside.map((r) => [`${r.network}/${r.prefixLen}`, r])).values()];
    const top = uniq.filter((r) => !uniq.some((o) => o.prefixLen < r.prefixLen && cidrContainsCidr(o, r)));
    const bits = c.family === 4 ? 32 : 128;
    const size = (x: Cidr) => 1n << BigInt(bits - x.prefixLen);
    const covered = top.reduce((s, r) => s + size(r), 0n);
    return covered >= size(c);
  }

  /** Some address of `c` is reserved. */
  matchesSome(c: Cidr): boolean {
    return this.cidrs.some((r) => cidrsOverlap(r, c));
  }
}

export const NO_RESERVATIONS = new Reservations();
