// BGP-4 typed message model shared by the codec, the FSM/session (fsm.ts, session.ts) and the RIB/speaker.
//
// Files of src/bgp/codec/: types.ts (this: the model, caps context, typed error), registry.ts (code
// tables loaded from proto/bgp/registry.json), prefix.ts (compact prefix lists), writer.ts (encoder
// buffer), framer.ts (RFC 4271 §4.1 header, streaming framer), bp.ts (compiled binary-parser
// parsers), open.ts (OPEN + RFC 5492 capabilities), attrs.ts (path-attribute table, RFC 4271 §5, 1997,
// 4456, 4360, 4760, 6793, 8092), message.ts (decodeMessage/encodeMessage for every type, UPDATE included).
//
// ## How a prefix is represented (designed for 1M-prefix ingest)
// NLRI never becomes one object or one string per prefix on the hot path. A `PrefixList` holds
// `count` prefixes of one address family in parallel typed arrays:
//   - IPv4: `addrs[i]` is the network address as an unsigned 32-bit number (host order, i.e.
//     10.0.0.0 = 0x0a000000), `lens[i]` the prefix length 0..32;
//   - IPv6: `addrs[4*i .. 4*i+3]` are the four 32-bit words (most significant first), `lens[i]` 0..128;
//   - `pathIds[i]` is the ADD-PATH path identifier (RFC 7911) when the family negotiated receive
//     of ADD-PATH, else `pathIds` is null.
// Host bits beyond the length are always zero after decode (RFC 4271 §4.3 says the trailing bits
// are irrelevant; we clear them so equal prefixes compare equal).
// Helpers in prefix.ts: `prefixKey4(addr, len)` → one number (addr * 64 + len, exact in a double),
// `prefixToString(list, i)`, `prefixListFromStrings(afi, ['10.0.0.0/24'])`, `forEachPrefix`.
//
// Path attributes are decoded ONCE per UPDATE into `PathAttributes` (strings are fine there: one
// per UPDATE, shared by all its NLRI). `Update.rawAttrs` is the exact attribute section from the wire
// (a zero-copy view into the received chunk — copy it if you keep it), handy as an interning key.
import type { Buffer } from 'node:buffer';

export type Afi = 1 | 2; // 1 = IPv4, 2 = IPv6 (IANA address family numbers)
export const AFI_IPV4 = 1 as const;
export const AFI_IPV6 = 2 as const;
export const SAFI_UNICAST = 1;

/** One number per (afi, safi), for Sets/Maps of families: (afi << 8) | safi. */
export type FamilyKey = number;
export function familyKey(afi: number, safi: number): FamilyKey {
  return (afi << 8) | safi;
}
export const FAMILY_IPV4_UNICAST: FamilyKey = (1 << 8) | 1;
export const FAMILY_IPV6_UNICAST: FamilyKey = (2 << 8) | 1;

/** A compact list of prefixes of one family (see header comment). */
export interface PrefixList {
  readonly afi: Afi;
  readonly safi: number;
  count: number;
  /** IPv4: one word per prefix; IPv6: four words per prefix. Length may exceed what count needs. */
  addrs: Uint32Array;
  lens: Uint8Array;
  /** ADD-PATH identifiers, or null when the family does not carry them. */
  pathIds: Uint32Array | null;
}

// ---------------------------------------------------------------- negotiation context

/**
 * What the session negotiated; every decode/encode takes it (RFC 6793, RFC 7911, RFC 8654, RFC 8950).
 * A fresh session before OPEN exchange uses `DEFAULT_CAPS`.
 */
export interface CodecCaps {
  /** Both sides sent the 4-octet AS capability: AS_PATH/AGGREGATOR carry 4-octet ASNs. */
  readonly as4: boolean;
  /** Families in which the PEER sends us path identifiers (we decode them). */
  readonly addPathRx: ReadonlySet<FamilyKey>;
  /** Families in which WE send path identifiers (we encode them). */
  readonly addPathTx: ReadonlySet<FamilyKey>;
  /** Both sides sent the extended message capability: messages up to 65535 bytes (RFC 8654). */
  readonly extendedMessage: boolean;
}

export const DEFAULT_CAPS: CodecCaps = Object.freeze({
  as4: false,
  addPathRx: new Set<FamilyKey>(),
  addPathTx: new Set<FamilyKey>(),
  extendedMessage: false,
});

/** Caps used when both sides are modern speakers (4-octet AS, no add-path, no extended message). */
export const AS4_CAPS: CodecCaps = Object.freeze({
  as4: true,
  addPathRx: new Set<FamilyKey>(),
  addPathTx: new Set<FamilyKey>(),
  extendedMessage: false,
});

// ---------------------------------------------------------------- messages

export const MSG_OPEN = 1;
export const MSG_UPDATE = 2;
export const MSG_NOTIFICATION = 3;
export const MSG_KEEPALIVE = 4;
export const MSG_ROUTE_REFRESH = 5;

export type BgpMessage = OpenMessage | UpdateMessage | NotificationMessage | KeepaliveMessage | RouteRefreshMessage;

export interface KeepaliveMessage {
  readonly type: 'keepalive';
}

export interface NotificationMessage {
  readonly type: 'notification';
  code: number;
  subcode: number;
  data: Buffer;
}

/** RFC 2918 / RFC 7313: subtype 0 = normal request, 1 = BoRR, 2 = EoRR. */
export interface RouteRefreshMessage {
  readonly type: 'route-refresh';
  afi: number;
  safi: number;
  subtype: number;
}

export interface OpenMessage {
  readonly type: 'open';
  version: number; // 4
  /** The 2-octet "My Autonomous System" field as sent (AS_TRANS 23456 when the real ASN is > 65535). */
  asn: number;
  holdTime: number;
  /** BGP Identifier, dotted quad. */
  routerId: string;
  capabilities: Capability[];
  /**
   * Wire layout, for byte-exact re-encoding (optional): how many capabilities each Capabilities
   * optional parameter (type 2) held, in order. Absent = all capabilities in one parameter (BIRD,
   * GoBGP style). FRR sends one capability per parameter.
   */
  capsPerParam?: number[];
  /** Optional parameters other than capabilities (type != 2), kept as-is (e.g. deprecated auth). */
  otherParams?: { type: number; value: Buffer }[];
  /** The peer used the RFC 9072 extended optional parameters format (decode only; we send classic). */
  extendedParams?: boolean;
}

export type Capability =
  | { kind: 'multiprotocol'; afi: number; safi: number } // 1, RFC 4760
  | { kind: 'route-refresh' } // 2, RFC 2918
  | { kind: 'extended-next-hop'; entries: { afi: number; safi: number; nextHopAfi: number }[] } // 5, RFC 8950
  | { kind: 'extended-message' } // 6, RFC 8654
  | {
      kind: 'graceful-restart';
      restarting: boolean;
      notification: boolean;
      restartTime: number;
      families: { afi: number; safi: number; forwardingPreserved: boolean }[];
    } // 64, RFC 4724 (+ N bit RFC 8538)
  | { kind: 'as4'; asn: number } // 65, RFC 6793
  | { kind: 'add-path'; entries: { afi: number; safi: number; mode: 1 | 2 | 3 }[] } // 69, RFC 7911: 1 receive, 2 send, 3 both
  | { kind: 'enhanced-route-refresh' } // 70, RFC 7313
  | { kind: 'fqdn'; hostname: string; domain: string } // 73, draft-walton-bgp-hostname-capability
  | { kind: 'unknown'; code: number; value: Buffer }; // anything else (71 LLGR, 75 version, 128 old RR...): kept, ignored (RFC 5492 §3)

export type CapabilityKind = Capability['kind'];

// ---------------------------------------------------------------- UPDATE

export const ORIGIN_IGP = 0;
export const ORIGIN_EGP = 1;
export const ORIGIN_INCOMPLETE = 2;

export const AS_SET = 1;
export const AS_SEQUENCE = 2;
export const AS_CONFED_SEQUENCE = 3;
export const AS_CONFED_SET = 4;
export const AS_TRANS = 23456;

export interface AsPathSegment {
  type: 1 | 2 | 3 | 4; // AS_SET, AS_SEQUENCE, AS_CONFED_SEQUENCE, AS_CONFED_SET
  asns: number[]; // always the real (4-octet) ASNs after decode/merge
}

export interface LargeCommunity {
  global: number;
  local1: number;
  local2: number;
}

export interface MpReach {
  afi: number;
  safi: number;
  /** Global next hop (IPv4 or IPv6 text; an IPv4 next hop for IPv6 NLRI under RFC 8950). */
  nextHop: string;
  /** IPv6 link-local next hop when the next-hop field is 32 bytes (RFC 2545 §3). */
  linkLocal?: string;
  nlri: PrefixList;
}

export interface MpUnreach {
  afi: number;
  safi: number;
  withdrawn: PrefixList;
}

/** An attribute the codec has no row for, kept so optional transitive ones can be passed on. */
export interface UnknownAttribute {
  flags: number; // as received (Optional 0x80, Transitive 0x40, Partial 0x20, Extended length 0x10)
  code: number;
  value: Buffer;
}

/** Attribute flags (RFC 4271 §4.3). */
export const ATTR_FLAG_OPTIONAL = 0x80;
export const ATTR_FLAG_TRANSITIVE = 0x40;
export const ATTR_FLAG_PARTIAL = 0x20;
export const ATTR_FLAG_EXTENDED = 0x10;

export interface PathAttributes {
  origin?: number; // 1: 0 IGP, 1 EGP, 2 INCOMPLETE
  asPath?: AsPathSegment[]; // 2 (merged with AS4_PATH 17 per RFC 6793 §4.2.3 on a 2-octet session)
  nextHop?: string; // 3: IPv4 dotted quad
  med?: number; // 4
  localPref?: number; // 5
  atomicAggregate?: boolean; // 6
  aggregator?: { asn: number; address: string }; // 7 (merged with AS4_AGGREGATOR 18)
  communities?: number[]; // 8, RFC 1997: each (asn << 16 | value) as an unsigned 32-bit number
  originatorId?: string; // 9, RFC 4456
  clusterList?: string[]; // 10, RFC 4456
  mpReach?: MpReach; // 14, RFC 4760
  mpUnreach?: MpUnreach; // 15
  extCommunities?: bigint[]; // 16, RFC 4360: each 8-octet value as an unsigned 64-bit bigint
  largeCommunities?: LargeCommunity[]; // 32, RFC 8092
  /** Unknown attributes as received (decode); on encode, optional transitive ones are sent with Partial set (RFC 4271 §5). */
  unknown?: UnknownAttribute[];
  /**
   * For byte-exact re-encoding (optional): the attribute codes in wire order and which of them used
   * the Extended Length flag. Absent = ascending code order, extended length only when > 255 bytes.
   */
  wireOrder?: number[];
  wireExtended?: number[];
}

export interface UpdateMessage {
  readonly type: 'update';
  /** IPv4 unicast withdrawn routes (RFC 4271 §4.3). */
  withdrawn: PrefixList;
  /** Null when the UPDATE has no path attributes (a pure withdraw / End-of-RIB for IPv4). */
  attrs: PathAttributes | null;
  /** IPv4 unicast NLRI. */
  nlri: PrefixList;
  /** The path attribute section exactly as received (decode only; zero-copy view). */
  rawAttrs?: Buffer;
  /**
   * RFC 7606 outcomes that did not reset the session (decode only). When any has handling
   * 'treat-as-withdraw', `treatAsWithdraw` is true: every NLRI (incl. MP_REACH) must be withdrawn.
   * 'attribute-discard' errors mean the attribute was dropped from `attrs`.
   */
  errors?: BgpMessageError[];
  treatAsWithdraw?: boolean;
}

// ---------------------------------------------------------------- errors

/** RFC 7606 outcomes, ranked: a higher rank wins when several errors hit one UPDATE. */
export type ErrorHandling = 'attribute-discard' | 'treat-as-withdraw' | 'session-reset';
export const HANDLING_RANK: Readonly<Record<ErrorHandling, number>> = Object.freeze({
  'attribute-discard': 1,
  'treat-as-withdraw': 2,
  'session-reset': 3,
});

/**
 * A malformed or unacceptable message. `code/subcode/data` are exactly the NOTIFICATION to send
 * (RFC 4271 §4.5, §6) when `handling` is 'session-reset'. Never thrown for anything but input.
 */
export class BgpMessageError extends Error {
  override readonly name = 'BgpMessageError';
  constructor(
    readonly code: number,
    readonly subcode: number,
    readonly data: Buffer,
    readonly handling: ErrorHandling = 'session-reset',
    detail?: string,
  ) {
    super(detail ?? `BGP error ${code}/${subcode}`);
  }
}

// NOTIFICATION codes (RFC 4271 §4.5) and subcodes; full names are in proto/bgp/registry.json.
export const ERR_HEADER = 1;
export const ERR_OPEN = 2;
export const ERR_UPDATE = 3;
export const ERR_HOLD_TIMER = 4;
export const ERR_FSM = 5;
export const ERR_CEASE = 6;
export const ERR_ROUTE_REFRESH = 7; // RFC 7313

export const HDR_NOT_SYNCHRONIZED = 1;
export const HDR_BAD_LENGTH = 2;
export const HDR_BAD_TYPE = 3;

export const OPEN_UNSUPPORTED_VERSION = 1;
export const OPEN_BAD_PEER_AS = 2;
export const OPEN_BAD_BGP_ID = 3;
export const OPEN_UNSUPPORTED_PARAM = 4;
export const OPEN_UNACCEPTABLE_HOLD = 6;
export const OPEN_UNSUPPORTED_CAPABILITY = 7;

export const UPD_MALFORMED_ATTR_LIST = 1;
export const UPD_UNRECOGNIZED_WELLKNOWN = 2;
export const UPD_MISSING_WELLKNOWN = 3;
export const UPD_ATTR_FLAGS = 4;
export const UPD_ATTR_LENGTH = 5;
export const UPD_INVALID_ORIGIN = 6;
export const UPD_INVALID_NEXT_HOP = 8;
export const UPD_OPTIONAL_ATTR = 9;
export const UPD_INVALID_NETWORK = 10;
export const UPD_MALFORMED_AS_PATH = 11;

export const FSM_UNSPECIFIED = 0;
export const FSM_IN_OPENSENT = 1; // RFC 6608
export const FSM_IN_OPENCONFIRM = 2;
export const FSM_IN_ESTABLISHED = 3;

export const CEASE_MAX_PREFIX = 1; // RFC 4486
export const CEASE_ADMIN_SHUTDOWN = 2;
export const CEASE_PEER_DECONFIGURED = 3;
export const CEASE_ADMIN_RESET = 4;
export const CEASE_CONNECTION_REJECTED = 5;
export const CEASE_CONFIG_CHANGE = 6;
export const CEASE_COLLISION = 7;
export const CEASE_OUT_OF_RESOURCES = 8;
export const CEASE_HARD_RESET = 9; // RFC 8538

/** Header constants (RFC 4271 §4.1, RFC 8654). */
export const HEADER_LEN = 19;
export const MAX_MESSAGE_LEN = 4096;
export const MAX_EXTENDED_MESSAGE_LEN = 65535;
