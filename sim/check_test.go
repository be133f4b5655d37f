package sim

import "testing"

// Spec: an operation retried with its idempotency key did what its
// attempts did. When the last attempt failed (busy, say), the earlier ones
// decide: if every one failed too (one sent to a process already dead, as
// settle finds), it did nothing; if one's outcome is unknown, it may have
// taken effect, by that attempt's bound. A native sweep reported an
// operation of two failed attempts as unknown with an effect bound of 0,
// before its call: no history could linearize it.
func TestRetriedOperationOutcome(t *testing.T) {
	c := &checker{}
	retry := func(first *opRecord, last *opRecord) *opRecord {
		first.Retries = []*opRecord{last}
		return c.logical(first)
	}
	busy := func() *opRecord { return &opRecord{Call: 150, Ret: 160, Status: 429, Out: failedOutcome} }

	dead := &opRecord{Call: 128, Ret: 140, Status: 503, Out: failedOutcome} // settled: sent after its process died
	if op := retry(dead, busy()); op.Out != failedOutcome {
		t.Errorf("failed attempts only: outcome %v, want failed", op.Out)
	}

	cut := &opRecord{Call: 128, Ret: 140, Status: 503, Out: unknownOutcome, EffectBy: 139}
	if op := retry(cut, busy()); op.Out != unknownOutcome || op.EffectBy != 139 {
		t.Errorf("an unknown attempt, then a failed one: %v by %d, want unknown by 139", op.Out, op.EffectBy)
	}

	open := &opRecord{Call: 128, Ret: 140, Status: 503, Out: unknownOutcome, EffectBy: never}
	later := &opRecord{Call: 150, Ret: 160, Status: 503, Out: unknownOutcome, EffectBy: 155}
	if op := retry(open, later); op.Out != unknownOutcome || op.EffectBy != never {
		t.Errorf("two unknown attempts: %v by %d, want unknown at any time", op.Out, op.EffectBy)
	}

	gone := &opRecord{Call: 128, Ret: 140, Status: 503, Out: unknownOutcome, EffectBy: never}
	if op := retry(gone, &opRecord{Call: 150, Ret: 160, Status: 404, Out: failedOutcome}); op.Out != failedOutcome {
		t.Errorf("a retry answered 404: outcome %v, want failed", op.Out)
	}
}

// Spec: a message refused because its conversation was busy is right only
// if another send to that conversation was in flight when it was refused,
// or had been cut off before (its turn goes on without its client).
func TestBusyNeedsAnotherSend(t *testing.T) {
	const path = "/v1/conversations/conv-1/messages"
	busy := func() *opRecord {
		return &opRecord{ID: 9, Call: 100, Ret: 110, Status: 409, Out: failedOutcome, request: request{Method: "POST", Path: path},
			Detail: "CONFLICT: Cannot send a new message: Another request (run_id=run-1) is currently being processed for this conversation. Please wait for it to complete."}
	}
	send := func(call, ret int64, out outcome, p string) *opRecord {
		return &opRecord{ID: 1, Call: call, Ret: ret, Status: 200, Out: out, request: request{Method: "POST", Path: p}}
	}
	for _, c := range []struct {
		name  string
		other *opRecord
		ok    bool
	}{
		{"in flight across it", send(90, 120, okOutcome, path), true},
		{"answered before it began", send(80, 95, okOutcome, path), false},
		{"cut off before it began", send(80, 95, unknownOutcome, path), true},
		{"begun after it answered", send(115, 130, okOutcome, path), false},
		{"to another conversation", send(90, 120, okOutcome, "/v1/conversations/conv-2/messages"), false},
	} {
		ck := &checker{ops: []*opRecord{c.other, busy()}, per: map[string]int{}}
		ck.checkBusy()
		if got := len(ck.out) == 0; got != c.ok {
			t.Errorf("another send %s: accepted %v, want %v (%v)", c.name, got, c.ok, ck.out)
		}
	}
}
