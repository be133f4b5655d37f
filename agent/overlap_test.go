package agent_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/schema"
)

// syncEngine makes each batch visible at once and durable later
// (kv.Pipeliner), as Pebble does. Once armed with a key, the sync of the
// next batch writing it waits for the error (nil: success) sent on release.
type syncEngine struct {
	*faultyEngine
	mu      sync.Mutex
	key     []byte
	stalled chan struct{}
	release chan error
}

func (e *syncEngine) stallNext(key []byte) {
	e.mu.Lock()
	e.key = key
	e.mu.Unlock()
}

func (e *syncEngine) Publish(batch []kv.Mutation) (func() error, error) {
	if err := e.Apply(batch); err != nil {
		return nil, err
	}
	e.mu.Lock()
	stall := e.key != nil && slices.ContainsFunc(batch, func(m kv.Mutation) bool { return bytes.Equal(m.Key, e.key) })
	if stall {
		e.key = nil
	}
	e.mu.Unlock()
	if !stall {
		return func() error { return nil }, nil
	}
	return func() error {
		e.stalled <- struct{}{}
		return <-e.release
	}, nil
}

func recvWithin[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("stuck waiting for %s", what)
		panic("unreachable")
	}
}

// A turn asks the model while the commit of its inputs syncs, and Send
// answers once that commit is durable; if its sync fails, Send fails, the
// model's answer is thrown away, and the agent's next turn closes the run.
func TestModelAskedWhileInputsSync(t *testing.T) {
	for _, fail := range []bool{false, true} {
		name := map[bool]string{false: "sync succeeds", true: "sync fails"}[fail]
		t.Run(name, func(t *testing.T) {
			var eng *syncEngine
			e := newEnvOver(t, func(f *faultyEngine) kv.Engine {
				eng = &syncEngine{faultyEngine: f, stalled: make(chan struct{}), release: make(chan error)}
				return eng
			})
			a := e.defaultAgent()
			asked := make(chan struct{}, 1)
			e.llm.then(func(ctx context.Context, req llm.Request, d func(llm.Delta)) (*llm.Response, error) {
				asked <- struct{}{}
				return reply("lost answer")(ctx, req, d)
			})
			eng.stallNext(schema.ActiveRunKey(a.ID)) // Begin's commit
			type sent struct {
				runID string
				err   error
			}
			done := make(chan sent, 1)
			go func() {
				tr, err := e.svc.Messages.Send(e.ctx, a.ID, "", userMsg("hi"))
				if err != nil {
					done <- sent{err: err}
					return
				}
				_, err = tr.Response(e.ctx)
				done <- sent{tr.RunID(), err}
			}()
			recvWithin(t, eng.stalled, "the sync of the inputs' commit")
			recvWithin(t, asked, "the model, the inputs' commit still syncing")
			var injected error
			if fail {
				injected = errFault
			}
			eng.release <- injected
			got := recvWithin(t, done, "Send")
			if !fail {
				if got.err != nil {
					t.Fatal(got.err)
				}
				h := e.history(a.ID)
				checkConsistent(t, h)
				if ts := types(h); !slices.Equal(ts, []string{"user_message", "assistant_message"}) {
					t.Fatalf("history %v", ts)
				}
				return
			}
			if !errors.Is(got.err, errFault) {
				t.Fatalf("Send = %v, want the sync's error", got.err)
			}
			if n := e.llm.calls(); n != 1 {
				t.Fatalf("model called %d times, want 1", n)
			}
			// The batch stayed applied (a sync failed: the outcome is
			// unknown): the next turn closes its run, and the thrown-away
			// answer is nowhere.
			if resp := e.send(a.ID, userMsg("again")); resp.StopReason.StopReason != "end_turn" {
				t.Fatalf("next turn %v", resp.StopReason)
			}
			h := e.history(a.ID)
			checkConsistent(t, h)
			if ts := types(h); !slices.Equal(ts, []string{"user_message", "user_message", "assistant_message"}) {
				t.Fatalf("history %v", ts)
			}
			if r := e.run(runIDOf(h)); r.Status != "failed" {
				t.Errorf("the first run %+v, want failed", r)
			}
		})
	}
}
