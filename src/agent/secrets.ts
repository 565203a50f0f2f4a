// Secrets of BGP sessions: a `secretKeyRef {name, key}` (BGPPeer password, BGPConfiguration
// nodeMeshPassword) is the file `<TABBY_SECRETS_DIR>/<name>/<key>` — how a Kubernetes Secret volume
// (one directory per Secret, one file per key, swapped atomically through `..data` symlinks) or a
// systemd credentials directory lays it out. Files are re-read every `pollMs`; a changed value (or
// a secret appearing/disappearing) calls onChange so the agent re-peers the sessions using it.
// A secret that cannot be read is an error value, never an empty password: the caller must not
// connect (a session without TCP-MD5 where MD5 was configured would fail open).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../common/log.js';

export const DEFAULT_SECRETS_DIR = '/etc/tabby/secrets';
/** TCP_MD5SIG_MAXKEYLEN (linux/tcp.h). */
const MAX_KEY_BYTES = 80;

export interface SecretKeyRef {
  name: string;
  key: string;
}

export type SecretRead = { ok: true; value: string } | { ok: false; reason: string };

/** A path component of a Secret name or key: no separators, not "." / "..", not hidden (`..data`). */
const SAFE_PART = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/** The `{secretKeyRef: {name, key}}` of a resource field, or undefined when it is not that shape. */
export function secretKeyRefOf(v: unknown): SecretKeyRef | undefined {
  const ref = (v as { secretKeyRef?: unknown } | undefined)?.secretKeyRef as { name?: unknown; key?: unknown } | undefined;
  if (!ref || typeof ref.name !== 'string' || typeof ref.key !== 'string') return undefined;
  return { name: ref.name, key: ref.key };
}

export const refText = (r: SecretKeyRef): string => `${r.name}/${r.key}`;

/**
 * Read one secret now. The value is the file's bytes with one trailing newline removed (chose:
 * `echo key > file` is the usual way to write one, and no router lets you type a newline in a key).
 */
export function readSecret(dir: string, ref: SecretKeyRef): SecretRead {
  const name = refText(ref);
  if (!SAFE_PART.test(ref.name) || !SAFE_PART.test(ref.key))
    return { ok: false, reason: `password secret ${name} is not a valid secret name/key` };
  const file = path.join(dir, ref.name, ref.key);
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { ok: false, reason: `password secret ${name} not found (${file})` };
    return { ok: false, reason: `password secret ${name} cannot be read (${file}: ${code ?? (e as Error).message})` };
  }
  let value = buf.toString('utf8');
  if (value.endsWith('\r\n')) value = value.slice(0, -2);
  else if (value.endsWith('\n')) value = value.slice(0, -1);
  if (value.length === 0) return { ok: false, reason: `password secret ${name} is empty (${file})` };
  if (Buffer.byteLength(value) > MAX_KEY_BYTES)
    return { ok: false, reason: `password secret ${name} is longer than ${MAX_KEY_BYTES} bytes (the TCP-MD5 limit)` };
  return { ok: true, value };
}

export interface SecretStoreOptions {
  dir: string;
  /** How often referenced files are re-read (ms). */
  pollMs: number;
  logger: Logger;
  /** A referenced secret changed (value, or readable ↔ not). */
  onChange: () => void;
}

/** The secrets the agent uses, re-read periodically. */
export class SecretStore {
  private readonly last = new Map<string, { ref: SecretKeyRef; fingerprint: string }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: SecretStoreOptions) {}

  get dir(): string {
    return this.o.dir;
  }

  /** Read a secret and remember it for change detection. */
  read(ref: SecretKeyRef): SecretRead {
    const r = readSecret(this.o.dir, ref);
    this.last.set(refText(ref), { ref, fingerprint: fingerprint(r) });
    return r;
  }

  /** Forget secrets no longer referenced (after a reconcile). */
  retain(refs: Iterable<SecretKeyRef>): void {
    const keep = new Set([...refs].map(refText));
    for (const k of [...this.last.keys()]) if (!keep.has(k)) this.last.delete(k);
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.poll(), this.o.pollMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Re-read every referenced secret; true (and onChange) when one changed. */
  poll(): boolean {
    let changed = false;
    for (const [k, e] of this.last) {
      const f = fingerprint(readSecret(this.o.dir, e.ref));
      if (f === e.fingerprint) continue;
      this.last.set(k, { ref: e.ref, fingerprint: f });
      this.o.logger.info({ secret: k }, 'password secret changed: re-peering the sessions that use it');
      changed = true;
    }
    if (changed) this.o.onChange();
    return changed;
  }
}

/** What identifies a read, without keeping the key itself in the store. */
function fingerprint(r: SecretRead): string {
  return r.ok ? `ok:${createHash('sha256').update(r.value).digest('hex')}` : `err:${r.reason}`;
}
