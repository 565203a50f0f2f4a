// Streaming framer: TCP byte stream → whole BGP messages (RFC 4271 §4.1). Any split of the stream
// (1 byte at a time, many messages per chunk) yields the same frames. Header errors are thrown as
// BgpMessageError (1/1, 1/2, 1/3) as soon as the 19 header bytes are in.
import { Buffer } from 'node:buffer';
import { decodeHeader } from './message.js';
import { HEADER_LEN, MAX_MESSAGE_LEN } from './types.js';

export class Framer {
  private pending: Buffer[] = [];
  private pendingLen = 0;
  /** 4096, or 65535 once RFC 8654 extended messages are negotiated. */
  maxLength = MAX_MESSAGE_LEN;

  /** Bytes buffered but not yet a whole message. */
  get buffered(): number {
    return this.pendingLen;
  }

  /** Add bytes; returns the whole messages now available (each a Buffer of exactly its length). */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let buf: Buffer;
    if (this.pendingLen === 0) buf = chunk;
    else {
      this.pending.push(chunk);
      buf = Buffer.concat(this.pending, this.pendingLen + chunk.length);
      this.pending = [];
      this.pendingLen = 0;
    }
    let p = 0;
    while (buf.length - p >= HEADER_LEN) {
      const h = decodeHeader(buf, this.maxLength, p);
      if (buf.length - p < h.length) break;
      out.push(buf.subarray(p, p + h.length));
      p += h.length;
    }
    if (p < buf.length) {
      // Copy the tail so the caller's chunk is not retained.
      const rest = Buffer.from(buf.subarray(p));
      this.pending.push(rest);
      this.pendingLen = rest.length;
    }
    return out;
  }
}
