// Package api serves Kelpie's Letta-compatible REST API over an
// agent.Service.
//
// Every route is mounted under /v1 and, identically, under /latest, and
// answers with and without a trailing slash. Every response, errors
// included, is JSON with Content-Type application/json, except streamed
// message responses: Server-Sent Events (text/event-stream) framed as Letta
// frames them (see streamTurn). A request that cannot start a turn is
// answered with a JSON error before any stream begins.
//
// Guarantees:
//   - Bad input never produces a 500 and never crashes the server. A
//     malformed body, query parameter or id, a wrong JSON type, an oversized
//     body, trailing bytes after the JSON value or an over-long
//     Idempotency-Key is answered with a 4xx and a JSON {"detail": ...}
//     body, and nothing is changed. Request-shape problems are 422 (as
//     Letta's request validation answers); the service's own validation is
//     400; missing things are 404; conflicts 409; oversize 413.
//   - Overload (a full actor mailbox or activation cap) is 429 with
//     Retry-After; shutdown and cancelled or timed-out operations are 503
//     with x-should-retry: true.
//   - 500 {"detail":"An unknown error occurred"} is reserved for real
//     faults (storage errors, corruption, bugs); the underlying error is
//     logged. A panic in a handler is recovered, logged with its stack and
//     answered with the same 500.
//   - A mutating request carrying an Idempotency-Key is applied at most
//     once per key, method and path; repeating it returns the first
//     answer, and reusing the key for a different body is rejected.
package api
