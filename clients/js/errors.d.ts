// Type declarations for errors.js (AuthstreamError and its codes), written by hand to
// match it; authstream.d.ts re-exports them (see README.md).

/** The codes the API writes into its problem+json answers. */
export type ApiErrorCode =
  | 'missing_token'
  | 'invalid_token'
  | 'token_expired'
  | 'token_revoked'
  | 'wrong_token_type'
  | 'invalid_credentials'
  | 'invalid_stream_token'
  | 'forbidden'
  | 'insufficient_scope'
  | 'not_found'
  | 'method_not_allowed'
  | 'email_taken'
  | 'generation_exists'
  | 'generation_finished'
  | 'precondition_failed'
  | 'precondition_required'
  | 'payload_too_large'
  | 'validation_failed'
  | 'rate_limited'
  | 'internal_error'
  | 'store_unavailable'
  | 'overloaded';

/** The codes this client makes itself. */
export type ClientErrorCode = 'network_error' | 'bad_response' | 'gave_up' | 'stream_closed';

/**
 * An `AuthstreamError`'s `code`: one of the known codes, `http_<status>` for an error
 * answer that was not problem+json, or a code a newer server added (any string).
 */
export type AuthstreamErrorCode = ApiErrorCode | ClientErrorCode | `http_${number}` | (string & {});

/** The third argument of `new AuthstreamError(...)`. */
export interface AuthstreamErrorOptions {
  /** The HTTP status; 0 (the default) when there was no HTTP answer. */
  status?: number | undefined;
  /** The bad fields of a `validation_failed` answer: field name to problem. */
  fields?: Record<string, string> | null | undefined;
  /** From a `Retry-After` header. */
  retryAfterMs?: number | null | undefined;
  cause?: unknown;
}

/** An error of the API (`code` from its problem+json body) or of the connection. */
export class AuthstreamError extends Error {
  constructor(code: AuthstreamErrorCode, message: string, more?: AuthstreamErrorOptions);
  name: 'AuthstreamError';
  /** Machine-readable: the API's `code`, or one of this client's (`network_error`, ...). */
  readonly code: AuthstreamErrorCode;
  /** The HTTP status; 0 when there was no HTTP answer. */
  readonly status: number;
  /** The bad fields of a `validation_failed` answer, else null. */
  readonly fields: Record<string, string> | null;
  /** From a `Retry-After` header (429, 503), else null. */
  readonly retryAfterMs: number | null;
  /** What led to it, where something did (for `gave_up`: the last failure). */
  cause?: unknown;
  /** `status === 401`: revoked, expired, signed out. Sign in again. */
  get isAuthError(): boolean;
}
