// Unit tests of GenerationStream with a scripted fetch and EventSource: `node --test test/`.
// The real thing runs in headless Chromium in the workspace's browser tests.
import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';

import { GenerationStream, backoffDelay } from '../authstream.js';
import { json } from './responses.js';

/** An EventSource whose server side the test plays. */
class FakeEventSource {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSED = 2;
  static all = [];

  constructor(url, init) {
    this.url = url;
    this.init = init;
    this.readyState = FakeEventSource.CONNECTING;
    this.lastEventId = '';
    FakeEventSource.all.push(this);
  }

  close() {
    this.readyState = FakeEventSource.CLOSED;
  }

  /** The server sends one event (as the browser would dispatch it). */
  send(data, id) {
    this.readyState = FakeEventSource.OPEN;
    if (id) this.lastEventId = id;
    this.onmessage?.({ data: typeof data === 'string' ? data : JSON.stringify(data), lastEventId: this.lastEventId });
  }

  /** The connection dropped: the browser will reconnect by itself. */
  drop() {
    this.readyState = FakeEventSource.CONNECTING;
    this.onerror?.({});
  }

  /** The browser gave up (an HTTP error on (re)connect). */
  refuse() {
    this.readyState = FakeEventSource.CLOSED;
    this.onerror?.({});
  }

  token() {
    return new URL(this.url, 'http://x').searchParams.get('token');
  }
}

const latest = () => FakeEventSource.all.at(-1);
const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check, what, ms = 1000) {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await tick(1);
  }
}

/** A token endpoint handing out distinct tokens; `answers` overrides the first calls. */
function tokenServer(answers = []) {
  const calls = [];
  let n = 0;
  const fetch = async (url, init) => {
    calls.push({ url, init });
    const scripted = answers.shift();
    if (scripted) return typeof scripted === 'function' ? scripted() : scripted;
    n += 1;
    return json(200, {
      sse_token: `stream-token-${n}`,
      expires_in: 60,
      stream_url: '/generations/generate/g-1/stream',
      generation_id: 'g-1',
    });
  };
  return { fetch, calls };
}

const progress = (p, status = 'processing') => ({
  event: 'progress',
  generation_id: 'g-1',
  status,
  stage: 'schema_extraction',
  progress: p,
  message: `at ${p}`,
  timestamp: 1,
});

function follow(fetch, more = {}) {
  const seen = { progress: [], complete: [], errors: [], states: [], resets: 0 };
  const tokens = [];
  const stream = new GenerationStream({
    generationId: 'g-1',
    getAccessToken: ({ forceRefresh }) => {
      tokens.push(forceRefresh);
      return 'the.access.jwt';
    },
    fetch,
    EventSource: FakeEventSource,
    baseDelayMs: 1,
    maxDelayMs: 4,
    onProgress: (event, { id }) => seen.progress.push(id),
    onComplete: (event) => seen.complete.push(event.status),
    onError: (error) => seen.errors.push(error),
    onStatus: ({ state }) => seen.states.push(state),
    onReset: () => (seen.resets += 1),
    ...more,
  });
  return { stream, seen, tokens };
}

beforeEach(() => {
  FakeEventSource.all = [];
});

describe('GenerationStream', () => {
  test('asks for a stream token with the Bearer token and puts only the stream token in the URL', async () => {
    const server = tokenServer();
    const { stream, seen } = follow(server.fetch);
    await stream.start();
    assert.equal(server.calls.length, 1);
    const [{ url, init }] = server.calls;
    assert.equal(url, '/generations/generate/g-1/stream-token');
    assert.equal(init.method, 'POST');
    assert.equal(init.headers.Authorization, 'Bearer the.access.jwt');
    assert.equal(latest().url, '/generations/generate/g-1/stream?token=stream-token-1');
    assert.ok(!latest().url.includes('jwt'));

    latest().send({ event: 'connected', generation_id: 'g-1' });
    assert.equal(stream.state, 'open');
    latest().send(progress(0.5), '10-0');
    latest().send(progress(1, 'completed'), '11-0');
    assert.deepEqual(seen.progress, ['10-0', '11-0']);
    assert.deepEqual(seen.complete, ['completed']);
    assert.equal(stream.state, 'completed');
    // Closed at once, so the browser does not reconnect just to hear 204.
    assert.equal(latest().readyState, FakeEventSource.CLOSED);
    assert.deepEqual(seen.errors, []);
  });

  test('a browser reconnect (cookie + Last-Event-ID) delivers nothing twice', async () => {
    const server = tokenServer();
    const { stream, seen } = follow(server.fetch);
    await stream.start();
    const source = latest();
    source.send({ event: 'connected' });
    source.send(progress(0.1), '10-0');
    source.send(progress(0.2), '10-1');
    source.drop();
    assert.equal(stream.state, 'reconnecting');
    // Same EventSource, reconnected by the browser; a replayed event is dropped.
    source.send({ event: 'connected' });
    source.send(progress(0.2), '10-1');
    source.send(progress(0.3), '12-0');
    assert.deepEqual(seen.progress, ['10-0', '10-1', '12-0']);
    assert.equal(stream.stats.duplicates, 1);
    assert.equal(stream.stats.browserReconnects, 1);
    assert.equal(FakeEventSource.all.length, 1, 'no new connection, no new token');
    assert.equal(server.calls.length, 1);
  });

  test('when the browser gives up, a FRESH token and last_event_id; a used token is never sent again', async () => {
    const server = tokenServer();
    const { stream, seen } = follow(server.fetch);
    await stream.start();
    latest().send({ event: 'connected' });
    latest().send(progress(0.1), '10-0');
    latest().send(progress(0.2), '10-5');
    latest().refuse(); // e.g. the as_resume cookie was used by another tab: 401
    await until(() => FakeEventSource.all.length === 2, 'a second connection');
    assert.equal(FakeEventSource.all[0].readyState, FakeEventSource.CLOSED);
    const url = new URL(latest().url, 'http://x');
    assert.equal(url.searchParams.get('token'), 'stream-token-2');
    assert.equal(url.searchParams.get('last_event_id'), '10-5');
    latest().send({ event: 'connected' });
    latest().send(progress(0.3), '11-0');
    latest().send(progress(1, 'completed'), '12-0');
    assert.deepEqual(seen.progress, ['10-0', '10-5', '11-0', '12-0']);

    const used = FakeEventSource.all.map((s) => s.token());
    assert.equal(new Set(used).size, used.length, `tokens reused: ${used}`);
    assert.equal(stream.state, 'completed');
  });

  test('a connection that fails before opening counts as an attempt; then it gives up', async () => {
    const server = tokenServer();
    const { stream, seen } = follow(server.fetch, { maxAttempts: 3 });
    await stream.start();
    for (let i = 1; i <= 3; i += 1) {
      await until(() => FakeEventSource.all.length === i, `connection ${i}`);
      latest().refuse();
    }
    await until(() => seen.errors.length === 1, 'giving up');
    assert.equal(seen.errors[0].code, 'gave_up');
    assert.equal(FakeEventSource.all.length, 3);
    assert.equal(stream.state, 'error');
  });

  test('a token endpoint that keeps failing is asked maxAttempts times, with backoff', async () => {
    const failing = () => json(503, { code: 'store_unavailable', status: 503, detail: 'down' });
    const server = tokenServer(Array.from({ length: 10 }, () => failing));
    const { stream, seen } = follow(server.fetch, { maxAttempts: 4 });
    await stream.start();
    await until(() => seen.errors.length === 1, 'giving up');
    assert.equal(server.calls.length, 4);
    assert.equal(seen.errors[0].code, 'gave_up');
    assert.equal(seen.errors[0].cause.code, 'store_unavailable');
    assert.equal(FakeEventSource.all.length, 0);
    assert.ok(seen.states.filter((s) => s === 'reconnecting').length >= 3);
  });

  test('an expired access token is refreshed once; a revoked session ends the stream at once', async () => {
    const expired = json(401, { code: 'token_expired', status: 401, detail: 'expired' });
    const server = tokenServer([expired]);
    const { stream, tokens } = follow(server.fetch);
    await stream.start();
    assert.deepEqual(tokens, [false, true]);
    assert.equal(FakeEventSource.all.length, 1);

    const revoked = () => json(401, { code: 'token_revoked', status: 401, detail: 'revoked' });
    const server2 = tokenServer([revoked, revoked]);
    const second = follow(server2.fetch);
    await second.stream.start();
    assert.equal(server2.calls.length, 2, 'once, and once more after a refresh');
    assert.equal(second.seen.errors.length, 1);
    assert.equal(second.seen.errors[0].code, 'token_revoked');
    assert.ok(second.seen.errors[0].isAuthError);
    assert.equal(second.stream.state, 'error');
    await tick(20);
    assert.equal(server2.calls.length, 2, 'no retry after a refusal no retry can fix');
  });

  test('403 and 404 are final', async () => {
    for (const [status, code] of [[403, 'forbidden'], [404, 'not_found']]) {
      const server = tokenServer([json(status, { code, status, detail: code })]);
      const { stream, seen } = follow(server.fetch);
      await stream.start();
      assert.equal(seen.errors[0]?.code, code);
      await tick(10);
      assert.equal(server.calls.length, 1);
      assert.equal(stream.state, 'error');
    }
  });

  test('a reset forgets the position so the kept history is delivered', async () => {
    const server = tokenServer();
    const { stream, seen } = follow(server.fetch);
    await stream.start();
    latest().send({ event: 'connected' });
    latest().send(progress(0.1), '50-0');
    latest().drop();
    latest().send({ event: 'connected' });
    latest().send({ event: 'reset', generation_id: 'g-1' });
    latest().send(progress(0.2), '40-0'); // e.g. a store that started over
    assert.equal(seen.resets, 1);
    assert.deepEqual(seen.progress, ['50-0', '40-0']);
  });

  test('stop() closes the stream and silences every callback', async () => {
    const server = tokenServer();
    const { stream, seen } = follow(server.fetch);
    await stream.start();
    const source = latest();
    source.send({ event: 'connected' });
    stream.stop();
    assert.equal(source.readyState, FakeEventSource.CLOSED);
    assert.equal(stream.state, 'stopped');
    source.send(progress(0.5), '1-0');
    source.refuse();
    await tick(20);
    assert.deepEqual(seen.progress, []);
    assert.equal(FakeEventSource.all.length, 1);
  });

  test('stop() from inside onProgress is final, even on the terminal event', async () => {
    const server = tokenServer();
    let stream;
    const completed = [];
    ({ stream } = follow(server.fetch, {
      onProgress: () => stream.stop(),
      onComplete: (event) => completed.push(event),
    }));
    await stream.start();
    latest().send({ event: 'connected' });
    latest().send(progress(1, 'completed'), '1-0');
    assert.equal(stream.state, 'stopped');
    assert.deepEqual(completed, []);
  });

  test('stop() during the token request opens nothing', async () => {
    let release;
    const gate = new Promise((resolve) => (release = resolve));
    const server = tokenServer([async () => {
      await gate;
      return json(200, { sse_token: 't', stream_url: '/s', generation_id: 'g-1', expires_in: 60 });
    }]);
    const { stream } = follow(server.fetch);
    const started = stream.start();
    await tick(1);
    stream.stop();
    release();
    await started;
    await tick(5);
    assert.equal(FakeEventSource.all.length, 0);
  });

  test('the browser reconnecting forever is bounded too', async () => {
    const server = tokenServer();
    const { stream } = follow(server.fetch, { maxAttempts: 2 });
    await stream.start();
    const source = latest();
    source.send({ event: 'connected' });
    source.drop();
    source.drop();
    assert.equal(FakeEventSource.all.length, 1);
    source.drop(); // a third error in a row: the client takes over with a fresh token
    assert.equal(source.readyState, FakeEventSource.CLOSED);
    await until(() => FakeEventSource.all.length === 2, 'a fresh connection');
    assert.equal(latest().token(), 'stream-token-2');
  });

  test('a stream on another origin is opened with credentials (for the as_resume cookie)', async () => {
    globalThis.location = new URL('http://app.example/page');
    try {
      const server = tokenServer([json(200, {
        sse_token: 't1', expires_in: 60, generation_id: 'g-1',
        stream_url: 'http://stream.example/generations/generate/g-1/stream',
      })]);
      const { stream } = follow(server.fetch, { baseUrl: 'http://auth.example/' });
      await stream.start();
      assert.equal(server.calls[0].url, 'http://auth.example/generations/generate/g-1/stream-token');
      assert.equal(latest().url, 'http://stream.example/generations/generate/g-1/stream?token=t1');
      assert.deepEqual(latest().init, { withCredentials: true });
    } finally {
      delete globalThis.location;
    }
  });

  test('backoff grows, is jittered and capped', () => {
    assert.equal(backoffDelay(1, 500, 10_000, () => 0), 250);
    assert.equal(backoffDelay(1, 500, 10_000, () => 1), 500);
    assert.equal(backoffDelay(3, 500, 10_000, () => 1), 2000);
    assert.equal(backoffDelay(10, 500, 10_000, () => 1), 10_000);
    assert.equal(backoffDelay(10, 500, 10_000, () => 0), 5000);
  });
});
