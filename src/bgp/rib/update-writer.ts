// Packing Adj-RIB-Out batches into UPDATE messages: one attribute set per message, as many NLRI as
// fit under the negotiated maximum length (4096, or 65535 with RFC 8654); IPv4 in the classic NLRI
// field, IPv6 in MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 4760). End-of-RIB markers (RFC 4724 §2).
import type { Buffer } from 'node:buffer';
import { encodeUpdate, maxMessageLen } from '../codec/message.js';
import { emptyPrefixList } from '../codec/prefix.js';
import {
  FAMILY_IPV4_UNICAST,
  FAMILY_IPV6_UNICAST,
  type CodecCaps,
  type PathAttributes,
  type PrefixList,
  type UpdateMessage,
} from '../codec/types.js';
import type { OutBatch } from './adj-rib-out.js';
import type { RouteAttributes } from './attrs.js';

/** A view of prefixes [from, to) of a list (no copy). */
export function slicePrefixList(l: PrefixList, from: number, to: number): PrefixList {
  const w = l.afi === 1 ? 1 : 4;
  return {
    afi: l.afi,
    safi: l.safi,
    count: to - from,
    addrs: l.addrs.subarray(from * w, to * w),
    lens: l.lens.subarray(from, to),
    pathIds: l.pathIds ? l.pathIds.subarray(from, to) : null,
  };
}

function wireAttrs(a: Readonly<RouteAttributes>, afi: 1 | 2, nlri: PrefixList): PathAttributes {
  const { linkLocal, priority: _local, ...rest } = a;
  const out: PathAttributes = { ...rest };
  if (afi === 2) {
    delete out.nextHop; // NEXT_HOP only goes with IPv4 NLRI (RFC 4760 §3)
    out.mpReach = { afi: 2, safi: 1, nextHop: a.nextHop ?? '::', nlri, ...(linkLocal ? { linkLocal } : {}) };
  }
  return out;
}

function message(afi: 1 | 2, attrs: Readonly<RouteAttributes> | null, list: PrefixList): UpdateMessage {
  const empty = emptyPrefixList(1);
  if (attrs === null) {
    if (afi === 1) return { type: 'update', withdrawn: list, attrs: null, nlri: empty };
    return { type: 'update', withdrawn: empty, attrs: { mpUnreach: { afi: 2, safi: 1, withdrawn: list } }, nlri: empty };
  }
  if (afi === 1) return { type: 'update', withdrawn: empty, attrs: wireAttrs(attrs, 1, list), nlri: list };
  return { type: 'update', withdrawn: empty, attrs: wireAttrs(attrs, 2, list), nlri: empty };
}

/** Encode one batch into as few UPDATE messages as fit. */
export function encodeBatch(batch: OutBatch, caps: CodecCaps): Buffer[] {
  const max = maxMessageLen(caps);
  const afi = batch.afi;
  const attrs = batch.attrs ? batch.attrs.attrs : null;
  const list = batch.prefixes;
  const addPath = caps.addPathTx.has(afi === 1 ? FAMILY_IPV4_UNICAST : FAMILY_IPV6_UNICAST);
  // Size of the message with no prefix at all; +2 covers an attribute switching to extended length.
  const base = encodeUpdate(message(afi, attrs, slicePrefixList(list, 0, 0)), caps).length + (afi === 2 ? 2 : 0);
  const budget = max - base;
  const out: Buffer[] = [];
  let from = 0;
  let used = 0;
  for (let i = 0; i < list.count; i++) {
    const size = (addPath ? 4 : 0) + 1 + ((list.lens[i]! + 7) >> 3);
    if (used + size > budget && i > from) {
      out.push(encodeUpdate(message(afi, attrs, slicePrefixList(list, from, i)), caps));
      from = i;
      used = 0;
    }
    used += size;
  }
  if (list.count > from) out.push(encodeUpdate(message(afi, attrs, slicePrefixList(list, from, list.count)), caps));
  return out;
}

/** End-of-RIB (RFC 4724 §2): an empty UPDATE for IPv4 unicast, an empty MP_UNREACH_NLRI otherwise. */
export function encodeEndOfRib(afi: 1 | 2, caps: CodecCaps): Buffer {
  const empty = emptyPrefixList(1);
  if (afi === 1) return encodeUpdate({ type: 'update', withdrawn: empty, attrs: null, nlri: empty }, caps);
  return encodeUpdate(
    { type: 'update', withdrawn: empty, attrs: { mpUnreach: { afi: 2, safi: 1, withdrawn: emptyPrefixList(2) } }, nlri: empty },
    caps,
  );
}

/** The family whose End-of-RIB this UPDATE is, or 0. */
export function endOfRibFamily(m: UpdateMessage): 0 | 1 | 2 {
  if (m.withdrawn.count !== 0 || m.nlri.count !== 0) return 0;
  if (m.attrs === null) return 1;
  const a = m.attrs;
  const keys = Object.keys(a).filter((k) => k !== 'wireOrder' && k !== 'wireExtended' && (a as Record<string, unknown>)[k] !== undefined);
  if (keys.length === 1 && a.mpUnreach && a.mpUnreach.withdrawn.count === 0 && a.mpUnreach.safi === 1) {
    return a.mpUnreach.afi === 1 ? 1 : a.mpUnreach.afi === 2 ? 2 : 0;
  }
  return 0;
}
