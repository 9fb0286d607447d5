// authstream client: AuthClient, the sign-in state of a single-page app on the auth
// service's JSON API. Part of the module authstream.js re-exports (see README.md).

import { AuthstreamError, errorFrom, networkError } from './errors.js';

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
