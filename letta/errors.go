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
)

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

// KindOf returns the Kind of the Error in err's chain, or 0 if there is
// none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}
