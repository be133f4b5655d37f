package actor

// InvokeOption adjusts one Invoke.
type InvokeOption func(*request)

// WithEarlyReply makes Invoke answer as soon as the invocation's writes are
// published (kv.Publisher), before they are durable, and set *durable to a
// function that waits until they are and returns the outcome (an error:
// unknown, as a failed commit's); it may be called any number of times.
// The caller must acknowledge nothing of the invocation before durable
// returns nil: this is for work that can overlap the sync (a model call
// made from what the invocation returned). The actor runs its next
// invocation only once the outcome is known, and forgets its state if the
// sync failed. Over a store whose transactions are not Publishers the
// answer comes once durable.
func WithEarlyReply(durable *func() error) InvokeOption {
	return func(r *request) { r.early = durable }
}

// WithLocal hands the invocation, as Call.Local, the value its payload
// encodes, so that an operation may take it instead of decoding the
// payload (for a create, a decode of about 1 KB of JSON). The value is the
// invocation's from then on: the caller keeps no reference into it. Every
// attempt of the invocation (a re-run after a conflict) gets the same
// value, so an operation must not change what it holds.
func WithLocal(v any) InvokeOption {
	return func(r *request) { r.local = v }
}

// WithLocalReply makes Invoke set *reply to the answer the operation gave
// in process (Call.Reply), nil if it gave none, so that a caller in the
// same process takes the value instead of decoding its encoding. Not with
// an idempotency key, whose record keeps the answer encoded: the operation
// is told (Call.LocalReply) whether it may answer so.
func WithLocalReply(reply *any) InvokeOption {
	return func(r *request) { r.localReply = reply }
}
