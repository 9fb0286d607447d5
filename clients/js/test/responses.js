// Shared by the unit tests: a fetch answer as the API writes it.

/** A JSON answer (problem+json for an error status), as the API writes it. */
export function json(status, body, headers = {}) {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { 'Content-Type': status >= 400 ? 'application/problem+json' : 'application/json', ...headers },
  });
}
