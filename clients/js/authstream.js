// authstream browser client: a dependency-free ES module.
//
//   GenerationStream  follows one generation's progress events over Server-Sent Events
//                     (the secure successor of the old GenerationMonitor).
//   AuthClient        signs in, keeps the token pair in memory, refreshes with rotation,
//                     signs out; used by the demo page.
//   AuthstreamError   every error either of them reports.
//
// This file is the entry point: it re-exports the public API, which lives in
//   errors.js             AuthstreamError (and how an HTTP answer becomes one)
//   generation-stream.js  GenerationStream, backoffDelay
//   auth-client.js        AuthClient
// Serve or copy the four files together. See README.md next to this file.

export { AuthstreamError } from './errors.js';
export { GenerationStream, backoffDelay } from './generation-stream.js';
export { AuthClient } from './auth-client.js';
