// A tiny field-checking kit for resource validation: a Checker collects every problem of a document
// (each message names the field and quotes the value), and the name and label rules Kubernetes and
// Calico apply. Used by validation.ts and the per-kind checkers beside it. Also the home of the AS number
// parser (plain and asdot, RFC 5396), which every layer uses.
import { parseDuration } from '../common/duration.js';
import { echo } from '../common/echo.js';
import { formatCidr, formatIp, parseCidr, tryParseIp, type Cidr } from '../common/ip.js';
import { parseSelector, type SelectorError } from './selector.js';
export class InvalidAsn extends Error {
  readonly code = 'EINVALIDASN';
  constructor(
    readonly input: unknown,
    reason: string,
  ) {
    super(`invalid AS number ${echo(input)}: ${reason}`);
    this.name = 'InvalidAsn';
  }
}

/** AS number as plain (64512, "4200000000") or asdot ("64512.100" = 64512*65536+100), RFC 5396. 0 is reserved (RFC 7607). */
export function parseAsn(input: unknown): number {
  let n: number;
  if (typeof input === 'number') {
    n = input;
  } else if (typeof input === 'string') {
    const s = input.trim();
    const dot = /^(\d{1,5})\.(\d{1,5})$/.exec(s);
    if (dot) {
      const hi = Number(dot[1]),
        lo = Number(dot[2]);
      if (hi > 65535 || lo > 65535) throw new InvalidAsn(input, 'each half of the asdot form must be 0..65535');
      n = hi * 65536 + lo;
    } else if (/^\d{1,10}$/.test(s)) {
      n = Number(s);
    } else {
      throw new InvalidAsn(input, 'expected a number 1..4294967295 or the asdot form "64512.100"');
    }
  } else {
    throw new InvalidAsn(input, 'expected a number or a string');
  }
  if (!Number.isInteger(n) || n < 0 || n > 4294967295) throw new InvalidAsn(input, 'out of range 1..4294967295');
  if (n === 0) throw new InvalidAsn(input, 'AS 0 is reserved (RFC 7607)');
  return n;
}

/** asdot+ text of a 4-byte AS ("64512.100") or plain for 2-byte ones. */
export function formatAsnDot(asn: number): string {
  return asn > 65535 ? `${Math.floor(asn / 65536)}.${asn % 65536}` : String(asn);
}

export type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
/** A value from the user in a message: quoted, cut, control characters escaped. */
export const show = (v: unknown): string => echo(v);

export class Checker {
  readonly problems: string[] = [];
  add(msg: string): void {
    this.problems.push(msg);
  }

  /** Unknown fields are errors (a typo must not silently become a default). */
  known(o: Obj, path: string, fields: readonly string[]): void {
    for (const k of Object.keys(o)) if (!fields.includes(k)) this.add(`unknown field ${path}${k}`);
  }
  string(o: Obj, k: string, path: string): string | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') {
      this.add(`${path}${k} must be a string, got ${show(v)}`);
      return undefined;
    }
    return v;
  }
  bool(o: Obj, k: string, path: string): boolean | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') {
      this.add(`${path}${k} must be true or false, got ${show(v)}`);
      return undefined;
    }
    return v;
  }
  int(o: Obj, k: string, path: string, min: number, max: number): number | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      this.add(`${path}${k} must be an integer, got ${show(v)}`);
      return undefined;
    }
    if (v < min || v > max) {
      this.add(`${path}${k} ${v} is out of range ${min}..${max}`);
      return undefined;
    }
    return v;
  }
  oneOf<T extends string>(o: Obj, k: string, path: string, allowed: readonly T[]): T | undefined {
    const v = this.string(o, k, path);
    if (v === undefined) return undefined;
    const hit = allowed.find((a) => a.toLowerCase() === v.toLowerCase());
    if (!hit) {
      this.add(`${path}${k} ${show(v)} is not one of ${allowed.join(', ')}`);
      return undefined;
    }
    return hit;
  }
  asn(o: Obj, k: string, path: string): number | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    try {
      return parseAsn(v);
    } catch (e) {
      this.add(`${path}${k} ${show(v)} is not a valid AS number: ${(e as InvalidAsn).message.replace(/^invalid AS number [^:]*: /, '')}`);
      return undefined;
    }
  }
  cidr(o: Obj, k: string, path: string, family?: 4 | 6): Cidr | undefined {
    const v = this.string(o, k, path);
    if (v === undefined) return undefined;
    try {
      const c = parseCidr(v, { requirePrefix: true });
      if (family && c.family !== family) {
        this.add(`${path}${k} ${show(v)} is not an IPv${family} CIDR`);
        return undefined;
      }
      return c;
    } catch (e) {
      this.add(`${path}${k} ${show(v)} is not a valid CIDR: ${reason(e)}`);
      return undefined;
    }
  }
  ip(o: Obj, k: string, path: string, family?: 4 | 6): string | undefined {
    const v = this.string(o, k, path);
    if (v === undefined) return undefined;
    const ip = tryParseIp(v);
    if (!ip) {
      this.add(`${path}${k} ${show(v)} is not a valid IP address`);
      return undefined;
    }
    if (family && ip.family !== family) {
      this.add(`${path}${k} ${show(v)} is not an IPv${family} address`);
      return undefined;
    }
    return formatIp(ip);
  }
  selector(o: Obj, k: string, path: string): string | undefined {
    const v = this.string(o, k, path);
    if (v === undefined) return undefined;
    try {
      parseSelector(v);
      return v;
    } catch (e) {
      this.add(`${path}${k} ${show(v)} is not a valid selector: ${(e as SelectorError).message.replace(/^invalid selector "[^"]*" /, '')}`);
      return undefined;
    }
  }
  duration(o: Obj, k: string, path: string): string | undefined {
    const v = this.string(o, k, path);
    if (v === undefined) return undefined;
    if (parseDuration(v) === undefined) {
      this.add(`${path}${k} ${show(v)} is not a duration like "120s" or "2m"`);
      return undefined;
    }
    return v;
  }
  object(o: Obj, k: string, path: string): Obj | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (!isObj(v)) {
      this.add(`${path}${k} must be a mapping, got ${show(v)}`);
      return undefined;
    }
    return v;
  }
  array(o: Obj, k: string, path: string): unknown[] | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) {
      this.add(`${path}${k} must be a list, got ${show(v)}`);
      return undefined;
    }
    return v;
  }
}

export function reason(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.replace(/^invalid address "[^"]*": /, '');
}

/** Lowercase RFC 1123 subdomain, as Kubernetes and Calico require for names. */
export const NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const LABEL_KEY_RE =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
export const LABEL_VALUE_RE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

export function checkCidrList(c: Checker, spec: Obj, k: string, out: Obj): void {
  const list = c.array(spec, k, 'spec.');
  if (!list) return;
  out[k] = list.map((item, i) => {
    const p = `spec.${k}[${i}].`;
    if (!isObj(item)) {
      c.add(`spec.${k}[${i}] must be a mapping like {cidr: 10.96.0.0/12}`);
      return item;
    }
    c.known(item, p, ['cidr']);
    const cidr = c.cidr(item, 'cidr', p);
    if (item.cidr === undefined) c.add(`${p}cidr is required`);
    return cidr ? { cidr: formatCidr(cidr) } : item;
  });
}
