// ISO 8601 UTC timestamps ("2026-12-06T04:35:51.123Z", what Date.prototype.toISOString gives) by
// arithmetic. V8 formats every Date — toISOString and toUTCString included — through its time-zone
// cache, and the first call makes ICU load its zone data: ~1 MB of node's binary (icudt) resident in a
// process that otherwise never needs it. tabby-node writes only UTC times (status, datastore records),
// so it formats them here and never pays that.

const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** `when` (a Date or epoch milliseconds) as toISOString would give it; RangeError for an invalid time. */
export function isoTime(when: Date | number = Date.now()): string {
  const ms = typeof when === 'number' ? when : when.getTime();
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) throw new RangeError('Invalid time value');
  const t = Math.trunc(ms);
  const days = Math.floor(t / 86_400_000);
  const inDay = t - days * 86_400_000;
  // civil date from days since 1970-01-01 (H. Hinnant's days_from_civil, inverted)
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const y = year >= 0 && year <= 9999 ? String(year).padStart(4, '0') : `${year < 0 ? '-' : '+'}${String(Math.abs(year)).padStart(6, '0')}`;
  const h = Math.floor(inDay / 3_600_000);
  const m = Math.floor((inDay % 3_600_000) / 60_000);
  const s = Math.floor((inDay % 60_000) / 1000);
  const milli = inDay % 1000;
  return `${y}-${pad2(month)}-${pad2(day)}T${pad2(h)}:${pad2(m)}:${pad2(s)}.${String(milli).padStart(3, '0')}Z`;
}
