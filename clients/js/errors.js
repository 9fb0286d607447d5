// authstream client: the one error type, and how an HTTP answer or a failed request
// becomes one. Part of the module authstream.js re-exports (see README.md).

/** An error of the API (`code` from its problem+json body) or of the connection. */
export class AuthstreamError extends Error {
  /**
   * @param {string} code    machine-readable: the API's `code` (`token_revoked`, `not_found`,
   *                         ...), or `network_error`, `bad_response`, `gave_up`
   * @param {string} message human-readable
   * @param {{status?: number, fields?: object, retryAfterMs?: number, cause?: unknown}} [more]
   */
  constructor(code, message, more = {}) {
    super(message, more.cause === undefined ? undefined : { cause: more.cause });
    this.name = 'AuthstreamError';
    this.code = code;
    this.status = more.status ?? 0;
    this.fields = more.fields ?? null;
    this.retryAfterMs = more.retryAfterMs ?? null;
  }

  /** The credentials are no good any more (revoked, expired, signed out): sign in again. */
  get isAuthError() {
    return this.status === 401;
  }
}

/** Reads an error answer (problem+json when the API wrote it) into an AuthstreamError. */
export async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON: a proxy's page, or nothing.
  }
  const retryAfter = Number(response.headers.get('Retry-After'));
  return new AuthstreamError(
    body?.code ?? `http_${response.status}`,
    body?.detail ?? body?.title ?? `HTTP ${response.status}`,
    {
      status: response.status,
      fields: body?.fields ?? null,
      retryAfterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : null,
    },
  );
}

/** A request that got no answer at all (`fetch` threw). */
export function networkError(cause) {
  return new AuthstreamError('network_error', 'the server could not be reached', { cause });
}
