// Showing a value from the user in an error message: quoted, control characters (C0, DEL, C1, line and
// paragraph separators, bidi overrides) escaped so a terminal or log shows them as text, and cut to a
// short prefix that says how long the whole value was — a 200 KB field or raw escape codes never reach
// a terminal, a log line or a CNI error object whole.

const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** `"value"` for a string, JSON for anything else; escaped and at most about `max` characters. */
export function echo(v: unknown, max = 64): string {
  let text: string;
  if (typeof v === 'string') text = v;
  else {
    try {
      text = JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)) ?? String(v);
    } catch {
      text = String(v);
    }
  }
  const cut = text.length > max ? text.slice(0, max) : text;
  // JSON.stringify quotes a string and escapes C0, quotes and backslashes; the rest is escaped here.
  const shown = (typeof v === 'string' ? JSON.stringify(cut) : cut).replace(
    CONTROL,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return text.length > max ? `${shown}… (${text.length} chars)` : shown;
}
