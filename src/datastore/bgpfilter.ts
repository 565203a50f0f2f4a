// The BGPFilter resource (projectcalico.org/v3, Calico 3.32 fields): validation and normalisation of
// its four rule lists. Registered in validation.ts (SPEC_CHECKERS) and resources.ts (plural, aliases).
// The rule shape is the speaker's own (src/bgp/filter/types.ts): one type from the YAML to the engine.
// Rules Calico's CRD enforces and tabby enforces too: cidr and matchOperator together; prefixLength
// only with cidr; operations only with action Accept, 1..10 of them, each with exactly one field;
// communities.values exactly one `aa:nn` / `aa:nn:mm` value; priority 1..2147483646.
import { formatCidr } from '../common/ip.js';
import { parseCommunity } from '../bgp/filter/engine.js';
import type { FilterRule, FilterRules } from '../bgp/filter/types.js';
import type { Checker } from './check-kit.js';

export type BGPFilterSpec = FilterRules;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown): string => (typeof v === 'string' ? `"${v}"` : JSON.stringify(v));
const MAX_PRIORITY = 2147483646;
const RULE_FIELDS = [
  'cidr',
  'matchOperator',
  'prefixLength',
  'source',
  'interface',
  'peerType',
  'communities',
  'asPathPrefix',
  'priority',
  'action',
  'operations',
];
const IFACE_RE = /^[A-Za-z0-9_.*?:@-]{1,64}$/;

function checkAsnList(c: Checker, o: Obj, k: string, p: string, max: number): number[] | undefined {
  const list = c.array(o, k, p);
  if (!list) return undefined;
  if (list.length === 0 || list.length > max) c.add(`${p}${k} must list 1..${max} AS numbers`);
  const out: number[] = [];
  list.forEach((v, i) => {
    const asn = c.asn({ [`${k}[${i}]`]: v }, `${k}[${i}]`, p);
    if (asn !== undefined) out.push(asn);
  });
  return out;
}

function checkCommunityValue(c: Checker, v: unknown, where: string): string | undefined {
  if (typeof v !== 'string' || !parseCommunity(v)) {
    c.add(`${where} ${show(v)} is not a community "aa:nn" (0..65535 each) or large community "aa:nn:mm" (0..4294967295 each)`);
    return undefined;
  }
  return v.trim();
}

function checkRule(c: Checker, raw: unknown, p: string, family: 4 | 6): FilterRule | undefined {
  if (!isObj(raw)) {
    c.add(`${p.slice(0, -1)} must be a mapping with at least action`);
    return undefined;
  }
  c.known(raw, p, RULE_FIELDS);
  const action = c.oneOf(raw, 'action', p, ['Accept', 'Reject'] as const);
  if (raw.action === undefined) c.add(`${p}action is required (Accept or Reject)`);
  const out: FilterRule = { action: action ?? 'Reject' };
  const cidr = c.cidr(raw, 'cidr', p, family);
  const op = c.oneOf(raw, 'matchOperator', p, ['Equal', 'NotEqual', 'In', 'NotIn'] as const);
  const hasCidr = raw.cidr !== undefined && raw.cidr !== '';
  const hasOp = raw.matchOperator !== undefined && raw.matchOperator !== '';
  if (hasCidr !== hasOp) c.add(`${p}cidr and ${p}matchOperator must both be set or both be empty`);
  if (cidr) out.cidr = formatCidr(cidr);
  if (op) out.matchOperator = op;
  const pl = c.object(raw, 'prefixLength', p);
  if (pl) {
    const bits = family === 4 ? 32 : 128;
    c.known(pl, `${p}prefixLength.`, ['min', 'max']);
    if (!hasCidr) c.add(`${p}cidr is required when ${p}prefixLength is set`);
    const min = c.int(pl, 'min', `${p}prefixLength.`, 0, bits);
    const max = c.int(pl, 'max', `${p}prefixLength.`, 0, bits);
    if (min !== undefined && max !== undefined && min > max) c.add(`${p}prefixLength.min ${min} is greater than max ${max}`);
    out.prefixLength = { ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}) };
  }
  const source = c.oneOf(raw, 'source', p, ['RemotePeers'] as const);
  if (source) out.source = source;
  const iface = c.string(raw, 'interface', p);
  if (iface !== undefined) {
    if (!IFACE_RE.test(iface)) c.add(`${p}interface ${show(iface)} is not an interface name or glob like "eth0" or "*.calico"`);
    else out.interface = iface;
  }
  const peerType = c.oneOf(raw, 'peerType', p, ['eBGP', 'iBGP'] as const);
  if (peerType) out.peerType = peerType;
  const comm = c.object(raw, 'communities', p);
  if (comm) {
    c.known(comm, `${p}communities.`, ['values']);
    const values = c.array(comm, 'values', `${p}communities.`);
    if (!values || values.length !== 1) c.add(`${p}communities.values must hold exactly one community (as in Calico)`);
    else {
      const v = checkCommunityValue(c, values[0], `${p}communities.values[0]`);
      if (v) out.communities = { values: [v] };
    }
  }
  const app = checkAsnList(c, raw, 'asPathPrefix', p, 10);
  if (app?.length) out.asPathPrefix = app;
  const prio = c.int(raw, 'priority', p, 1, MAX_PRIORITY);
  if (prio !== undefined) out.priority = prio;
  const ops = c.array(raw, 'operations', p);
  if (ops) {
    if (action === 'Reject') c.add(`${p}operations may only be used with action Accept`);
    if (ops.length === 0 || ops.length > 10) c.add(`${p}operations must hold 1..10 entries`);
    out.operations = [];
    ops.forEach((o, i) => {
      const q = `${p}operations[${i}].`;
      if (!isObj(o)) {
        c.add(`${q.slice(0, -1)} must be a mapping with one of addCommunity, prependASPath, setPriority`);
        return;
      }
      c.known(o, q, ['addCommunity', 'prependASPath', 'setPriority']);
      const set = ['addCommunity', 'prependASPath', 'setPriority'].filter((k) => o[k] !== undefined && o[k] !== null);
      if (set.length !== 1) {
        c.add(`${q.slice(0, -1)} must set exactly one of addCommunity, prependASPath, setPriority (has ${set.length})`);
        return;
      }
      const ac = c.object(o, 'addCommunity', q);
      if (ac) {
        c.known(ac, `${q}addCommunity.`, ['value']);
        const v = checkCommunityValue(c, ac.value, `${q}addCommunity.value`);
        if (v) out.operations!.push({ addCommunity: { value: v } });
      }
      const pp = c.object(o, 'prependASPath', q);
      if (pp) {
        c.known(pp, `${q}prependASPath.`, ['prefix']);
        if (pp.prefix === undefined) c.add(`${q}prependASPath.prefix is required`);
        const asns = checkAsnList(c, pp, 'prefix', `${q}prependASPath.`, 10);
        if (asns?.length) out.operations!.push({ prependASPath: { prefix: asns } });
      }
      const sp = c.object(o, 'setPriority', q);
      if (sp) {
        c.known(sp, `${q}setPriority.`, ['value']);
        if (sp.value === undefined) c.add(`${q}setPriority.value is required`);
        const v = c.int(sp, 'value', `${q}setPriority.`, 1, MAX_PRIORITY);
        if (v !== undefined) out.operations!.push({ setPriority: { value: v } });
      }
    });
  }
  return out;
}

export function checkBGPFilter(c: Checker, _name: string, spec: Obj): Obj {
  c.known(spec, 'spec.', ['exportV4', 'importV4', 'exportV6', 'importV6']);
  const out: Obj = {};
  for (const [k, family] of [
    ['exportV4', 4],
    ['importV4', 4],
    ['exportV6', 6],
    ['importV6', 6],
  ] as const) {
    const list = c.array(spec, k, 'spec.');
    if (!list) continue;
    const rules: FilterRule[] = [];
    list.forEach((r, i) => {
      const x = checkRule(c, r, `spec.${k}[${i}].`, family);
      if (x) rules.push(x);
    });
    out[k] = rules;
  }
  return out;
}
