import t from 'tap';
import { isoTime } from '../../../src/common/iso-time.js';

t.test('isoTime gives what Date.prototype.toISOString gives', async (t) => {
  const cases = [
    0,
    -1,
    1,
    86_399_999,
    86_400_000,
    951_782_400_000, // 2000-02-29
    4_107_542_400_000, // 2100-03-01 (2100 is not a leap year)
    253_402_300_799_999, // 9999-12-31T23:59:59.999Z
    253_402_300_800_000, // +010000
    -62_167_219_200_001, // -000001
    8.64e15,
    -8.64e15,
    1_780_000_000_123.9, // fractions are cut, not rounded
  ];
  let x = 0x2545f491;
  for (let i = 0; i < 20_000; i++) {
    x = (Math.imul(x, 1_103_515_245) + 12_345) >>> 0;
    cases.push((x / 2 ** 32 - 0.5) * 2 * 8.64e15 * (i % 2 ? 1 : 1e-4));
  }
  let bad = 0;
  for (const ms of cases) {
    const want = new Date(ms).toISOString();
    if (isoTime(ms) !== want || isoTime(new Date(ms)) !== want) {
      if (bad++ < 5) t.equal(isoTime(ms), want, `epoch ms ${ms}`);
    }
  }
  t.equal(bad, 0, `${cases.length} times formatted as toISOString does`);
  t.match(isoTime(), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'now by default');
});

t.test('an invalid time is a RangeError, as with toISOString', async (t) => {
  for (const v of [Number.NaN, Number.POSITIVE_INFINITY, 8.64e15 + 1, new Date(Number.NaN)]) t.throws(() => isoTime(v), RangeError);
});
