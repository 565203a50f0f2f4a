// PagedColumn: a per-id column that grows a page at a time — nothing copied, so growing leaves no dead
// ArrayBuffer behind; values kept through growth and widening; entries never set read as the column's
// unset value.
import t from 'tap';
import { lastJsonLine, runModule } from '../../helpers/node-child.js';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { PAGE, PagedColumn } from '../../../src/common/paged-column.js';

t.test('values kept through growth; unset entries read as the unset value; room under a page past the last id', async (t) => {
  const c = new PagedColumn(8, 255);
  t.equal(c.capacity, 0);
  c.grow(1);
  t.equal(c.capacity, 64, 'a small table: a small first page');
  t.equal(c.get(0), 255, 'unset');
  c.set(0, 7);
  c.grow(100);
  t.equal(c.capacity, 128, 'the first page doubles');
  t.equal(c.get(0), 7, 'kept');
  t.equal(c.get(99), 255, 'unset');
  c.grow(PAGE + 1);
  t.equal(c.capacity, 2 * PAGE, 'then whole pages');
  for (let i = 0; i < 3 * PAGE + 5; i++) {
    c.grow(i + 1);
    c.set(i, i % 200);
  }
  t.equal(c.capacity, 4 * PAGE, 'room for the last id, under a page more');
  let bad = 0;
  for (let i = 0; i < 3 * PAGE + 5; i++) if (c.get(i) !== i % 200) bad++;
  t.equal(bad, 0, 'every value kept');
  t.equal(c.get(3 * PAGE + 6), 255, 'unset past the last one set');
  const n = new PagedColumn(32);
  n.grow(10);
  n.set(3, -5);
  n.set(4, 0x7fffffff);
  t.equal(n.get(3), -5, 'signed at 32 bits');
  t.equal(n.get(4), 0x7fffffff);
  const e = c.emptyLike(10);
  t.equal(e.capacity, 64);
  t.equal(e.get(9), 255, 'an empty column like it: same unset value');
  t.equal(e.width, 8);
});

t.test('an index column widens past 255 and 65535, values kept', async (t) => {
  const c = new PagedColumn(8);
  c.grow(2 * PAGE);
  for (let i = 0; i < 2 * PAGE; i++) c.set(i, i & 255);
  t.equal(c.max, 255);
  c.widen(255);
  t.equal(c.width, 8, 'no wider than needed');
  c.widen(256);
  t.equal(c.width, 16);
  c.set(7, 60_000);
  t.equal(c.get(7), 60_000);
  c.widen(70_000);
  t.equal(c.width, 32);
  c.set(8, 70_000);
  let bad = 0;
  for (let i = 0; i < 2 * PAGE; i++) if (i !== 7 && i !== 8 && c.get(i) !== (i & 255)) bad++;
  t.equal(bad, 0, 'every value kept');
  t.equal(c.get(7), 60_000);
  t.equal(c.get(8), 70_000);
});

t.test('growing to 200k entries leaves no dead ArrayBuffer (a doubled typed array left its old half)', async (t) => {
  const mod = pathToFileURL(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src/common/paged-column.js')).href;
  const code = `
const { PagedColumn } = await import(${JSON.stringify(mod)});
const ab = () => process.memoryUsage().arrayBuffers;
gc(); gc();
const base = ab();
const c = new PagedColumn(32);
for (let i = 0; i < 200000; i++) { c.grow(i + 1); c.set(i, i); }
const all = ab() - base;
gc(); gc();
const live = ab() - base;
console.log(JSON.stringify({ all, live, bytes: c.bytes, last: c.get(199999) }));
`;
  const r = runModule(code, { exposeGc: true, timeout: 60_000 });
  t.equal(r.status, 0, r.stderr);
  const m = lastJsonLine<{ all: number; live: number; bytes: number; last: number }>(r.stdout);
  t.equal(m.last, 199_999);
  t.equal(m.live, m.bytes, 'what it holds is what it says');
  t.ok(
    m.all - m.live <= PAGE * 4,
    `nothing allocated on the way is dead but the first page's doublings (${m.all - m.live} B ≤ ${PAGE * 4})`,
  );
  t.ok(m.live < 200_000 * 4 + PAGE * 4, `room for under a page past the last entry (${m.live} B < ${200_000 * 4 + PAGE * 4})`);
});
