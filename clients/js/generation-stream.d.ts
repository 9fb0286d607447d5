// Type declarations for generation-stream.js (GenerationStream, backoffDelay) and the
// events its stream carries, written by hand to match it; authstream.d.ts re-exports
// them (see README.md). The `fetch` and `EventSource` options are the DOM lib's types.

import type { AuthstreamError } from './errors.js';

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
