// Typed-array columns: index columns as narrow as the largest index they hold, widened and resized
// with their contents.
import t from 'tap';
import { indexMax, resized, widened } from '../../../src/common/typed-array.js';

t.test('widened: as narrow as the largest index; contents kept', async (t) => {
  let a: Uint8Array | Uint16Array | Int32Array = new Uint8Array(1 << 17);
  a[7] = 200;
  t.equal(widened(a, 255), a, 'fits: the same column');
  a = widened(a, 256);
  t.ok(a instanceof Uint16Array);
  t.equal(a[7], 200);
  t.equal(indexMax(a), 0xffff);
  a[8] = 60_000;
  a = widened(a, 70_000);
  t.ok(a instanceof Int32Array);
  t.same([a[7], a[8]], [200, 60_000]);
});

t.test('resized: cut or grown (the new slots zero)', async (t) => {
  const a = new Uint8Array(1 << 16).fill(3);
  const b = resized(a, 1 << 17);
  t.equal(b.length, 1 << 17);
  t.same([b[0], b[(1 << 16) - 1], b[1 << 16], b[(1 << 17) - 1]], [3, 3, 0, 0]);
  const c = resized(b, 10);
  t.same([...c], new Array(10).fill(3));
});
