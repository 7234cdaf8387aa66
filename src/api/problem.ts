// RFC 9457 problem details as plexd API v1 uses them: `application/problem+json` with a
// machine-readable `code`. The codes the agent acts on (plexd-api.md) are listed with their status.

import { FieldReader, type FieldError } from './fields.js';

/** Media type of error bodies. */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** Every error code our control plane sends, with its HTTP status. */
export const ERROR_CODES = {
  /** Body is not JSON, or a field is missing/invalid (see `errors`). */
  invalid_json: 400,
  validation_failed: 400,
  /** client_now more than 60 s off the server clock. */
  clock_skew: 400,
  /** No, malformed or unknown bearer credential: re-register. */
  unauthorized: 401,
  /** Bootstrap token unknown (or wrong project). */
  token_invalid: 401,
  token_expired: 401,
  token_revoked: 401,
  /** Bootstrap token already used by another registration. */
  token_consumed: 409,
  /** A nonce reused for a different registration. */
  nonce_collision: 409,
  /** The WireGuard public key (registration or rotation) is another node's. */
  public_key_in_use: 409,
  /** Authenticated, but the path names another node. */
  forbidden: 403,
  not_found: 404,
  node_not_found: 404,
  project_not_found: 404,
  execution_not_found: 404,
  /** No such secret (or version) for this node or its project. */
  secret_not_found: 404,
  /** No such state report for this node. */
  report_not_found: 404,
  /** A report key outside the grammar, or a value over 4096 bytes. */
  invalid_report: 400,
  method_not_allowed: 405,
  /** Execution status transition not allowed from the current status. */
  invalid_transition: 409,
  /** Execution callbacks (upstream): an illegal advance, a callback after a terminal status,
   *  inline output over 16 KiB. */
  invalid_state_transition: 409,
  execution_already_terminal: 409,
  inline_output_too_large: 413,
  payload_too_large: 413,
  unsupported_media_type: 415,
  /** No free mesh IP in domain_mesh_cidr. */
  mesh_exhausted: 409,
  rate_limited: 429,
  internal: 500,
  /** SSE not available: agents switch to pull_only. */
  signed_event_bus_not_provisioned: 501,
  unavailable: 503,
  /** Telemetry ingest (issue 18, upstream's codes): a line or element that does not parse, or no records. */
  ingest_batch_malformed: 400,
  /** X-Plexsphere-Sent-At missing or not RFC 3339. */
  ingest_sent_at_invalid: 400,
  /** Content-Encoding neither gzip nor identity. */
  ingest_encoding_unsupported: 415,
  /** Telemetry ingest switched off: agents drop the batch and pause that kind. */
  observability_ingest_not_provisioned: 501,
} as const;
/** One of the keys of ERROR_CODES. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** A problem+json body. */
export interface Problem {
  /** URI reference naming the problem type; ours are "urn:plexd:problem:<code>". */
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly code: string;
  readonly detail?: string;
  readonly correlation_id?: string;
  /** Field problems of a validation_failed. */
  readonly errors?: readonly FieldError[];
}

/** Builds a problem body for `code`; the status comes from ERROR_CODES. */
export function problem(code: ErrorCode, detail?: string, extra?: { correlation_id?: string; errors?: readonly FieldError[] }): Problem {
  const title = code.replaceAll('_', ' ');
  return {
    type: `urn:plexd:problem:${code}`,
    title: title.charAt(0).toUpperCase() + title.slice(1),
    status: ERROR_CODES[code],
    code,
    ...(detail === undefined ? {} : { detail }),
    ...(extra?.correlation_id === undefined ? {} : { correlation_id: extra.correlation_id }),
    ...(extra?.errors === undefined ? {} : { errors: extra.errors }),
  };
}

/** Reads a problem body leniently (any server): missing code -> "unknown", missing status ->
 *  `httpStatus`. Never fails; a non-object body gives a bare problem. */
export function parseProblem(body: unknown, httpStatus: number): Problem {
  const r = new FieldReader(typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {});
  const status = r.raw('status');
  const detail = r.optString('detail', 4096);
  return {
    type: r.optString('type', 1024) ?? 'about:blank',
    title: r.optString('title', 1024) ?? '',
    status: typeof status === 'number' && Number.isInteger(status) ? status : httpStatus,
    code: r.optString('code', 128) ?? 'unknown',
    ...(detail === undefined ? {} : { detail }),
  };
}
