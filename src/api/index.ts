// plexd control-plane API v1 wire contract shared by the control plane (src/control-plane) and the
// agent's client (src/control): body types and lenient parsers, the signed event envelope, the
// bearer credential and problem+json. No I/O.

export * from './types.js';
export * from './parse.js';
export * from './events.js';
export * from './signing.js';
export * from './credential.js';
export * from './problem.js';
export {
  type FieldError,
  type ParseResult,
  parseRfc3339,
  formatRfc3339,
  decodeBase64,
  encodeBase64,
  decodeBase64Url,
  encodeBase64Url,
  parseEndpoint,
  isUuid,
} from './fields.js';
