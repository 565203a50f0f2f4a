// Labels on a stored resource, calicoctl's `label` verb: set k=v (refusing to change an existing value
// without overwrite), or remove keys; written by compare-and-swap, retried on a concurrent change.
import { ResourceNotFound, ResourceConflict, type ResourceStore, type ResourceKind, type KindMap } from './resources.js';

export class LabelError extends Error {
  readonly code = 'ELABEL';
  constructor(message: string) {
    super(message);
    this.name = 'LabelError';
  }
}

const KEY_RE = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const VALUE_RE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

/** "k=v,k2=v2" or ["k=v", …] → map; a bad pair throws LabelError naming it. */
export function parseLabels(input: string | readonly string[]): Record<string, string> {
  const parts = (typeof input === 'string' ? input.split(',') : input.flatMap((s) => s.split(','))).map((s) => s.trim()).filter(Boolean);
  const out: Record<string, string> = {};
  for (const p of parts) {
    const i = p.indexOf('=');
    const k = i < 0 ? p : p.slice(0, i);
    const v = i < 0 ? undefined : p.slice(i + 1);
    if (v === undefined) throw new LabelError(`label "${p}" must be key=value`);
    if (!KEY_RE.test(k)) throw new LabelError(`label key "${k}" is not a valid label name`);
    if (v.length > 63 || !VALUE_RE.test(v)) throw new LabelError(`label value "${v}" of "${k}" is not a valid label value`);
    out[k] = v;
  }
  return out;
}

export interface LabelChange {
  set?: Record<string, string>;
  remove?: readonly string[];
  overwrite?: boolean;
}

/** The labels after a change (pure). */
export function changeLabels(cur: Readonly<Record<string, string>>, ch: LabelChange): Record<string, string> {
  const next = { ...cur };
  for (const [k, v] of Object.entries(ch.set ?? {})) {
    if (Object.hasOwn(next, k) && next[k] !== v && !ch.overwrite)
      throw new LabelError(`label "${k}" is already "${next[k]}" (use --overwrite to change it)`);
    next[k] = v;
  }
  for (const k of ch.remove ?? []) {
    if (!Object.hasOwn(next, k)) throw new LabelError(`label "${k}" is not set`);
    delete next[k];
  }
  return next;
}

/** Apply a label change to a stored resource; `name` is the store name (`ns/name` for namespaced kinds). */
export async function labelResource<K extends ResourceKind>(
  rs: ResourceStore,
  kind: K,
  name: string,
  ch: LabelChange,
): Promise<KindMap[K]> {
  for (let attempt = 0; ; attempt++) {
    const cur = await rs.get(kind, name);
    if (!cur) throw new ResourceNotFound(kind, name);
    const labels = changeLabels(cur.metadata.labels ?? {}, ch);
    try {
      return await rs.update({ ...cur, metadata: { ...cur.metadata, labels } } as KindMap[K]);
    } catch (e) {
      if (e instanceof ResourceConflict && attempt < 5) continue;
      throw e;
    }
  }
}
