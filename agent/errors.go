package agent

import (
	"errors"
	"fmt"
)

// Kind classifies a service error so that callers (the HTTP layer) can map
// it to a status without parsing messages.
type Kind int

const (
	KindInvalid     Kind = iota + 1 // the request is malformed or breaks a limit
	KindNotFound                    // a named agent or block does not exist
	KindConflict                    // the request contradicts current state
	KindUnavailable                 // the server lacks what the request needs (such as an LLM provider)
)

// Error is a service error a client can act on. Any other error returned by
// the service is an internal fault.
type Error struct {
	Kind    Kind
	Message string
}

func (e *Error) Error() string { return e.Message }

func invalidf(format string, args ...any) error {
	return &Error{Kind: KindInvalid, Message: fmt.Sprintf(format, args...)}
}

func conflictf(format string, args ...any) error {
	return &Error{Kind: KindConflict, Message: fmt.Sprintf(format, args...)}
}

var (
	errAgentNotFound = &Error{Kind: KindNotFound, Message: "Agent not found"}
	errBlockNotFound = &Error{Kind: KindNotFound, Message: "Block not found"}
)

func blockLabelNotFound(label string) error {
	return &Error{Kind: KindNotFound, Message: fmt.Sprintf("Block with label '%s' not found", label)}
}

// KindOf returns the Kind of err, or 0 if err is not a service Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// dangling reports a reference (an index entry, an attachment) whose target
// is missing or unreadable. References change in the same transactions as
// their targets, so this is a fault inside the server, never the client's
// "not found": the service error kind is dropped.
func dangling(err error, format string, args ...any) error {
	if KindOf(err) != 0 {
		return fmt.Errorf(format+": broken reference: %v", append(args, err)...)
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
