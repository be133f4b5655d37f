package agent

import (
	"context"
	"errors"
	"time"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/schema"
)

// FoldInterval is how often the service folds the deltas of the counts of
// agents, blocks and terms into their bases (schema.FoldCounts): a count
// reads the deltas written since.
const FoldInterval = time.Second

// folder folds the counts' deltas in the background until stopped.
type folder struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func startFolder(c *core) *folder {
	ctx, cancel := context.WithCancel(context.Background())
	f := &folder{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		t := c.clock.NewTicker(FoldInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C():
			}
			// A full fold leaves more: fold on at once.
			for n := schema.MaxFold; n == schema.MaxFold && ctx.Err() == nil; {
				var err error
				n, err = schema.FoldCounts(ctx, c.store)
				if err != nil && ctx.Err() == nil && !errors.Is(err, kv.ErrConflict) {
					// The next tick tries again (as after a conflict with
					// an edit of a delta); a failing store fails requests
					// too, which say why.
					c.log.Warn("folding the counts' deltas failed", "err", err)
				}
			}
		}
	}()
	return f
}

// stop stops the folder and waits for a fold in progress.
func (f *folder) stop() {
	f.cancel()
	<-f.done
}
