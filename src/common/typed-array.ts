// Growing the typed-array columns that keep per-prefix and per-key state without an object each
// (the speaker's change batches and flush lists, update groups, the reconciler's key table).

/** A copy of `a` with twice its length: an append-only column outgrew its room. */
export function doubled<T extends Uint8Array | Int32Array | Uint32Array>(a: T): T {
  const b = new (a.constructor as new (n: number) => T)(a.length * 2);
  b.set(a);
  return b;
}

/** A column of small indexes (into a table of shared objects), as narrow as the largest index it
 *  held so far: most tables name a handful of objects (a route template per next hop), so one byte
 *  per key instead of four. */
export type IndexColumn = Uint8Array | Uint16Array | Int32Array;

/** The largest index a column can hold. */
export const indexMax = (a: IndexColumn): number => (a instanceof Uint8Array ? 0xff : a instanceof Uint16Array ? 0xffff : 0x7fffffff);

/** `a` copied into a column wide enough for index `i` (`a` itself when it is). */
export function widened(a: IndexColumn, i: number): IndexColumn {
  if (i <= indexMax(a)) return a;
  const b = i <= 0xffff ? new Uint16Array(a.length) : new Int32Array(a.length);
  b.set(a);
  return b;
}

/** An empty column of the same kind as `a` with `length` slots. */
export function emptyLike<A extends IndexColumn>(a: A, length: number): A {
  return new (a.constructor as new (n: number) => A)(length);
}

/** `a` copied into a column of the same kind with `length` slots (cut, or the new ones zero). */
export function resized<A extends IndexColumn>(a: A, length: number): A {
  const b = emptyLike(a, length);
  b.set(a.length > length ? a.subarray(0, length) : a);
  return b;
}
