// A route dump read in place: each RTM_NEWROUTE payload is decoded into one reused object instead of
// a message object, a payload view, a route object and three strings per route (a 1M-route dump was
// ~450 MB of garbage and its peak RSS). IPv4 routes without multipath (the bulk case) are decoded here;
// anything else goes through the general decoder (decodeRoute) and comes back as a fresh object.
import { AF, RTA, RTNH_F } from './constants.js';
import { decodeRoute, routeTypeNames, type KernelRoute } from './messages.js';

const ipv4Text = (v: number): string => `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
const be32 = (b: Buffer, o: number): number => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
const le32 = (b: Buffer, o: number): number => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;

export class RouteScanner {
  /** the route last scanned: the same object every time (its optional fields are undefined when absent) */
  private readonly r: KernelRoute = {
    family: 4,
    dst: '',
    table: 0,
    protocol: 0,
    scope: 0,
    type: 'unicast',
    oif: undefined,
    gateway: undefined,
    onlink: undefined,
    priority: undefined,
    prefsrc: undefined,
    multipath: undefined,
  };
  /** the last gateway's text by its number (a dump repeats a few next hops a million times) */
  private gwNum = -1;
  private gwText = '';

  /** The route in rtmsg + attributes buf[off, end). Valid until the next call: copyRoute() to keep it. */
  scan(buf: Buffer, off: number, end: number): KernelRoute {
    if (buf[off] !== AF.INET || end - off < 12) return decodeRoute(buf.subarray(off, end));
    const r = this.r;
    r.table = buf[off + 4]!;
    r.protocol = buf[off + 5]!;
    r.scope = buf[off + 6]!;
    r.type = routeTypeNames[buf[off + 7]!] ?? 'other';
    r.onlink = le32(buf, off + 8) & RTNH_F.ONLINK ? true : undefined;
    r.oif = r.gateway = r.priority = r.prefsrc = undefined;
    let dst = 0;
    let a = off + 12;
    while (a + 4 <= end) {
      const len = buf[a]! | (buf[a + 1]! << 8);
      if (len < 4 || a + len > end) break;
      const t = (buf[a + 2]! | (buf[a + 3]! << 8)) & 0x3fff;
      const v = a + 4;
      if (len === 8) {
        if (t === RTA.DST) dst = be32(buf, v);
        else if (t === RTA.OIF) r.oif = le32(buf, v);
        else if (t === RTA.TABLE) r.table = le32(buf, v);
        else if (t === RTA.PRIORITY) r.priority = le32(buf, v);
        else if (t === RTA.GATEWAY) {
          const g = be32(buf, v);
          if (g !== this.gwNum) {
            this.gwNum = g;
            this.gwText = ipv4Text(g);
          }
          r.gateway = this.gwText;
        } else if (t === RTA.PREFSRC) r.prefsrc = ipv4Text(be32(buf, v));
      } else if (t === RTA.MULTIPATH) return decodeRoute(buf.subarray(off, end));
      a += (len + 3) & ~3;
    }
    r.dst = `${ipv4Text(dst)}/${buf[off + 1]!}`;
    return r;
  }
}

/** A route to keep (only the fields that are set, as decodeRoute makes them). */
export function copyRoute(r: KernelRoute): KernelRoute {
  const c: KernelRoute = { family: r.family, dst: r.dst, table: r.table, protocol: r.protocol, scope: r.scope, type: r.type };
  if (r.onlink) c.onlink = true;
  if (r.oif !== undefined) c.oif = r.oif;
  if (r.gateway !== undefined) c.gateway = r.gateway;
  if (r.priority !== undefined) c.priority = r.priority;
  if (r.prefsrc !== undefined) c.prefsrc = r.prefsrc;
  if (r.multipath !== undefined) c.multipath = r.multipath;
  return c;
}
