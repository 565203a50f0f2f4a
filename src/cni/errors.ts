// Map tabby's typed errors to CNI error objects (spec §"Error"): branch on classes/codes, never on text.
import { CNI_ERR, CniError } from './netconf.js';

export function toCniError(e: unknown): CniError {
  if (e instanceof CniError) return e;
  const err = e instanceof Error ? e : new Error(String(e));
  const code = (err as { code?: unknown }).code;
  switch (code) {
    case 'EPOOLEXHAUSTED':
      return new CniError(
        CNI_ERR.POOL_EXHAUSTED,
        err.message,
        'add addresses (a new IPPool), release leaked ones (tabbyctl ipam check), or lift strictAffinity/maxBlocksPerHost',
      );
    case 'EUNKNOWNPOOL':
      return new CniError(CNI_ERR.INVALID_NETCONF, err.message);
    case 'ENOTINPOOL':
      return new CniError(CNI_ERR.INVALID_NETCONF, err.message, 'a requested address must lie in an IPPool');
    case 'EPOOLUSE':
      return new CniError(CNI_ERR.INVALID_NETCONF, err.message, "a pod's address must lie in an IPPool whose allowedUses include Workload");
    case 'EADDRINUSE':
    case 'ESTRICTAFFINITY':
      return new CniError(CNI_ERR.ADDRESS_IN_USE, err.message);
    case 'ERETRIES':
    case 'EUNAVAILABLE':
    case 'ECONFLICT':
      return new CniError(CNI_ERR.TRY_AGAIN_LATER, err.message);
    case 'EDATASTORECONFIG':
      return new CniError(CNI_ERR.INVALID_NETCONF, err.message);
    case 'EINVALIDADDRESS':
      return new CniError(CNI_ERR.INVALID_NETCONF, err.message);
    case 'EEXIST':
    case 'ENOTFOUND':
    case 'ECOMPACTED':
    case 'ECORRUPT':
      return new CniError(CNI_ERR.DATASTORE_ERROR, err.message);
    default:
      return new CniError(CNI_ERR.INTERNAL, err.message, err.stack?.split('\n').slice(1, 4).join(' ').trim() ?? '');
  }
}
