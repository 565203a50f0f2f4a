// BFD Control packet (RFC 5880 §4.1), pure: Buffer <-> typed packet, and the reception checks of
// §6.8.6 that do not need a session (version, length, detect multiplier, multipoint, discriminators).
// Authentication (§4.2–4.4) is not implemented: a packet with the A bit is discarded, as §6.8.6
// requires when bfd.AuthType is 0.
import { Buffer } from 'node:buffer';

export type BfdState = 'AdminDown' | 'Down' | 'Init' | 'Up';
export const STATE_CODES: readonly BfdState[] = ['AdminDown', 'Down', 'Init', 'Up'];

/** Diagnostic codes (§4.1). */
export const DIAG = {
  none: 0,
  controlDetectionTimeExpired: 1,
  echoFailed: 2,
  neighborSignaledDown: 3,
  forwardingPlaneReset: 4,
  pathDown: 5,
  concatenatedPathDown: 6,
  adminDown: 7,
  reverseConcatenatedPathDown: 8,
} as const;
export type Diag = (typeof DIAG)[keyof typeof DIAG];
export const DIAG_TEXT: Readonly<Record<number, string>> = {
  0: 'No Diagnostic',
  1: 'Control Detection Time Expired',
  2: 'Echo Function Failed',
  3: 'Neighbor Signaled Session Down',
  4: 'Forwarding Plane Reset',
  5: 'Path Down',
  6: 'Concatenated Path Down',
  7: 'Administratively Down',
  8: 'Reverse Concatenated Path Down',
};

export interface ControlPacket {
  diag: number;
  state: BfdState;
  poll: boolean;
  final: boolean;
  /** Control Plane Independent. */
  cpi: boolean;
  demand: boolean;
  detectMult: number;
  myDiscr: number;
  yourDiscr: number;
  /** Microseconds. */
  desiredMinTx: number;
  requiredMinRx: number;
  requiredMinEchoRx: number;
}

export const CONTROL_LEN = 24;
const VERSION = 1;

export function encodeControl(p: ControlPacket): Buffer {
  const b = Buffer.alloc(CONTROL_LEN);
  b[0] = (VERSION << 5) | (p.diag & 0x1f);
  b[1] = (STATE_CODES.indexOf(p.state) << 6) | (p.poll ? 0x20 : 0) | (p.final ? 0x10 : 0) | (p.cpi ? 0x08 : 0) | (p.demand ? 0x02 : 0);
  b[2] = p.detectMult;
  b[3] = CONTROL_LEN;
  b.writeUInt32BE(p.myDiscr >>> 0, 4);
  b.writeUInt32BE(p.yourDiscr >>> 0, 8);
  b.writeUInt32BE(p.desiredMinTx >>> 0, 12);
  b.writeUInt32BE(p.requiredMinRx >>> 0, 16);
  b.writeUInt32BE(p.requiredMinEchoRx >>> 0, 20);
  return b;
}

export class BfdPacketError extends Error {
  constructor(readonly reason: string) {
    super(`BFD packet discarded: ${reason}`);
  }
}

/** Decode and apply the session-independent checks of §6.8.6; throws BfdPacketError (discard). */
export function decodeControl(buf: Buffer): ControlPacket {
  if (buf.length < CONTROL_LEN) throw new BfdPacketError(`${buf.length} bytes, shorter than 24`);
  const version = buf[0]! >> 5;
  if (version !== VERSION) throw new BfdPacketError(`version ${version}`);
  const length = buf[3]!;
  const auth = (buf[1]! & 0x04) !== 0;
  if (length < (auth ? 26 : CONTROL_LEN)) throw new BfdPacketError(`length field ${length}`);
  if (length > buf.length) throw new BfdPacketError(`length field ${length} > ${buf.length} bytes received`);
  if (auth) throw new BfdPacketError('authentication present but not configured');
  const detectMult = buf[2]!;
  if (detectMult === 0) throw new BfdPacketError('detect multiplier 0');
  if ((buf[1]! & 0x01) !== 0) throw new BfdPacketError('multipoint bit set');
  const state = STATE_CODES[buf[1]! >> 6]!;
  const myDiscr = buf.readUInt32BE(4);
  const yourDiscr = buf.readUInt32BE(8);
  if (myDiscr === 0) throw new BfdPacketError('my discriminator 0');
  if (yourDiscr === 0 && state !== 'Down' && state !== 'AdminDown') throw new BfdPacketError(`your discriminator 0 in state ${state}`);
  return {
    diag: buf[0]! & 0x1f,
    state,
    poll: (buf[1]! & 0x20) !== 0,
    final: (buf[1]! & 0x10) !== 0,
    cpi: (buf[1]! & 0x08) !== 0,
    demand: (buf[1]! & 0x02) !== 0,
    detectMult,
    myDiscr,
    yourDiscr,
    desiredMinTx: buf.readUInt32BE(12),
    requiredMinRx: buf.readUInt32BE(16),
    requiredMinEchoRx: buf.readUInt32BE(20),
  };
}
