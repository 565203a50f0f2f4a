// Small helpers of the agent: address text, router ID from a name, error classification, timers.
import { parseCidr, formatIp } from '../common/ip.js';

/** "10.0.0.5/24" → "10.0.0.5". */
export function ipOf(addr: string): string {
  const c = parseCidr(addr);
  return formatIp({ family: c.family, value: c.ip });
}

/** CALICO_ROUTER_ID=hash: a stable IPv4-formatted ID from the node name (FNV-1a 32). */
export function hashRouterId(name: string): string {
  let h = 0x811c9dc5;
  for (const ch of Buffer.from(name, 'utf8')) {
    h ^= ch;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  if (h === 0) h = 1;
  return formatIp({ family: 4, value: BigInt(h) });
}

export function msg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function codeOf(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}

/** A lost compare-and-swap race: read again and retry. */
export const isRetryable = (e: unknown): boolean => ['ECONFLICT', 'EEXIST', 'ENOTFOUND'].includes(codeOf(e) ?? '');
export const isExists = (e: unknown): boolean => codeOf(e) === 'EEXIST' || /already exists/i.test(msg(e));
/** The datastore could not be reached (as opposed to a validation or logic error). */
export const isDatastoreDown = (e: unknown): boolean => {
  const c = codeOf(e);
  return (
    c === 'EUNAVAILABLE' ||
    c === 'ETIMEOUT' ||
    c === 'ECONNREFUSED' ||
    (c === undefined && /unavailable|ECONNREFUSED|deadline|timed? ?out|connect/i.test(msg(e)))
  );
};

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    t.unref();
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(Object.assign(new Error(`${what} within ${ms} ms`), { code: 'ETIMEOUT' })), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
