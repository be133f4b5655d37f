package actor

// Hooks for the black-box tests in package actor_test. They only observe.

// PendingForTest returns how many invocations of id are queued or running in
// r (0 when id has no activation).
func PendingForTest(r *Runtime, id ID) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a := r.acts[id]; a != nil {
		return a.pending
	}
	return 0
}
