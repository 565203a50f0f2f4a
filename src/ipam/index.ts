// IPAM: pods get addresses from per-node affine blocks carved out of IP pools, Calico's way.
//   block.ts  pure operations on one block (allocate/release by ordinal, FIFO reuse, sequence numbers)
//   pools.ts  what IPAM reads about IPPools and Nodes; pool choice (nodeSelector, requested pools, allowedUses)
//   reservations.ts  IPReservation: reserved addresses are skipped by automatic assignment
//   store.ts  datastore keys and typed reads/writes (create-if-absent, compare-and-swap)
//   ipam.ts   orchestration: autoAssign, assignIP, release*, claim/release blocks, check, gc
// Watch `IPAM_PREFIX` (/tabby/ipam/v2/) for block and affinity changes.
export * from './errors.js';
export { Ipam } from './ipam.js';
export type {
  AffineBlock,
  AssignedAddress,
  AutoAssignArgs,
  AutoAssignResult,
  BlockInfo,
  IpamOptions,
  IpInfo,
  PoolUsage,
} from './ipam.js';
export { checkReport, type IpamCheckReport, type IpamLists, type IsLive, type LeakedAddress } from './check.js';
export {
  AddressInUse,
  BadHandle,
  BadSequenceNumber,
  blockAllocations,
  blockHandleCounts,
  blockProblems,
  candidateBlocks,
  hostCidr,
  type BlockValue,
  type ReleaseRequest,
} from './block.js';
export {
  DatastorePoolSource,
  StaticPoolSource,
  UnknownPool,
  basicSelectorMatches,
  poolFromResource,
  setSelectorMatcher,
  poolAllows,
  type PoolInfo,
  type PoolSource,
  type PoolUse,
  type SelectorMatcher,
} from './pools.js';
export {
  DEFAULT_IPAM_CONFIG,
  IpamStore,
  type AffinityState,
  type AffinityValue,
  type HandleValue,
  type IpamConfig,
} from './store.js';
export { IpamGc, type GcLease, type GcTick, type IpamGcOptions } from './gc.js';
export { Reservations } from './reservations.js';
