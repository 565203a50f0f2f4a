// The file store's on-disk record format (see file.ts for the whole layout), pure: framing one record
// as `<crc32 hex8> <json>\n`, and scanning a run of bytes into records. The scan tells a torn tail
// (bad or incomplete bytes with nothing valid after them: what a writer that died mid-append leaves)
// from corruption (a damaged record with valid records after it: bit rot, a stray write), because the
// first may be cut off and the second must never be — cutting it would drop every record after it.
import { crc32 } from 'node:zlib';

export interface HistEvent {
  t: 'put' | 'delete';
  k: string;
  r: number;
  v?: unknown;
  p?: unknown;
  /** In a snapshot's history only: p is the value the key's event before this one in the history put
   *  (written once, not twice — most of a snapshot's bytes were the same block values as v and p). */
  q?: 1;
}
export type PutRec = { o: 'put'; r: number; k: string; v: unknown };
export type DelRec = { o: 'del'; r: number; k: string };
export type SnapRec = { o: 'snap'; r: number; c: number; kv: [string, number, unknown][]; h: HistEvent[] };
/** A multi-key commit in one line (so a crash keeps all of it or none): op i has revision r + i. */
export type TxnRec = { o: 'txn'; r: number; ops: ({ o: 'put'; k: string; v: unknown } | { o: 'del'; k: string })[] };
export type WriteRec = PutRec | DelRec | TxnRec;
export type Rec = WriteRec | SnapRec;

/** The last revision a record takes (a txn takes one per operation). */
export const lastRevision = (rec: Rec): number => (rec.o === 'txn' ? rec.r + rec.ops.length - 1 : rec.r);

const NL = 0x0a;

export function frame(rec: Rec): Buffer {
  const body = Buffer.from(JSON.stringify(rec), 'utf8');
  const crc = (crc32(body) >>> 0).toString(16).padStart(8, '0');
  return Buffer.concat([Buffer.from(`${crc} `, 'latin1'), body, Buffer.from('\n', 'latin1')]);
}

/** Parse one framed line (without the newline); undefined when its CRC, JSON or shape is bad. */
export function unframe(line: Buffer): Rec | undefined {
  if (line.length < 10 || line[8] !== 0x20) return undefined;
  const body = line.subarray(9);
  const want = parseInt(line.subarray(0, 8).toString('latin1'), 16);
  if (!Number.isFinite(want) || crc32(body) >>> 0 !== want) return undefined;
  let rec: unknown;
  try {
    rec = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  return isRec(rec) ? rec : undefined;
}

function isRec(x: unknown): x is Rec {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as Record<string, unknown>;
  if (!Number.isSafeInteger(r.r) || (r.r as number) < 0) return false;
  if (r.o === 'put') return typeof r.k === 'string' && 'v' in r;
  if (r.o === 'del') return typeof r.k === 'string';
  if (r.o === 'snap') return Number.isSafeInteger(r.c) && Array.isArray(r.kv) && Array.isArray(r.h);
  if (r.o === 'txn')
    return (
      Array.isArray(r.ops) &&
      r.ops.length > 0 &&
      r.ops.every((op: { o?: unknown; k?: unknown }) => typeof op?.k === 'string' && (op.o === 'del' || (op.o === 'put' && 'v' in op)))
    );
  return false;
}

export interface ScannedRec {
  rec: Rec;
  start: number;
  end: number;
}

export interface Scan {
  recs: ScannedRec[];
  /** Bytes through the last good record (a record boundary). */
  end: number;
  /** What stopped the scan before the end of the bytes: `torn` = nothing valid follows (an incomplete
   *  or damaged tail), `corrupt` = a damaged record at `offset` with a valid record after it. */
  stop?: { kind: 'torn' | 'corrupt'; offset: number };
}

/** Scan `buf` (bytes from a record boundary) into records, stopping at the first bad one. */
export function scanRecords(buf: Buffer): Scan {
  const recs: ScannedRec[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const nl = buf.indexOf(NL, pos);
    if (nl < 0) return { recs, end: pos, stop: { kind: 'torn', offset: pos } };
    const rec = unframe(buf.subarray(pos, nl));
    if (!rec) return { recs, end: pos, stop: { kind: validRecordAfter(buf, nl + 1) ? 'corrupt' : 'torn', offset: pos } };
    recs.push({ rec, start: pos, end: nl + 1 });
    pos = nl + 1;
  }
  return { recs, end: pos };
}

/** Whether any complete, valid record starts at a line boundary at or after `from`. */
function validRecordAfter(buf: Buffer, from: number): boolean {
  let pos = from;
  while (pos < buf.length) {
    const nl = buf.indexOf(NL, pos);
    if (nl < 0) return false;
    if (unframe(buf.subarray(pos, nl))) return true;
    pos = nl + 1;
  }
  return false;
}

/** write(2) until every byte is written (a short write is retried; ENOSPC and friends throw). */
export function writeAll(write: (buf: Buffer, off: number, len: number) => number, buf: Buffer): void {
  let done = 0;
  while (done < buf.length) {
    const n = write(buf, done, buf.length - done);
    if (n <= 0) throw Object.assign(new Error(`write made no progress at byte ${done} of ${buf.length}`), { code: 'EIO' });
    done += n;
  }
}

/** The highest revision of any intact record in `buf`, damaged lines skipped (a restore goes past it). */
export function maxRevision(buf: Buffer): number {
  let max = 0;
  let pos = 0;
  while (pos < buf.length) {
    let nl = buf.indexOf(NL, pos);
    if (nl < 0) nl = buf.length;
    const rec = unframe(buf.subarray(pos, nl));
    if (rec && lastRevision(rec) > max) max = lastRevision(rec);
    pos = nl + 1;
  }
  return max;
}
