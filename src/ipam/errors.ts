// Typed IPAM errors: callers (CNI plugin, agent, tabbyctl) branch on the class / `code`, never on text.
import type { Family } from '../common/ip.js';

export class PoolExhausted extends Error {
  readonly code = 'EPOOLEXHAUSTED';
  constructor(
    /** The pool(s) searched (names, comma-separated), or '' when no pool qualified at all. */
    readonly pool: string,
    readonly family: Family,
    readonly node: string,
    readonly reason: string,
  ) {
    super(
      pool === ''
        ? `no IPv${family} address for node "${node}": ${reason}`
        : `IPv${family} pool ${pool} exhausted for node "${node}": ${reason}`,
    );
    this.name = 'PoolExhausted';
  }
}

export class AddressNotInPool extends Error {
  readonly code = 'ENOTINPOOL';
  constructor(readonly ip: string) {
    super(`address ${ip} is not in any configured IP pool`);
    this.name = 'AddressNotInPool';
  }
}

export class StrictAffinityViolation extends Error {
  readonly code = 'ESTRICTAFFINITY';
  constructor(
    readonly ip: string,
    readonly block: string,
    readonly owner: string | null,
    readonly node: string,
  ) {
    super(
      `address ${ip} is in block ${block} of ${owner ? `node "${owner}"` : 'no node'}; strictAffinity forbids node "${node}" from using it`,
    );
    this.name = 'StrictAffinityViolation';
  }
}

export class IpamRetriesExhausted extends Error {
  readonly code = 'ERETRIES';
  constructor(
    readonly what: string,
    readonly attempts: number,
  ) {
    super(`${what}: still conflicting after ${attempts} compare-and-swap attempts (datastore under heavy contention); try again`);
    this.name = 'IpamRetriesExhausted';
  }
}

export class PoolUseNotAllowed extends Error {
  readonly code = 'EPOOLUSE';
  constructor(
    readonly ip: string,
    readonly pool: string,
    readonly use: string,
  ) {
    super(`address ${ip} is in IP pool "${pool}", whose allowedUses do not include ${use}`);
    this.name = 'PoolUseNotAllowed';
  }
}
