package letta

import (
	"errors"
	"fmt"
)

// Kind classifies an error the service reports, so that the HTTP layer
// answers it with Letta's status without parsing messages.
type Kind int

const (
	KindInvalid      Kind = iota + 1 // the request is malformed or breaks a limit: 400
	KindNotFound                     // a named entity does not exist: 404
	KindConflict                     // the request contradicts current state: 409, not worth retrying
	KindUnavailable                  // the server lacks what the request needs, such as a model provider: 503
	KindBusy                         // too much work queued for the actor or the server: 429, retry later
	KindContended                    // a concurrent update won: 409, retry
	KindShuttingDown                 // the server is stopping: 503, retry elsewhere or later
	KindMoved                        // the agent's activation moved to another owner: 503, retry
	KindCancelled                    // cancelled or timed out; the outcome is unknown: 503, retry
	KindTooLarge                     // too large to store: 413
	KindDiskFull                     // the server cannot make writes durable for lack of space: 507
	KindCorrupt                      // stored data the request needs is damaged: 500, with a clear detail
	KindStorageDown                  // the storage cannot be reached (a database server down): 503, retry
	KindUpstream                     // the model provider failed a request made for the client: 502
)

// HTTPStatus is the status Letta answers an error of kind k with; 500 for
// an error of no kind, a fault inside the server.
func (k Kind) HTTPStatus() int {
	switch k {
	case KindInvalid:
		return 400
	case KindNotFound:
		return 404
	case KindConflict, KindContended:
		return 409
	case KindBusy:
		return 429
	case KindUnavailable, KindShuttingDown, KindMoved, KindCancelled, KindStorageDown:
		return 503
	case KindTooLarge:
		return 413
	case KindDiskFull:
		return 507
	case KindUpstream:
		return 502
	}
	return 500
}

// kindNames are the kinds' names, for logs and metrics.
var kindNames = [...]string{
	KindInvalid: "invalid", KindNotFound: "not_found", KindConflict: "conflict", KindUnavailable: "unavailable",
	KindBusy: "busy", KindContended: "contended", KindShuttingDown: "shutting_down", KindMoved: "moved",
	KindCancelled: "cancelled", KindTooLarge: "too_large", KindDiskFull: "disk_full", KindCorrupt: "corrupt",
	KindStorageDown: "storage_down", KindUpstream: "upstream",
}

// String is the kind's name, such as "not_found"; "internal" for 0, a
// fault inside the server.
func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "internal"
}

// Error is an error a client can act on: its Kind and a message for people.
// Any other error is a fault inside the server.
type Error struct {
	Kind    Kind
	Message string
}

func (e *Error) Error() string { return e.Message }

// Invalidf returns an Error of KindInvalid.
func Invalidf(format string, args ...any) error {
	return &Error{Kind: KindInvalid, Message: fmt.Sprintf(format, args...)}
}

// NotFoundf returns an Error of KindNotFound.
func NotFoundf(format string, args ...any) error {
	return &Error{Kind: KindNotFound, Message: fmt.Sprintf(format, args...)}
}

// Conflictf returns an Error of KindConflict.
func Conflictf(format string, args ...any) error {
	return &Error{Kind: KindConflict, Message: fmt.Sprintf(format, args...)}
}

// ConversationBusy is Letta's ConversationBusyError: a message that may not
// wait found another request in progress in its conversation. It is a
// conflict (409) whose body also names the run in progress.
type ConversationBusy struct {
	ConversationID string
	RunID          string // the run in progress, if known
}

func (e *ConversationBusy) Error() string {
	if e.RunID != "" {
		return fmt.Sprintf("CONFLICT: Cannot send a new message: Another request (run_id=%s) is currently being processed for this conversation. Please wait for it to complete.", e.RunID)
	}
	return "CONFLICT: Cannot send a new message: Another request is currently being processed for this conversation. Please wait for the current request to complete."
}

// KindOf returns the Kind of the Error in err's chain, or 0 if there is
// none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	var busy *ConversationBusy
	if errors.As(err, &busy) {
		return KindConflict
	}
	return 0
}
