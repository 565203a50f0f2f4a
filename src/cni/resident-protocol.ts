// The resident CNI wire format between the `tabby` client executable (src/native/cni_client.c) and
// tabby-node's CNI server (resident.ts). Pure: bytes in, a request or an error out; answers to bytes.
//   client → server  "TCN1" u32 len + name   u32 len + env ("K=V\0"…)   u32 len + stdin
//   server → client  'A' (accepted: send 'G' to start) | 'F' (fall back to the in-process plugin)
//   client → server  'G'
//   server → client  u32 exit code   u32 len + stdout
// Integers are big-endian. Sizes are bounded so a bad client cannot make the agent buffer without end.

export const MAGIC = 'TCN1';
export const ACCEPT = 0x41; // 'A'
export const FALL_BACK = 0x46; // 'F'
export const GO = 0x47; // 'G'

export const LIMITS = { name: 64, env: 1 << 20, stdin: 4 << 20 } as const;

export interface ResidentRequest {
  /** The name the client was run as (tabby, tabby-ipam). */
  name: string;
  env: Record<string, string>;
  stdin: Buffer;
}

export class ProtocolError extends Error {
  readonly code = 'ECNIPROTO';
  constructor(msg: string) {
    super(msg);
    this.name = 'ProtocolError';
  }
}

/** Decode a request from what has arrived so far: the request and the bytes it used, or undefined
 *  when more bytes are needed. Throws ProtocolError on a malformed or oversized request. */
export function decodeRequest(buf: Buffer): { request: ResidentRequest; used: number } | undefined {
  if (buf.length >= 4 && buf.toString('latin1', 0, 4) !== MAGIC) throw new ProtocolError('not a tabby CNI client (bad magic)');
  let off = 4;
  const fields: Buffer[] = [];
  for (const [what, max] of [
    ['name', LIMITS.name],
    ['env', LIMITS.env],
    ['stdin', LIMITS.stdin],
  ] as const) {
    if (buf.length < off + 4) return undefined;
    const len = buf.readUInt32BE(off);
    if (len > max) throw new ProtocolError(`${what} is ${len} bytes, more than ${max}`);
    if (buf.length < off + 4 + len) return undefined;
    fields.push(buf.subarray(off + 4, off + 4 + len));
    off += 4 + len;
  }
  const [name, envBlock, stdin] = fields as [Buffer, Buffer, Buffer];
  const env: Record<string, string> = {};
  for (const entry of envBlock.toString('utf8').split('\0')) {
    const i = entry.indexOf('=');
    if (i > 0) env[entry.slice(0, i)] = entry.slice(i + 1);
  }
  return { request: { name: name.toString('utf8'), env, stdin: Buffer.from(stdin) }, used: off };
}

/** Encode a request (what the client sends; used by tests and the Node.js side of the benchmark). */
export function encodeRequest(r: ResidentRequest): Buffer {
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const name = Buffer.from(r.name);
  const env = Buffer.from(
    Object.entries(r.env)
      .map(([k, v]) => `${k}=${v}\0`)
      .join(''),
  );
  return Buffer.concat([Buffer.from(MAGIC, 'latin1'), u32(name.length), name, u32(env.length), env, u32(r.stdin.length), r.stdin]);
}

export function encodeAnswer(exitCode: number, stdout: string): Buffer {
  const body = Buffer.from(stdout);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(exitCode >>> 0, 0);
  head.writeUInt32BE(body.length, 4);
  return Buffer.concat([head, body]);
}
