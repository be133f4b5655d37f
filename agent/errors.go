package agent

import (
	"context"
	"errors"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
)

// KindOf classifies an error the service returned: the Kind of a
// *letta.Error, or the kind of a runtime or storage condition a client can
// act on; 0 for a fault inside the server.
func KindOf(err error) letta.Kind {
	if k := letta.KindOf(err); k != 0 {
		return k
	}
	switch {
	case errors.Is(err, actor.ErrBusy), errors.Is(err, actor.ErrOverloaded):
		return letta.KindBusy
	case errors.Is(err, kv.ErrConflict):
		return letta.KindContended
	case errors.Is(err, kv.ErrUnavailable):
		// Before the context cases: a round trip that timed out waiting
		// for the database is the storage's failure, not the caller's.
		return letta.KindStorageDown
	case errors.Is(err, actor.ErrClosed), errors.Is(err, kv.ErrClosed):
		return letta.KindShuttingDown
	case errors.Is(err, kv.ErrFenced):
		return letta.KindMoved
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return letta.KindCancelled
	case errors.Is(err, kv.ErrTooLarge):
		return letta.KindTooLarge
	case errors.Is(err, kv.ErrDiskFull):
		return letta.KindDiskFull
	case errors.Is(err, kv.ErrCorrupt):
		return letta.KindCorrupt
	}
	return 0
}
