// Type declarations for authstream.js, written by hand to match it (see README.md);
// test/declarations.test.js keeps the two in step, types-test/ type-checks a consumer.
// A browser module: the `fetch` and `EventSource` options are the DOM lib's types
// ("lib": [..., "DOM"], as in any browser project).

// -- Events on the stream ----------------------------------------------------------

/** A generation's status, as every progress event carries it. */
export type GenerationStatus = 'pending' | 'processing' | 'completed' | 'failed';

/** The statuses after which nothing follows: the stream ends. */
export type TerminalStatus = 'completed' | 'failed';

/**
 * A progress event, as the stream service sends it and `onProgress` receives it: the
 * known fields, then whatever else the publisher sent (`current_file`, ...), which are
 * `unknown` until checked.
 */
export interface GenerationProgressEvent {
  event: 'progress';
  generation_id: string;
  status: GenerationStatus;
  /** Absent when the publisher sent none. */
  stage?: string;
  /** 0 to 1; absent when the publisher sent none. */
  progress?: number;
  /** Absent when the publisher sent none. */
  message?: string;
  /** Unix milliseconds. */
  timestamp: number;
  /** Extra fields of the publisher. */
  [field: string]: unknown;
}

/** The last progress event of a generation: what `onComplete` receives. */
export type TerminalProgressEvent = GenerationProgressEvent & { status: TerminalStatus };

/** The first message of every (re)connection. */
export interface ConnectedEvent {
  event: 'connected';
  generation_id: string;
}

/** The resume point was older than the kept history: what follows is all that is kept. */
export interface ResetEvent {
  event: 'reset';
  generation_id: string;
}

/** Every JSON object a generation's stream carries, told apart by `event`. */
export type GenerationStreamEvent = ConnectedEvent | ResetEvent | GenerationProgressEvent;

// -- Errors ------------------------------------------------------------------------

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

// -- GenerationStream ------------------------------------------------------------

/** `GenerationStream#state`. */
export type StreamState =
  | 'idle'
  | 'connecting'
  | 'open'
  | 'reconnecting'
  | 'completed'
  | 'failed'
  | 'stopped'
  | 'error';

/** The states after which the stream does nothing more. */
export type FinalStreamState = 'completed' | 'failed' | 'stopped' | 'error';

/**
 * `onStatus`: `connecting` (asking for a stream token, before any EventSource opened),
 * `open` (`connected` received), `completed`, `failed` or `stopped`.
 */
export interface PlainStreamStatus {
  state: 'connecting' | 'open' | 'completed' | 'failed' | 'stopped';
  /** Consecutive failed attempts so far (0 once a connection opened). */
  attempt: number;
  delayMs?: never;
  error?: never;
  via?: never;
  browserAttempt?: never;
}

/** `reconnecting`: about to ask for a fresh stream token (after waiting `delayMs`). */
export interface ReconnectingStatus {
  state: 'reconnecting';
  attempt: number;
  delayMs?: never;
  error?: never;
  via?: never;
  browserAttempt?: never;
}

/** `reconnecting`: the attempt failed; the next one starts in `delayMs`. */
export interface RetryScheduledStatus {
  state: 'reconnecting';
  attempt: number;
  delayMs: number;
  /**
   * Why: an `AuthstreamError`, or whatever `getAccessToken` threw (`unknown`, check
   * with `instanceof AuthstreamError`).
   */
  error: unknown;
  via?: never;
  browserAttempt?: never;
}

/** `reconnecting`: the connection dropped and the browser reconnects by itself. */
export interface BrowserReconnectingStatus {
  state: 'reconnecting';
  attempt: number;
  via: 'browser';
  /** Consecutive errors left to the browser (at most `maxAttempts`). */
  browserAttempt: number;
  delayMs?: never;
  error?: never;
}

/** `error`: the stream ended for good; `onError` receives the same error next. */
export interface ErrorStreamStatus {
  state: 'error';
  attempt: number;
  error: AuthstreamError;
  delayMs?: never;
  via?: never;
  browserAttempt?: never;
}

/** Every status change, as `onStatus` receives it; told apart by `state`. */
export type StreamStatus =
  | PlainStreamStatus
  | ReconnectingStatus
  | RetryScheduledStatus
  | BrowserReconnectingStatus
  | ErrorStreamStatus;

/** `GenerationStream#stats`: counters, for display and tests. */
export interface GenerationStreamStats {
  /** EventSources opened (one per stream token). */
  readonly opens: number;
  /** `connected` events received. */
  readonly connected: number;
  /** Reconnections the browser made by itself that came through. */
  readonly browserReconnects: number;
  /** Stream-token requests sent. */
  readonly tokenFetches: number;
  /** Progress events handed to `onProgress`. */
  readonly delivered: number;
  /** Progress events dropped as already delivered. */
  readonly duplicates: number;
}

/** The source of access tokens: `getAccessToken`. */
export type AccessTokenSource = (
  this: void,
  options: { forceRefresh: boolean },
) => string | null | undefined | PromiseLike<string | null | undefined>;

/** `new GenerationStream(options)`. */
export interface GenerationStreamOptions {
  /** The generation to follow (required, not empty). */
  generationId: string;
  /**
   * The current access token; with `forceRefresh: true` (once, after the auth service
   * answered 401) a refreshed one. May be async. Throw, or return nothing, when
   * signed out. Pass an arrow function (`(o) => auth.accessToken(o)`), not an unbound
   * method.
   */
  getAccessToken: AccessTokenSource;
  /** Where the auth service is: where stream tokens come from. `''` = this origin. @default '' */
  baseUrl?: string | undefined;
  /** Each progress event, exactly once, in order; `id` is its SSE event id. */
  onProgress?: ((event: GenerationProgressEvent, meta: { id: string }) => void) | undefined;
  /** The `completed` or `failed` event, after its `onProgress`; the stream is closed. */
  onComplete?: ((event: TerminalProgressEvent) => void) | undefined;
  /** The stream ended without completing and will not retry by itself. */
  onError?: ((error: AuthstreamError) => void) | undefined;
  /** Every state change. */
  onStatus?: ((status: StreamStatus) => void) | undefined;
  /**
   * The server no longer keeps the events since the last one delivered: what follows
   * is all it kept (some events in between are lost).
   */
  onReset?: ((info: { generationId: string }) => void) | undefined;
  /**
   * Consecutive failures (a token request that fails, a connection the browser gives
   * up on) before giving up; a connection that opens resets the count. The browser's
   * own reconnects are bounded by the same number. At least 1. @default 5
   */
  maxAttempts?: number | undefined;
  /** Backoff between attempts: exponential from this, half of it random. @default 500 */
  baseDelayMs?: number | undefined;
  /** The backoff's cap. @default 10000 */
  maxDelayMs?: number | undefined;
  /** Another fetch (tests). @default globalThis.fetch */
  fetch?: typeof fetch | undefined;
  /** Another EventSource (tests). @default globalThis.EventSource */
  EventSource?: typeof EventSource | undefined;
  /** The jitter's source of numbers in [0, 1) (tests). @default Math.random */
  random?: (() => number) | undefined;
}

/**
 * Follows one generation's progress events over Server-Sent Events: fetches a
 * single-use stream token with the access token, resumes across dropped connections,
 * delivers every event once, in order, and stops at `completed` or `failed`.
 *
 * @throws TypeError without `generationId` or `getAccessToken`, or with no `fetch` or
 * `EventSource` available.
 */
export class GenerationStream {
  constructor(options: GenerationStreamOptions);
  /** The generation followed. */
  readonly generationId: string;
  /** Counters, for display and tests. */
  readonly stats: GenerationStreamStats;
  /** `idle` until `start()`. */
  get state(): StreamState;
  /** The id of the last event delivered, or null. */
  get lastEventId(): string | null;
  /**
   * Starts following; call once (it rejects when not `idle`). Resolves when the first
   * connection attempt is under way.
   */
  start(): Promise<void>;
  /** Closes the stream and cancels any retry. No callback runs after this. */
  stop(): void;
}

/**
 * The delay before attempt `attempt` (1, 2, ...): `baseMs * 2^(attempt-1)` capped at
 * `maxMs`, half of it fixed and half random, rounded to whole milliseconds.
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random?: () => number): number;

// -- AuthClient ----------------------------------------------------------------------

/** A user's tier. */
export type Tier = 'free' | 'paid';

/** `201` of `POST /auth/register` (`AuthClient#register`). */
export interface Registered {
  user_id: string;
  email: string;
  tier: Tier;
}

/** A session's token pair (`AuthClient#login`). */
export interface TokenPair {
  access_token: string;
  refresh_token: string;
  token_type: 'Bearer';
  /** Seconds. */
  expires_in: number;
  /** Seconds. */
  refresh_expires_in: number;
  session_id: string;
  /**
   * On login only: this device's token. Browsers keep it as the `as_device` cookie;
   * other clients send it back on later logins as `X-Device-Token`, which exempts the
   * login from the account-wide failed-login cap.
   */
  device_token?: string;
}

/** The caller's profile (`AuthClient#me`). */
export interface Profile {
  user_id: string;
  email: string;
  tier: Tier;
  roles: string[];
  display_name: string | null;
  preferences: Record<string, unknown>;
}

/** One of the caller's sessions (`AuthClient#sessions`). */
export interface Session {
  session_id: string;
  /** Unix milliseconds. */
  created_at: number;
  /** Unix milliseconds: login or the last refresh. */
  last_seen_at: number;
  user_agent: string;
  ip: string | null;
  /** The session of the token the request was made with: this browser's. */
  current: boolean;
}

/** `201` of `POST /generations`: `auth.request<CreatedGeneration>('POST', '/generations', {})`. */
export interface CreatedGeneration {
  generation_id: string;
  owner_id: string;
  status: GenerationStatus;
  /** Unix milliseconds. */
  created_at: number;
}

/** The methods `AuthClient#request` sends. */
export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';

/** `new AuthClient(options)`. */
export interface AuthClientOptions {
  /** Where the auth service is. `''` = this origin. @default '' */
  baseUrl?: string | undefined;
  /** Another fetch (tests). @default globalThis.fetch */
  fetch?: typeof fetch | undefined;
  /** Signed in (`true`), or signed out (`false`; also when a refresh is refused or a token revoked). */
  onChange?: ((signedIn: boolean) => void) | undefined;
  /** Refresh an access token this long before it expires. @default 30000 */
  refreshAheadMs?: number | undefined;
}

/**
 * Sign-in state for a single-page app. The tokens live only in this object's memory;
 * refreshes rotate the pair and concurrent callers share one. Every method rejects with
 * an `AuthstreamError`.
 */
export class AuthClient {
  constructor(options?: AuthClientOptions);
  /** The signed-in user's email (trimmed, lower case), or null. */
  readonly email: string | null;
  get signedIn(): boolean;
  /** This browser's session id (from the login answer), or null. */
  get sessionId(): string | null;
  /** `POST /auth/register`; does not sign in. */
  register(email: string, password: string): Promise<Registered>;
  /** `POST /auth/login`: keeps the pair, then `onChange(true)`. */
  login(email: string, password: string): Promise<TokenPair>;
  /**
   * The access token, refreshed first when `forceRefresh` or when it is about to
   * expire. Rejects with an `AuthstreamError` (status 401) when signed out.
   */
  accessToken(this: AuthClient, options?: { forceRefresh?: boolean | undefined }): Promise<string>;
  /** Rotates the token pair. One refresh at a time; a refused refresh signs out. */
  refresh(): Promise<void>;
  /** Ends this session; forgets the tokens even if the server cannot be reached. */
  logout(): Promise<void>;
  /** Ends every session of the user, on every device; forgets the tokens here too. */
  logoutAll(): Promise<void>;
  /** `GET /auth/sessions`. */
  sessions(): Promise<Session[]>;
  /** Ends one session; ending this browser's own signs out here. */
  deleteSession(sessionId: string): Promise<void>;
  /** `GET /auth/me`. */
  me(): Promise<Profile>;
  /**
   * An authenticated JSON request to the API (`body`, when given, is sent as JSON):
   * the JSON answer, typed as `T` by the caller; null for a 204 (`request<null>`). An
   * expired access token is refreshed once and the request repeated; a 401 for a
   * revoked token signs out.
   */
  request<T = unknown>(method: HttpMethod, path: string, body?: unknown): Promise<T>;
}
