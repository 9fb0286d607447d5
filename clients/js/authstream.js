// authstream browser client: a dependency-free ES module.
//
//   GenerationStream  follows one generation's progress events over Server-Sent Events
//                     (the secure successor of the old GenerationMonitor).
//   AuthClient        signs in, keeps the token pair in memory, refreshes with rotation,
//                     signs out; used by the demo page.
//   AuthstreamError   every error either of them reports.
//
// See README.md next to this file.

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

const TERMINAL = new Set(['completed', 'failed']);

/** Reads an error answer (problem+json when the API wrote it) into an AuthstreamError. */
async function errorFrom(response) {
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

function networkError(cause) {
  return new AuthstreamError('network_error', 'the server could not be reached', { cause });
}

/** `ms-seq` event ids (Redis stream ids) compare as pairs of numbers. */
function parseEventId(id) {
  const match = /^(\d+)-(\d+)$/.exec(id ?? '');
  return match ? [Number(match[1]), Number(match[2])] : null;
}

function isAfter(a, b) {
  return a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);
}

/** Exponential backoff with jitter: half fixed, half random, capped. */
export function backoffDelay(attempt, baseMs, maxMs, random = Math.random) {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/**
 * Follows one generation's progress events.
 *
 * - Asks the auth service for a single-use stream token with the Bearer access token
 *   (the JWT never goes into a URL), then opens an `EventSource` on the stream.
 * - A dropped connection is first left to the browser: it reconnects to the same URL by
 *   itself, and the stream service resumes it with the `as_resume` cookie and the
 *   `Last-Event-ID` the browser sends (the token in that URL is already used; the server
 *   ignores it for the cookie).
 * - When that cannot work (the `EventSource` gives up: the cookie is gone, expired or was
 *   used by another tab, or the server refused), this client closes it, fetches a FRESH
 *   token and reopens with `last_event_id`: a used token is never sent again by this client.
 * - Every event is delivered once, in order: ids already delivered are dropped.
 * - After `maxAttempts` consecutive failures it gives up, waiting longer before each
 *   new attempt (exponential backoff with jitter); an open connection resets the count.
 * - It stops at a `completed` or `failed` event, on `stop()`, or on an error that no
 *   retry can fix (signed out, not allowed, no such generation).
 */
export class GenerationStream {
  /**
   * @param {object} options
   * @param {string} options.generationId
   * @param {(opts: {forceRefresh: boolean}) => (string|Promise<string>)} options.getAccessToken
   *   The current access token; with `forceRefresh: true` (after a 401) a refreshed one.
   * @param {string} [options.baseUrl]  where the auth service is ('' = this origin)
   * @param {(event: object, meta: {id: string}) => void} [options.onProgress]  each progress event, once
   * @param {(event: object) => void} [options.onComplete]  the `completed` or `failed` event
   * @param {(error: AuthstreamError) => void} [options.onError]  the stream ended without completing
   * @param {(status: {state: string, attempt: number, delayMs?: number, error?: AuthstreamError}) => void} [options.onStatus]
   *   `connecting`, `open`, `reconnecting`, `completed`, `failed`, `stopped`, `error`
   * @param {(info: {generationId: string}) => void} [options.onReset]
   *   the server's history no longer reaches back to the last event: events in between are lost
   * @param {number} [options.maxAttempts=5]  consecutive failures (a token request that fails,
   *   a connection the browser gives up on) before giving up; a connection that opens resets
   *   the count. The browser's own reconnects are bounded by the same number.
   * @param {number} [options.baseDelayMs=500]
   * @param {number} [options.maxDelayMs=10000]
   * @param {typeof fetch} [options.fetch]
   * @param {typeof EventSource} [options.EventSource]
   */
  constructor({
    baseUrl = '',
    generationId,
    getAccessToken,
    onProgress = () => {},
    onComplete = () => {},
    onError = () => {},
    onStatus = () => {},
    onReset = () => {},
    maxAttempts = 5,
    baseDelayMs = 500,
    maxDelayMs = 10_000,
    fetch = globalThis.fetch?.bind(globalThis),
    EventSource = globalThis.EventSource,
    random = Math.random,
  } = {}) {
    if (!generationId) throw new TypeError('generationId is required');
    if (typeof getAccessToken !== 'function') throw new TypeError('getAccessToken must be a function');
    if (typeof fetch !== 'function') throw new TypeError('no fetch available');
    if (typeof EventSource !== 'function') throw new TypeError('no EventSource available');
    this.generationId = String(generationId);
    this._baseUrl = String(baseUrl).replace(/\/+$/, '');
    this._getAccessToken = getAccessToken;
    this._on = { onProgress, onComplete, onError, onStatus, onReset };
    this._maxAttempts = Math.max(1, maxAttempts);
    this._baseDelayMs = baseDelayMs;
    this._maxDelayMs = maxDelayMs;
    this._fetch = fetch;
    this._EventSource = EventSource;
    this._random = random;

    this._state = 'idle';
    this._source = null;
    this._timer = null;
    this._abort = null;
    this._attempt = 0; // consecutive failed attempts with a fresh token
    this._browserFailures = 0; // consecutive errors left to the browser's own reconnect
    this._lastId = null; // the last delivered event id (string)
    this._lastKey = null; // ...as a comparable pair
    this._seen = new Set(); // ids delivered, for ids that do not parse as `ms-seq`
    this._run = 0; // bumped on every (re)open and on stop: stale callbacks check it
    /** Counters, for display and tests. */
    this.stats = { opens: 0, connected: 0, browserReconnects: 0, tokenFetches: 0, delivered: 0, duplicates: 0 };
  }

  /** `idle`, `connecting`, `open`, `reconnecting`, `completed`, `failed`, `stopped` or `error`. */
  get state() {
    return this._state;
  }

  /** The id of the last event delivered, or null. */
  get lastEventId() {
    return this._lastId;
  }

  /** Starts following; call once. Resolves when the first connection attempt is under way. */
  async start() {
    if (this._state !== 'idle') throw new Error(`already ${this._state}`);
    await this._open();
  }

  /** Closes the stream and cancels any retry. No callback runs after this. */
  stop() {
    if (this._done()) return;
    this._teardown();
    this._setState('stopped');
  }

  // -- internals -------------------------------------------------------------------

  _done() {
    return ['completed', 'failed', 'stopped', 'error'].includes(this._state);
  }

  _setState(state, extra = {}) {
    this._state = state;
    this._call('onStatus', { state, attempt: this._attempt, ...extra });
  }

  _call(name, ...args) {
    try {
      this._on[name](...args);
    } catch (error) {
      // An application callback's bug must not break the stream.
      console.error(`authstream: ${name} threw`, error);
    }
  }

  _teardown() {
    this._run += 1;
    if (this._source) {
      this._source.onopen = this._source.onmessage = this._source.onerror = null;
      this._source.close();
      this._source = null;
    }
    clearTimeout(this._timer);
    this._timer = null;
    this._abort?.abort();
    this._abort = null;
  }

  _fail(error) {
    this._teardown();
    this._setState('error', { error });
    this._call('onError', error);
  }

  /** One attempt: a fresh token, then a new EventSource. */
  async _open() {
    this._teardown();
    const run = this._run;
    this._setState(this.stats.opens === 0 ? 'connecting' : 'reconnecting');
    let grant;
    try {
      grant = await this._streamToken(run);
    } catch (error) {
      if (run !== this._run) return; // stopped meanwhile
      if (error instanceof AuthstreamError && !retryable(error)) {
        this._fail(error);
      } else {
        this._retry(error);
      }
      return;
    }
    if (run !== this._run) return;

    const url = this._streamUrl(grant);
    const crossOrigin = typeof location !== 'undefined' && new URL(url, location.href).origin !== location.origin;
    // Cross-origin, the as_resume cookie travels only with credentials.
    const source = new this._EventSource(url, crossOrigin ? { withCredentials: true } : undefined);
    this._source = source;
    this.stats.opens += 1;
    // Set per connection, so that the browser's own reconnects are told apart.
    let connectedOnce = false;

    source.onmessage = (message) => {
      if (run !== this._run) return;
      let data;
      try {
        data = JSON.parse(message.data);
      } catch {
        return; // not one of ours: ignore
      }
      switch (data?.event) {
        case 'connected':
          if (connectedOnce) this.stats.browserReconnects += 1;
          connectedOnce = true;
          this.stats.connected += 1;
          this._attempt = 0;
          this._browserFailures = 0;
          this._setState('open');
          break;
        case 'reset':
          // What follows is the whole kept history, which starts after our last event:
          // forget the position so nothing that follows is taken for a duplicate.
          this._lastId = null;
          this._lastKey = null;
          this._seen.clear();
          this._call('onReset', { generationId: this.generationId });
          break;
        case 'progress':
          this._deliver(message.lastEventId, data);
          break;
        default:
          break; // a kind of event this client does not know yet
      }
    };

    source.onerror = () => {
      if (run !== this._run) return;
      if (source.readyState === this._EventSource.CLOSED) {
        // The browser gave up on this URL (an HTTP error such as 401, or a 204): never
        // reuse its token; mint a new one and resume from the last delivered event.
        this._retry(new AuthstreamError('stream_closed', 'the stream connection was refused or ended'));
        return;
      }
      // CONNECTING: the browser reconnects by itself (as_resume cookie + Last-Event-ID),
      // every `retry:` (3 s). It would do so forever: after maxAttempts, take over.
      this._browserFailures += 1;
      if (this._browserFailures > this._maxAttempts) {
        this._retry(new AuthstreamError('network_error', 'the stream connection keeps failing'));
        return;
      }
      this._setState('reconnecting', { via: 'browser', browserAttempt: this._browserFailures });
    };
  }

  _deliver(id, data) {
    if (id) {
      const key = parseEventId(id);
      if (key && this._lastKey ? !isAfter(key, this._lastKey) : this._seen.has(id)) {
        this.stats.duplicates += 1;
        return;
      }
      this._lastId = id;
      this._lastKey = key;
      if (!key) this._seen.add(id);
    }
    this.stats.delivered += 1;
    this._call('onProgress', data, { id });
    if (this._done()) return; // the application stopped it from onProgress
    if (TERMINAL.has(data.status)) {
      // The server ends the stream after this; close first so the browser does not
      // reconnect just to be told 204.
      this._teardown();
      this._setState(data.status);
      this._call('onComplete', data);
    }
  }

  /** Schedules the next attempt with backoff, or gives up. */
  _retry(cause) {
    this._teardown();
    this._attempt += 1;
    if (this._attempt >= this._maxAttempts) {
      this._fail(
        new AuthstreamError('gave_up', `gave up after ${this._maxAttempts} failed attempts`, {
          cause,
          status: cause?.status,
        }),
      );
      return;
    }
    const delayMs = Math.max(
      backoffDelay(this._attempt, this._baseDelayMs, this._maxDelayMs, this._random),
      Math.min(cause?.retryAfterMs ?? 0, this._maxDelayMs * 6),
    );
    const run = this._run;
    this._setState('reconnecting', { delayMs, error: cause });
    this._timer = setTimeout(() => {
      if (run === this._run) this._open();
    }, delayMs);
  }

  async _streamToken(run) {
    const url = `${this._baseUrl}/generations/generate/${encodeURIComponent(this.generationId)}/stream-token`;
    for (const forceRefresh of [false, true]) {
      const accessToken = await this._getAccessToken({ forceRefresh });
      if (run !== this._run) throw new AuthstreamError('stopped', 'stopped');
      if (!accessToken) throw new AuthstreamError('missing_token', 'not signed in', { status: 401 });
      this._abort = new AbortController();
      let response;
      try {
        this.stats.tokenFetches += 1;
        response = await this._fetch(url, {
          method: 'POST',
          headers: { Authorization: `Bearer ${accessToken}`, Accept: 'application/json' },
          cache: 'no-store',
          credentials: 'same-origin',
          signal: this._abort.signal,
        });
      } catch (cause) {
        throw networkError(cause);
      }
      if (response.ok) {
        const body = await response.json().catch(() => null);
        if (!body?.sse_token || !body?.stream_url) {
          throw new AuthstreamError('bad_response', 'the stream-token answer is incomplete', {
            status: response.status,
          });
        }
        return body;
      }
      const error = await errorFrom(response);
      // An expired access token: refresh once, then ask again.
      if (response.status === 401 && !forceRefresh) continue;
      throw error;
    }
    throw new AuthstreamError('invalid_token', 'not signed in', { status: 401 });
  }

  _streamUrl({ sse_token: token, stream_url: streamUrl }) {
    // STREAM_PUBLIC_URL may be empty (a path on the auth service's origin) or absolute.
    const base = /^https?:\/\//i.test(streamUrl) ? streamUrl : `${this._baseUrl}${streamUrl}`;
    const params = new URLSearchParams({ token });
    if (this._lastId) params.set('last_event_id', this._lastId);
    return `${base}${base.includes('?') ? '&' : '?'}${params}`;
  }
}

/** Worth another try: the network, the server being busy or down. */
function retryable(error) {
  return (
    error.code === 'network_error' ||
    error.code === 'bad_response' ||
    error.status === 408 ||
    error.status === 429 ||
    error.status >= 500
  );
}

/**
 * Sign-in state for a single-page app, on the auth service's JSON API.
 *
 * The access and refresh tokens live only in this object's memory: not in
 * localStorage or sessionStorage, where any script injected into the page could read
 * them and keep them. The price is that a reload or a new tab signs in again. Refreshes
 * rotate the pair; concurrent callers share one refresh.
 */
export class AuthClient {
  /**
   * @param {object} [options]
   * @param {string} [options.baseUrl]  where the auth service is ('' = this origin)
   * @param {typeof fetch} [options.fetch]
   * @param {(signedIn: boolean) => void} [options.onChange]  signed in, or signed out (also when a refresh is refused)
   * @param {number} [options.refreshAheadMs=30000]  refresh an access token this long before it expires
   */
  constructor({ baseUrl = '', fetch = globalThis.fetch?.bind(globalThis), onChange = () => {}, refreshAheadMs = 30_000 } = {}) {
    this._baseUrl = String(baseUrl).replace(/\/+$/, '');
    this._fetch = fetch;
    this._onChange = onChange;
    this._refreshAheadMs = refreshAheadMs;
    this._tokens = null; // { access, refresh, accessExpiresAt, sessionId }
    this._refreshing = null;
    this.email = null;
  }

  get signedIn() {
    return this._tokens !== null;
  }

  /** This browser's session id (from the login answer), or null. */
  get sessionId() {
    return this._tokens?.sessionId ?? null;
  }

  async register(email, password) {
    return this._json('POST', '/auth/register', { body: { email, password }, auth: false });
  }

  async login(email, password) {
    const pair = await this._json('POST', '/auth/login', { body: { email, password }, auth: false });
    this._store(pair);
    this.email = String(email).trim().toLowerCase();
    this._onChange(true);
    return pair;
  }

  /**
   * The access token, refreshed first when `forceRefresh` or when it is about to
   * expire. Throws an AuthstreamError (status 401) when signed out.
   */
  async accessToken({ forceRefresh = false } = {}) {
    if (!this._tokens) throw new AuthstreamError('missing_token', 'not signed in', { status: 401 });
    if (forceRefresh || Date.now() >= this._tokens.accessExpiresAt - this._refreshAheadMs) {
      await this.refresh();
    }
    return this._tokens.access;
  }

  /** Rotates the token pair. One refresh at a time; a refused refresh signs out. */
  async refresh() {
    if (!this._tokens) throw new AuthstreamError('missing_token', 'not signed in', { status: 401 });
    this._refreshing ??= (async () => {
      const sent = this._tokens;
      try {
        const pair = await this._json('POST', '/auth/refresh', {
          body: { refresh_token: sent.refresh },
          auth: false,
        });
        // Signed out meanwhile: do not bring the session back.
        if (this._tokens === sent) this._store(pair);
      } catch (error) {
        if (error.isAuthError && this._tokens === sent) this._clear();
        throw error;
      } finally {
        this._refreshing = null;
      }
    })();
    return this._refreshing;
  }

  /** Ends this session (its refresh token and all its access tokens). */
  async logout() {
    try {
      await this.request('POST', '/auth/logout');
    } finally {
      this._clear();
    }
  }

  /** Ends every session of the user, on every device. */
  async logoutAll() {
    try {
      await this.request('POST', '/auth/logout-all');
    } finally {
      this._clear();
    }
  }

  async sessions() {
    return this.request('GET', '/auth/sessions');
  }

  /** Ends one session; ending this browser's own signs out here. */
  async deleteSession(sessionId) {
    await this.request('DELETE', `/auth/sessions/${encodeURIComponent(sessionId)}`);
    if (sessionId === this.sessionId) this._clear();
  }

  async me() {
    return this.request('GET', '/auth/me');
  }

  /**
   * An authenticated JSON request to the API: the JSON answer (null for 204), or an
   * AuthstreamError. An expired access token is refreshed once and the request repeated.
   */
  async request(method, path, body) {
    return this._json(method, path, { body, auth: true });
  }

  _store(pair) {
    this._tokens = {
      access: pair.access_token,
      refresh: pair.refresh_token,
      accessExpiresAt: Date.now() + Number(pair.expires_in ?? 0) * 1000,
      sessionId: pair.session_id ?? null,
    };
  }

  _clear() {
    const was = this._tokens !== null;
    this._tokens = null;
    this.email = null;
    if (was) this._onChange(false);
  }

  async _json(method, path, { body, auth }, retried = false) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (auth) headers.Authorization = `Bearer ${await this.accessToken()}`;
    let response;
    try {
      response = await this._fetch(`${this._baseUrl}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
        credentials: 'same-origin',
      });
    } catch (cause) {
      throw networkError(cause);
    }
    if (response.ok) {
      if (response.status === 204) return null;
      return response.json().catch(() => null);
    }
    const error = await errorFrom(response);
    if (auth && !retried && error.code === 'token_expired' && this._tokens) {
      await this.refresh();
      return this._json(method, path, { body, auth }, true);
    }
    if (auth && error.isAuthError && error.code !== 'token_expired') {
      // Revoked (signed out elsewhere, or everywhere): nothing in memory is any good.
      this._clear();
    }
    throw error;
  }
}
