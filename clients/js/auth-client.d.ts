// Type declarations for auth-client.js (AuthClient and the answers of the API it
// reads), written by hand to match it; authstream.d.ts re-exports them (see README.md).
// The `fetch` option is the DOM lib's type.

import type { GenerationStatus } from './generation-stream.js';

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
