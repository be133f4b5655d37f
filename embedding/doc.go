// Package embedding turns text into vectors through the OpenAI-compatible
// embeddings API (POST {base}/embeddings) and ranks vectors exactly.
//
// Guarantees:
//   - Embed answers one vector per text, in the texts' order, each of the
//     dimension the server returned (a server answering fewer, more or
//     out-of-order vectors is an error, never a silent mismatch), L2
//     normalised so that a dot product is the cosine similarity.
//   - A handle whose provider is not configured answers ErrNotConfigured
//     (wrapped), so callers can fall back to lexical search and say so; any
//     other failure is an error naming the provider and the status.
//   - At most MaxBatchTexts texts go in one request; Embed splits larger
//     calls.
//   - Vectors are stored as little-endian float32 (Encode/Decode): the
//     bytes are the same on every platform.
//
// The package does no storage and keeps no state but its HTTP clients: it is
// called outside the agents' actors, before the transaction that stores
// what it computed.
package embedding
