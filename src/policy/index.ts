// Network policy (Felix's other half): a pure compiler from WorkloadEndpoints, NetworkPolicies,
// GlobalNetworkPolicies and Profiles to one node's nftables ruleset (model.ts, rules.ts, compile.ts,
// render.ts), the nft shell that programs it in one transaction per change (nft.ts), the engine that
// watches the datastore and drives both (engine.ts), and explain (explain.ts).
export {
  compile,
  collapse,
  deltaOf,
  type RulesetDelta,
  type Ruleset,
  type NftSet,
  type NftChain,
  type EndpointPlan,
} from './compile.js';
export { fullScript, diffScript, deltaScript, adoptScript, parseListing, POLICY_TABLE, BASE_CHAINS } from './render.js';
export { PolicyState, type PolicyResource } from './state.js';
export { PolicyTable, nftRunner, NftError, type NftRunner, type ProgramResult } from './nft.js';
export { PolicyEngine, POLICY_KINDS, type PolicyEngineStatus } from './engine.js';
export { endpointViews, policyViews, policiesFor, selects, type PolicyInputs, type EndpointView, type PolicyView } from './model.js';
