// A per-id column of small integers that grows a page (8192 entries) at a time, for the route path's
// tables (prefix ids, the reconciler's key table, the route table's groups). Growing adds a page and
// copies nothing: a column doubled as one typed array left its old half as a dead ArrayBuffer until
// the next full GC (at 200k prefixes ~2 MB of them at once), and kept up to its own size of room past
// the last id; here the room is under a page.
// A column of indexes starts one byte wide and widens (each page copied once) past 255 / 65535.
// The first page starts small and doubles up to a full page (most tables — neighbours, FDB entries,
// a small cluster's routes — hold a few dozen keys: a full page each would be ~24 KB per table).

export const PAGE_BITS = 13;
export const PAGE = 1 << PAGE_BITS;
const MASK = PAGE - 1;

type Page = Uint8Array | Uint16Array | Int32Array;

/** Bits per entry: 8 and 16 unsigned, 32 signed. */
export type ColumnWidth = 8 | 16 | 32;

const FIRST = 64;
const maxOf = (w: ColumnWidth): number => (w === 8 ? 0xff : w === 16 ? 0xffff : 0x7fffffff);
const pageOf = (w: ColumnWidth, n: number): Page => (w === 8 ? new Uint8Array(n) : w === 16 ? new Uint16Array(n) : new Int32Array(n));

export class PagedColumn {
  private pages: Page[] = [];
  private cap = 0;
  private w: ColumnWidth;
  /** the largest value an entry holds at the current width */
  max: number;

  /** `init`: the value of entries never set (as a fresh page holds it) */
  constructor(
    width: ColumnWidth,
    private readonly init = 0,
  ) {
    this.w = width;
    this.max = maxOf(width);
  }

  get width(): ColumnWidth {
    return this.w;
  }
  /** ids below this have an entry */
  get capacity(): number {
    return this.cap;
  }
  /** bytes held */
  get bytes(): number {
    return this.cap * (this.w >> 3);
  }

  get(i: number): number {
    return this.pages[i >>> PAGE_BITS]![i & MASK]!;
  }
  set(i: number, v: number): void {
    this.pages[i >>> PAGE_BITS]![i & MASK] = v;
  }

  /** Room for every id below `n` (pages added; nothing copied). */
  grow(n: number): void {
    if (n <= this.cap) return;
    if (this.cap < PAGE) {
      // the first page, doubled up to a full one
      const size = Math.min(PAGE, Math.max(FIRST, 2 ** Math.ceil(Math.log2(n))));
      const p = pageOf(this.w, size);
      if (this.init !== 0) p.fill(this.init);
      if (this.cap) p.set(this.pages[0]!);
      this.pages[0] = p;
      this.cap = size;
    }
    while (this.cap < n) {
      const p = pageOf(this.w, PAGE);
      if (this.init !== 0) p.fill(this.init);
      this.pages.push(p);
      this.cap += PAGE;
    }
  }

  /** Wide enough for `v` (each page copied once into a wider one: past 255, then past 65535). */
  widen(v: number): void {
    if (v <= this.max) return;
    const w: ColumnWidth = v <= 0xffff ? 16 : 32;
    for (let i = 0; i < this.pages.length; i++) {
      const p = pageOf(w, this.pages[i]!.length);
      p.set(this.pages[i]!);
      this.pages[i] = p;
    }
    this.w = w;
    this.max = maxOf(w);
  }

  /** An empty column of the same width (and unset value) with room for `n` ids. */
  emptyLike(n: number): PagedColumn {
    const c = new PagedColumn(this.w, this.init);
    c.grow(n);
    return c;
  }
}

/** A column of signed 32-bit values in pages (the prefix ids' networks): a class of its own, so the
 *  index columns' reads see one kind of page (one-byte pages, usually) and stay monomorphic. */
export class PagedInt32 {
  private pages: Int32Array[] = [];
  private cap = 0;

  get capacity(): number {
    return this.cap;
  }
  get bytes(): number {
    return this.cap * 4;
  }
  get(i: number): number {
    return this.pages[i >>> PAGE_BITS]![i & MASK]!;
  }
  set(i: number, v: number): void {
    this.pages[i >>> PAGE_BITS]![i & MASK] = v;
  }
  /** Room for every id below `n` (the first page doubled up to a full one, then pages added). */
  grow(n: number): void {
    if (n <= this.cap) return;
    if (this.cap < PAGE) {
      const size = Math.min(PAGE, Math.max(FIRST, 2 ** Math.ceil(Math.log2(n))));
      const p = new Int32Array(size);
      if (this.cap) p.set(this.pages[0]!);
      this.pages[0] = p;
      this.cap = size;
    }
    while (this.cap < n) {
      this.pages.push(new Int32Array(PAGE));
      this.cap += PAGE;
    }
  }
  emptyLike(n: number): PagedInt32 {
    const c = new PagedInt32();
    c.grow(n);
    return c;
  }
}
