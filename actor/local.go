package actor

// WithLocal hands the invocation, as Call.Local, the value its payload
// encodes, so that an operation may take it instead of decoding the
// payload (for a create, a decode of about 1 KB of JSON). The value is the
// invocation's from then on: the caller keeps no reference into it. Every
// attempt of the invocation (a re-run after a conflict) gets the same
// value, so an operation must not change what it holds.
func WithLocal(v any) InvokeOption {
	return func(r *request) { r.local = v }
}
