// Type declarations for authstream.js, written by hand to match it (see README.md);
// test/declarations.test.js keeps them in step, types-test/ type-checks a consumer.
// A browser module: the `fetch` and `EventSource` options are the DOM lib's types
// ("lib": [..., "DOM"], as in any browser project).
//
// Like the module, this file only re-exports: each part is declared next to its file,
//   errors.d.ts             AuthstreamError and its codes
//   generation-stream.d.ts  GenerationStream, backoffDelay, the stream's events and statuses
//   auth-client.d.ts        AuthClient and the API answers it reads

export { AuthstreamError } from './errors.js';
export type { ApiErrorCode, AuthstreamErrorCode, AuthstreamErrorOptions, ClientErrorCode } from './errors.js';

export { GenerationStream, backoffDelay } from './generation-stream.js';
export type {
  AccessTokenSource,
  BrowserReconnectingStatus,
  ConnectedEvent,
  ErrorStreamStatus,
  FinalStreamState,
  GenerationProgressEvent,
  GenerationStatus,
  GenerationStreamEvent,
  GenerationStreamOptions,
  GenerationStreamStats,
  PlainStreamStatus,
  ReconnectingStatus,
  ResetEvent,
  RetryScheduledStatus,
  StreamState,
  StreamStatus,
  TerminalProgressEvent,
  TerminalStatus,
} from './generation-stream.js';

export { AuthClient } from './auth-client.js';
export type {
  AuthClientOptions,
  CreatedGeneration,
  HttpMethod,
  Profile,
  Registered,
  Session,
  Tier,
  TokenPair,
} from './auth-client.js';
