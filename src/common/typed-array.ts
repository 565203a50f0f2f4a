// Growing the typed-array columns that keep per-prefix and per-key state without an object each
// (the speaker's change batches and flush lists, update groups, the reconciler's key table).

/** A copy of `a` with twice its length: an append-only column outgrew its room. */
export function doubled<T extends Uint8Array | Int32Array | Uint32Array>(a: T): T {
  const b = new (a.constructor as new (n: number) => T)(a.length * 2);
  b.set(a);
  return b;
}
