// Unit tests of AuthClient with a scripted fetch: `node --test test/`.
// The real thing runs in headless Chromium in the workspace's browser tests.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { AuthClient, AuthstreamError } from '../authstream.js';
import { json } from './responses.js';

describe('AuthClient', () => {
  const pair = (n) => ({
    access_token: `access-${n}`,
    refresh_token: `refresh-${n}`,
    token_type: 'Bearer',
    expires_in: 900,
    refresh_expires_in: 604800,
    session_id: 'sess-1',
  });

  function api(routes) {
    const calls = [];
    const fetch = async (url, init) => {
      const body = init.body ? JSON.parse(init.body) : undefined;
      calls.push({ url, method: init.method, auth: init.headers.Authorization, body });
      const handler = routes[`${init.method} ${url}`];
      if (!handler) return json(404, { code: 'not_found', status: 404 });
      return handler(body, init);
    };
    return { fetch, calls };
  }

  test('keeps the pair in memory, rotates it on refresh, shares one refresh between callers', async () => {
    let n = 0;
    let release;
    const gate = new Promise((resolve) => (release = resolve));
    const { fetch, calls } = api({
      'POST /auth/login': () => json(200, pair(++n)),
      'POST /auth/refresh': async () => {
        await gate;
        return json(200, pair(++n));
      },
    });
    const changes = [];
    const client = new AuthClient({ fetch, onChange: (v) => changes.push(v) });
    await client.login(' Ann@Example.com ', 'password1');
    assert.equal(client.signedIn, true);
    assert.equal(client.email, 'ann@example.com');
    assert.equal(client.sessionId, 'sess-1');
    assert.equal(await client.accessToken(), 'access-1');

    const both = Promise.all([client.accessToken({ forceRefresh: true }), client.accessToken({ forceRefresh: true })]);
    release();
    assert.deepEqual(await both, ['access-2', 'access-2']);
    const refreshes = calls.filter((c) => c.url === '/auth/refresh');
    assert.equal(refreshes.length, 1);
    assert.deepEqual(refreshes[0].body, { refresh_token: 'refresh-1' });
    assert.deepEqual(changes, [true]);
  });

  test('an expired access token is refreshed and the request repeated once', async () => {
    let n = 0;
    const { fetch, calls } = api({
      'POST /auth/login': () => json(200, pair(++n)),
      'POST /auth/refresh': () => json(200, pair(++n)),
      'GET /auth/sessions': (_, init) =>
        init.headers.Authorization === 'Bearer access-1'
          ? json(401, { code: 'token_expired', status: 401 })
          : json(200, [{ session_id: 'sess-1', current: true }]),
    });
    const client = new AuthClient({ fetch });
    await client.login('a@example.com', 'password1');
    const sessions = await client.sessions();
    assert.equal(sessions.length, 1);
    assert.deepEqual(
      calls.map((c) => `${c.method} ${c.url}`),
      ['POST /auth/login', 'GET /auth/sessions', 'POST /auth/refresh', 'GET /auth/sessions'],
    );
  });

  test('a revoked session signs out here; a refused refresh too', async () => {
    const { fetch } = api({
      'POST /auth/login': () => json(200, pair(1)),
      'GET /auth/me': () => json(401, { code: 'token_revoked', status: 401, detail: 'revoked' }),
      'POST /auth/refresh': () => json(401, { code: 'token_revoked', status: 401, detail: 'revoked' }),
    });
    const changes = [];
    const client = new AuthClient({ fetch, onChange: (v) => changes.push(v) });
    await client.login('a@example.com', 'password1');
    await assert.rejects(client.me(), (e) => e instanceof AuthstreamError && e.code === 'token_revoked');
    assert.equal(client.signedIn, false);
    assert.deepEqual(changes, [true, false]);

    await client.login('a@example.com', 'password1');
    await assert.rejects(client.accessToken({ forceRefresh: true }), (e) => e.isAuthError);
    assert.equal(client.signedIn, false);
    await assert.rejects(client.accessToken(), (e) => e.code === 'missing_token');
  });

  test('logout and logout-all forget the tokens even when the server cannot be reached', async () => {
    const { fetch, calls } = api({
      'POST /auth/login': () => json(200, pair(1)),
      'POST /auth/logout-all': () => {
        throw new TypeError('offline');
      },
    });
    const client = new AuthClient({ fetch });
    await client.login('a@example.com', 'password1');
    await assert.rejects(client.logoutAll(), (e) => e.code === 'network_error');
    assert.equal(client.signedIn, false);
    assert.equal(calls.at(-1).auth, 'Bearer access-1');
  });

  test('problem+json errors keep their code, status and fields', async () => {
    const { fetch } = api({
      'POST /auth/register': () =>
        json(422, { code: 'validation_failed', status: 422, detail: 'bad', fields: { password: 'too short' } }),
    });
    const client = new AuthClient({ fetch });
    await assert.rejects(client.register('a@example.com', 'x'), (e) => {
      assert.equal(e.code, 'validation_failed');
      assert.equal(e.status, 422);
      assert.deepEqual(e.fields, { password: 'too short' });
      return true;
    });
  });
});
