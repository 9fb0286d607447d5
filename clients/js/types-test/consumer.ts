// A front end's use of authstream-client, type-checked in CI with `tsc --strict --noEmit`
// (never run). Every public API is used with the types it has; every line marked
// `@ts-expect-error` must NOT compile (tsc fails if one does), which shows the
// declarations are strict where they should be.

import {
  AuthClient,
  AuthstreamError,
  GenerationStream,
  backoffDelay,
  type AccessTokenSource,
  type ApiErrorCode,
  type AuthClientOptions,
  type AuthstreamErrorCode,
  type AuthstreamErrorOptions,
  type ClientErrorCode,
  type ConnectedEvent,
  type CreatedGeneration,
  type FinalStreamState,
  type GenerationProgressEvent,
  type GenerationStatus,
  type GenerationStreamEvent,
  type GenerationStreamOptions,
  type GenerationStreamStats,
  type HttpMethod,
  type Profile,
  type Registered,
  type ResetEvent,
  type Session,
  type StreamState,
  type StreamStatus,
  type TerminalProgressEvent,
  type TerminalStatus,
  type Tier,
  type TokenPair,
} from 'authstream-client';

/** `true` only when A and B are the same type. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function same<A, B>(_proof: Equal<A, B>): void {}

declare function show(...values: unknown[]): void;

// -- Statuses, states, events ------------------------------------------------------

same<GenerationStatus, 'pending' | 'processing' | 'completed' | 'failed'>(true);
same<TerminalStatus, 'completed' | 'failed'>(true);
same<StreamState, 'idle' | 'connecting' | 'open' | 'reconnecting' | 'completed' | 'failed' | 'stopped' | 'error'>(true);
same<FinalStreamState, 'completed' | 'failed' | 'stopped' | 'error'>(true);
same<StreamStatus['state'], Exclude<StreamState, 'idle'>>(true);
same<Tier, 'free' | 'paid'>(true);
same<HttpMethod, 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS'>(true);

// @ts-expect-error: not a status
const done: GenerationStatus = 'done';
// @ts-expect-error: `idle` is a state, not a generation status
const idle: GenerationStatus = 'idle';
// @ts-expect-error: not a state
const closed: StreamState = 'closed';

// A progress event: the known fields, optional ones absent when not sent, and the
// publisher's extra fields.
const minimal: GenerationProgressEvent = {
  event: 'progress',
  generation_id: 'g-1',
  status: 'pending',
  timestamp: 1_700_000_000_000,
};
const full: GenerationProgressEvent = {
  event: 'progress',
  generation_id: 'g-1',
  status: 'processing',
  stage: 'render',
  progress: 0.5,
  message: 'half way',
  timestamp: 5,
  current_file: 'a.rs', // extra publisher fields are allowed...
};
// ...and are `unknown` until checked.
same<typeof full.current_file, unknown>(true);
// @ts-expect-error: an extra field is not known to be a string
const file: string = full.current_file;
if (typeof full.current_file === 'string') show(full.current_file.toUpperCase());
same<GenerationProgressEvent['stage'], string | undefined>(true);
same<GenerationProgressEvent['progress'], number | undefined>(true);
same<GenerationProgressEvent['timestamp'], number>(true);
show(minimal, done, idle, closed, file);

const badStatus: GenerationProgressEvent = {
  event: 'progress',
  generation_id: 'g-1',
  // @ts-expect-error: `done` is no status
  status: 'done',
  timestamp: 1,
};
const badProgress: GenerationProgressEvent = {
  event: 'progress',
  generation_id: 'g-1',
  status: 'processing',
  // @ts-expect-error: progress is a number
  progress: '50%',
  timestamp: 1,
};
// @ts-expect-error: a progress event has a generation_id and a timestamp
const incomplete: GenerationProgressEvent = { event: 'progress', status: 'pending' };
// @ts-expect-error: under exactOptionalPropertyTypes an absent stage is absent, not undefined
const undefinedStage: GenerationProgressEvent = { ...minimal, stage: undefined };
show(badStatus, badProgress, incomplete, undefinedStage);

/** The discriminated union of what a stream carries (e.g. for a WebSocket consumer). */
function describe(message: GenerationStreamEvent): string {
  switch (message.event) {
    case 'connected':
      same<typeof message, ConnectedEvent>(true);
      return `connected to ${message.generation_id}`;
    case 'reset':
      same<typeof message, ResetEvent>(true);
      return `history of ${message.generation_id} starts over`;
    case 'progress':
      same<typeof message, GenerationProgressEvent>(true);
      return `${message.status} ${message.progress ?? '?'}`;
    default: {
      const exhaustive: never = message;
      return exhaustive;
    }
  }
}
show(describe({ event: 'connected', generation_id: 'g-1' }), describe({ event: 'reset', generation_id: 'g-1' }));
// @ts-expect-error: only progress events carry extra fields
const connectedWithStatus: ConnectedEvent = { event: 'connected', generation_id: 'g-1', status: 'pending' };
// @ts-expect-error: not an event of the stream
describe({ event: 'heartbeat', generation_id: 'g-1' });
show(connectedWithStatus);

// -- AuthstreamError -------------------------------------------------------------

const more: AuthstreamErrorOptions = { status: 422, fields: { password: 'too short' }, retryAfterMs: 1000, cause: 'x' };
const error = new AuthstreamError('validation_failed', 'bad', more);
new AuthstreamError('network_error', 'the server could not be reached', { cause: new TypeError('offline') });
new AuthstreamError('http_502', 'HTTP 502');
new AuthstreamError('a_code_of_a_newer_server', 'still a string');
same<typeof error.code, AuthstreamErrorCode>(true);
same<typeof error.status, number>(true);
same<typeof error.fields, Record<string, string> | null>(true);
same<typeof error.retryAfterMs, number | null>(true);
same<typeof error.isAuthError, boolean>(true);
same<typeof error.name, 'AuthstreamError'>(true);
same<typeof error.cause, unknown>(true);
const asError: Error = error;
const api: ApiErrorCode = 'token_revoked';
const client: ClientErrorCode = 'gave_up';
const codes: AuthstreamErrorCode[] = [api, client, 'stream_closed', 'http_404'];
if (error.fields) show(error.fields['password']?.length);
show(asError, codes, error.message, error.stack);

// @ts-expect-error: not a field of AuthstreamError (it is retryAfterMs)
show(error.retryAfter);
// @ts-expect-error: a message is required
new AuthstreamError('gave_up');
// @ts-expect-error: status is a number
new AuthstreamError('gave_up', 'gave up', { status: '503' });
// @ts-expect-error: fields map names to messages
new AuthstreamError('validation_failed', 'bad', { fields: { password: 1 } });
// @ts-expect-error: the error's fields are read-only
error.status = 500;
// @ts-expect-error: isAuthError is a getter
error.isAuthError = true;
// @ts-expect-error: a client code is not an API code
const notApi: ApiErrorCode = 'network_error';
show(notApi);

// -- GenerationStream -------------------------------------------------------------

const auth = new AuthClient({
  baseUrl: 'https://auth.example',
  fetch: (input, init) => fetch(input, init),
  onChange: (signedIn) => {
    same<typeof signedIn, boolean>(true);
  },
  refreshAheadMs: 60_000,
});
new AuthClient();
new AuthClient({});
const authOptions: AuthClientOptions = { baseUrl: '' };
new AuthClient(authOptions);

const stream = new GenerationStream({
  baseUrl: '',
  generationId: 'g-1',
  getAccessToken: (options) => {
    same<typeof options, { forceRefresh: boolean }>(true);
    return auth.accessToken(options);
  },
  onProgress: (event, meta) => {
    same<typeof event, GenerationProgressEvent>(true);
    same<typeof meta, { id: string }>(true);
    const status: GenerationStatus = event.status;
    show(status, event.progress, event.stage, event.message, event.timestamp, event.generation_id, meta.id);
    // @ts-expect-error: the status of a progress event is never `done`
    if (event.status === 'done') show('never');
  },
  onComplete: (event) => {
    same<typeof event, TerminalProgressEvent>(true);
    same<typeof event.status, 'completed' | 'failed'>(true);
    // @ts-expect-error: a completed stream's last event is not `processing`
    if (event.status === 'processing') show('never');
  },
  onError: (error) => {
    same<typeof error, AuthstreamError>(true);
    if (error.isAuthError) show('sign in again');
    else show(error.code, error.status);
  },
  onStatus: (status) => {
    same<typeof status, StreamStatus>(true);
    same<typeof status.attempt, number>(true);
    switch (status.state) {
      case 'reconnecting':
        if (status.via === 'browser') {
          same<typeof status.browserAttempt, number>(true);
        } else if (status.delayMs !== undefined) {
          same<typeof status.delayMs, number>(true);
          // The cause of a retry is usually an AuthstreamError, but getAccessToken may throw anything.
          same<typeof status.error, unknown>(true);
          if (status.error instanceof AuthstreamError) show(status.error.code);
        } else {
          same<typeof status.error, undefined>(true);
        }
        break;
      case 'error':
        same<typeof status.error, AuthstreamError>(true);
        show(status.error.code);
        break;
      default:
        same<typeof status.state, 'connecting' | 'open' | 'completed' | 'failed' | 'stopped'>(true);
        same<typeof status.delayMs, undefined>(true);
    }
    // @ts-expect-error: delayMs is there only while waiting to reconnect
    show(status.delayMs.toFixed());
    // @ts-expect-error: not a state
    if (status.state === 'closed') show('never');
  },
  onReset: (info) => {
    same<typeof info, { generationId: string }>(true);
  },
  maxAttempts: 5,
  baseDelayMs: 500,
  maxDelayMs: 10_000,
  fetch: globalThis.fetch,
  EventSource: globalThis.EventSource,
  random: Math.random,
});
same<typeof stream.state, StreamState>(true);
same<typeof stream.lastEventId, string | null>(true);
same<typeof stream.generationId, string>(true);
same<typeof stream.stats, GenerationStreamStats>(true);
same<ReturnType<typeof stream.start>, Promise<void>>(true);
same<ReturnType<typeof stream.stop>, void>(true);
const { opens, connected, browserReconnects, tokenFetches, delivered, duplicates } = stream.stats;
show(opens + connected + browserReconnects + tokenFetches + delivered + duplicates);
await stream.start();
stream.stop();

// Only the two required options; an async or a plain token source; returning nothing
// when signed out.
const asyncSource: AccessTokenSource = async ({ forceRefresh }) => (forceRefresh ? 'fresh' : 'cached');
const plainSource: AccessTokenSource = () => 'token';
const signedOut: AccessTokenSource = () => null;
for (const getAccessToken of [asyncSource, plainSource, signedOut]) {
  new GenerationStream({ generationId: 'g-1', getAccessToken });
}
const options: GenerationStreamOptions = { generationId: 'g-2', getAccessToken: (o) => auth.accessToken(o) };
new GenerationStream(options);

// @ts-expect-error: the options are required
new GenerationStream();
// @ts-expect-error: generationId is required
new GenerationStream({ getAccessToken: plainSource });
// @ts-expect-error: getAccessToken is required
new GenerationStream({ generationId: 'g-1' });
// @ts-expect-error: maxAttempts is a number
new GenerationStream({ generationId: 'g-1', getAccessToken: plainSource, maxAttempts: '5' });
// @ts-expect-error: getAccessToken returns a token (string), not an object
new GenerationStream({ generationId: 'g-1', getAccessToken: () => ({ token: 't' }) });
// @ts-expect-error: an unbound method loses its `this`; pass (o) => auth.accessToken(o)
new GenerationStream({ generationId: 'g-1', getAccessToken: auth.accessToken });
// @ts-expect-error: onProgress receives a progress event, not a string
new GenerationStream({ generationId: 'g-1', getAccessToken: plainSource, onProgress: (event: string) => show(event) });
// @ts-expect-error: onComplete receives only terminal events
new GenerationStream({ generationId: 'g-1', getAccessToken: plainSource, onComplete: (event: { status: 'processing' }) => show(event) });
// @ts-expect-error: not an option
new GenerationStream({ generationId: 'g-1', getAccessToken: plainSource, onMessage: () => {} });
// @ts-expect-error: the state is read-only
stream.state = 'open';
// @ts-expect-error: the counters are read-only
stream.stats.opens = 0;
// @ts-expect-error: no such method
stream.restart();
// @ts-expect-error: no such counter
show(stream.stats.reconnects);

// -- backoffDelay -----------------------------------------------------------------

const delay: number = backoffDelay(3, 500, 10_000);
show(delay, backoffDelay(1, 500, 10_000, () => 0.5));
// @ts-expect-error: the cap is required
backoffDelay(1, 500);

// -- AuthClient -------------------------------------------------------------------

same<typeof auth.signedIn, boolean>(true);
same<typeof auth.sessionId, string | null>(true);
same<typeof auth.email, string | null>(true);

const registered = await auth.register('ann@example.com', 'password1');
same<typeof registered, Registered>(true);
const pair = await auth.login('ann@example.com', 'password1');
same<typeof pair, TokenPair>(true);
same<typeof pair.token_type, 'Bearer'>(true);
const token = await auth.accessToken();
same<typeof token, string>(true);
await auth.accessToken({ forceRefresh: true });
await auth.accessToken({});
same<ReturnType<typeof auth.refresh>, Promise<void>>(true);
await auth.refresh();
const sessions = await auth.sessions();
same<typeof sessions, Session[]>(true);
for (const session of sessions) if (!session.current) await auth.deleteSession(session.session_id);
const profile = await auth.me();
same<typeof profile, Profile>(true);
show(profile.display_name ?? profile.email, profile.roles.join(', '), profile.tier);

const created = await auth.request<CreatedGeneration>('POST', '/generations', {});
same<typeof created.status, GenerationStatus>(true);
const untyped = await auth.request('GET', `/generations/${created.generation_id}`);
same<typeof untyped, unknown>(true);
const nothing = await auth.request<null>('DELETE', '/some/thing');
same<typeof nothing, null>(true);
await auth.request('PATCH', '/auth/me', { display_name: 'Ann' });
same<ReturnType<typeof auth.logout>, Promise<void>>(true);
same<ReturnType<typeof auth.logoutAll>, Promise<void>>(true);
await auth.logout();
await auth.logoutAll();

// @ts-expect-error: `patch` is not sent as PATCH by fetch: methods are upper case
await auth.request('patch', '/auth/me', {});
// @ts-expect-error: an untyped answer must be checked before use
show(untyped.generation_id);
// @ts-expect-error: forceRefresh is a boolean
await auth.accessToken({ forceRefresh: 'yes' });
// @ts-expect-error: a password is required
await auth.login('ann@example.com');
// @ts-expect-error: the email is the client's to set
auth.email = 'eve@example.com';
// @ts-expect-error: signedIn is a getter
auth.signedIn = true;
// @ts-expect-error: no such option
new AuthClient({ storage: localStorage });
// @ts-expect-error: refreshAheadMs is a number
new AuthClient({ refreshAheadMs: '30s' });
// @ts-expect-error: a session's ip may be null
const ip: string = sessions[0]!.ip;
// @ts-expect-error: tokens are not kept where scripts can read them
show(auth.tokens);
show(ip);
