// A per-id column of small integers that grows a page (8192 entries) at a time, for the route path's
// tables (prefix ids, the reconciler's key table, the route table's groups). Growing adds a page and
// copies nothing: a column doubled as one typed array left its old half as a dead ArrayBuffer until
// the next full GC (at 200k prefixes ~2 MB of them at once), and kept up to its own size of room past
// the last id; here the room is under a page.
// A column of indexes starts one byte wide and widens (each page copied once) past 255 / 65535.

export const PAGE_BITS = 13;
export const PAGE = 1 << PAGE_BITS;
const MASK = PAGE - 1;

type Page = Uint8Array | Uint16Array | Int32Array;

/** Bits per entry: 8 and 16 unsigned, 32 signed. */
export type ColumnWidth = 8 | 16 | 32;

const maxOf = (w: ColumnWidth): number => (w === 8 ? 0xff : w === 16 ? 0xffff : 0x7fffffff);
const pageOf = (w: ColumnWidth): Page => (w === 8 ? new Uint8Array(PAGE) : w === 16 ? new Uint16Array(PAGE) : new Int32Array(PAGE));

export class PagedColumn {
  private pages: Page[] = [];
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
    return this.pages.length << PAGE_BITS;
  }
  /** bytes held */
  get bytes(): number {
    return this.pages.length * PAGE * (this.w >> 3);
  }

  get(i: number): number {
    return this.pages[i >>> PAGE_BITS]![i & MASK]!;
  }
  set(i: number, v: number): void {
    this.pages[i >>> PAGE_BITS]![i & MASK] = v;
  }

  /** Room for every id below `n` (pages added; nothing copied). */
  grow(n: number): void {
    while (this.pages.length << PAGE_BITS < n) {
      const p = pageOf(this.w);
      if (this.init !== 0) p.fill(this.init);
      this.pages.push(p);
    }
  }

  /** Wide enough for `v` (each page copied once into a wider one: past 255, then past 65535). */
  widen(v: number): void {
    if (v <= this.max) return;
    const w: ColumnWidth = v <= 0xffff ? 16 : 32;
    for (let i = 0; i < this.pages.length; i++) {
      const p = pageOf(w);
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
