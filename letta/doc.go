// Package letta is Letta's REST API contract as Kelpie serves it: the JSON
// shapes of requests and responses, the id format, listing queries and the
// kinds of error a client can act on.
//
// Guarantees:
//   - Every shape follows Letta 0.16.8's schemas field for field (names,
//     order, null versus empty), so Letta's clients parse Kelpie's answers
//     unchanged. Fields Kelpie does not implement yet are emitted with
//     Letta's empty values.
//   - Times render exactly as Letta renders them (see Timestamp and
//     MessageDate).
//   - The package holds data only: no storage, no I/O. The service and the
//     HTTP layer share these types, so a field is declared once.
package letta
