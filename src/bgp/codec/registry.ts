// BGP code registries (message types, capabilities, path attributes, NOTIFICATION codes) as data:
// proto/bgp/registry.json, read once at module load. Names are for logs and status text only.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ErrorHandling } from './types.js';

export interface AttributeRow {
  name: string;
  /** 'wellknown' (O=0,T=1), 'optional' (O=1,T=0), 'optional-transitive' (O=1,T=1) */
  flags: 'wellknown' | 'optional' | 'optional-transitive';
  onError: ErrorHandling;
}

interface Registry {
  messageTypes: Record<string, string>;
  capabilities: Record<string, string>;
  attributes: Record<string, AttributeRow>;
  notificationCodes: Record<string, { name: string; subcodes: Record<string, string> }>;
}

function findRegistry(): string {
  // Works from src/bgp/codec (ts) and dist/src/bgp/codec (compiled): walk up to the repo's proto/.
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const f = path.join(dir, 'proto/bgp/registry.json');
    if (fs.existsSync(f)) return f;
    dir = path.dirname(dir);
  }
  throw new Error(`proto/bgp/registry.json not found above ${fileURLToPath(import.meta.url)}`);
}

export const REGISTRY: Readonly<Registry> = Object.freeze(JSON.parse(fs.readFileSync(findRegistry(), 'utf8')) as Registry);

/** Attribute rows indexed by type code (undefined = unknown to tabby). */
export const ATTRIBUTE_ROWS: readonly (AttributeRow | undefined)[] = (() => {
  const rows: (AttributeRow | undefined)[] = new Array(256).fill(undefined);
  for (const [code, row] of Object.entries(REGISTRY.attributes)) rows[Number(code)] = row;
  return rows;
})();

export function messageTypeName(type: number): string {
  return REGISTRY.messageTypes[String(type)] ?? `type ${type}`;
}
export function capabilityName(code: number): string {
  return REGISTRY.capabilities[String(code)] ?? `capability ${code}`;
}
export function attributeName(code: number): string {
  return ATTRIBUTE_ROWS[code]?.name ?? `attribute ${code}`;
}
/** 'Bad BGP identifier', 'Hold Timer Expired', 'Cease: Administrative Shutdown'-style text as BIRD shows it. */
export function notificationText(code: number, subcode: number): string {
  const c = REGISTRY.notificationCodes[String(code)];
  if (!c) return `Error ${code}/${subcode}`;
  const s = c.subcodes[String(subcode)];
  if (subcode === 0 || !s) return c.name;
  return s;
}
