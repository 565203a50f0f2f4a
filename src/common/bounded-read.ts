// Reading a file or stdin that a user hands to a program, with a size cap: a file over the cap is
// refused from its size alone, a pipe is read until one byte past the cap — so a 26 MB file never
// becomes gigabytes of parsed objects. The error names what was read and the cap.
import fs from 'node:fs';

export class InputTooLarge extends Error {
  readonly code = 'ETOOLARGE';
  constructor(
    readonly what: string,
    readonly max: number,
    size?: number,
  ) {
    super(`${what} is larger than ${formatSize(max)}${size !== undefined ? ` (${formatSize(size)})` : ''}: refused without reading it`);
    this.name = 'InputTooLarge';
  }
}

const formatSize = (n: number): string =>
  n >= 1 << 20 && n % (1 << 20) === 0 ? `${n >> 20} MiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${n} bytes`;

/** The bytes of `file` ("-" = stdin), at most `max`; throws InputTooLarge past it. */
export function readBounded(file: string, max: number, what = file === '-' ? 'stdin' : file): Buffer {
  const fd = file === '-' ? 0 : fs.openSync(file, 'r');
  try {
    const st = fs.fstatSync(fd);
    if (st.isFile() && st.size > max) throw new InputTooLarge(what, max, st.size);
    const chunks: Buffer[] = [];
    let total = 0;
    const buf = Buffer.alloc(1 << 16);
    while (total <= max) {
      let n: number;
      try {
        n = fs.readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
          continue;
        }
        if ((e as NodeJS.ErrnoException).code === 'EOF') break;
        throw e;
      }
      if (n === 0) break;
      chunks.push(Buffer.from(buf.subarray(0, n)));
      total += n;
    }
    if (total > max) throw new InputTooLarge(what, max);
    return Buffer.concat(chunks);
  } finally {
    if (fd !== 0) fs.closeSync(fd);
  }
}
