// authstream client: GenerationStream, one generation's progress events over
// Server-Sent Events, and the backoff between its attempts. Part of the module
// authstream.js re-exports (see README.md).

import { AuthstreamError, errorFrom, networkError } from './errors.js';

const TERMINAL = new Set(['completed', 'failed']);

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
