package actor

import "fmt"

// Minted tells Invoke that the caller has just minted the actor's id at
// random (a new agent's), so that nothing can be stored under it yet: a new
// activation then starts from Decode(nil) at epoch 0 without reading its
// state and epoch, two reads of keys that do not exist.
//
// The claim is checked where it can be, in the invocation's transaction:
// its commit is fenced on epoch 0 (see fence), and an actor that ever
// committed left an epoch of at least 1, which is never deleted; so an id
// an actor used before fails with kv.ErrFenced and writes nothing. State
// written under an id by another actor's transaction (an agent-file import
// stores the agents it creates so) carries no epoch: for such ids only the
// randomness of the minted id rules a collision out.
func Minted() InvokeOption {
	return func(r *request) { r.minted = true }
}

// startMinted makes a the activation of a minted id, as load would find
// it: no state, epoch 0, the first commit to take epoch 1.
func startMinted(a *activation) error {
	state, err := a.behavior.Decode(a.id, nil)
	if err != nil {
		return fmt.Errorf("decode state: %w", err)
	}
	a.loaded, a.state, a.epoch, a.newEpoch = true, state, 0, true
	return nil
}
