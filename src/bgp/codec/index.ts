// Public surface of the BGP wire codec (pure; Buffer <-> typed messages). See types.ts for the model.
export * from './types.js';
export { Framer } from './framer.js';
export {
  decodeMessage,
  encodeMessage,
  encodeUpdate,
  encodeNotification,
  encodeKeepalive,
  encodeRouteRefresh,
  notificationFor,
  maxMessageLen,
  decodeHeader,
} from './message.js';
export { decodeOpen, encodeOpen, encodeCapability } from './open.js';
export { decodeAttributes, encodeAttributes, ATTR } from './attrs.js';
export {
  emptyPrefixList,
  prefixKey,
  prefixKey4,
  prefixToString,
  prefixListToStrings,
  prefixListFromStrings,
  concatPrefixLists,
  decodePrefixes,
  encodePrefixes,
  prefixWireSize,
  ipv4ToString,
} from './prefix.js';
export { Writer } from './writer.js';
export { REGISTRY, notificationText, attributeName, capabilityName, messageTypeName } from './registry.js';
