// The reconciler tests' kernel object: a key, a value and an owner ('me' is what the reconciler may
// touch), and the part of a driver every such test shares (how objects are keyed, compared and owned).
import type { ReconcileDriver } from '../../src/dataplane/reconciler.js';

export interface Obj {
  key: string;
  value: string;
  owner: 'me' | 'other';
}

/** An object of ours. */
export const me = (key: string, value = 'v'): Obj => ({ key, value, owner: 'me' });

/** kind, key, equal and owned of a driver over Obj; a test adds list/apply/remove. */
export const objDriverBase: Pick<ReconcileDriver<Obj>, 'kind' | 'key' | 'equal' | 'owned'> = {
  kind: 'obj',
  key: (o) => o.key,
  equal: (a, b) => a.value === b.value && a.owner === b.owner,
  owned: (o) => o.owner === 'me',
};
