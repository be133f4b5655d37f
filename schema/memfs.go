package schema

import (
	"github.com/kelpie/kelpie/kv"
)

// MemFS: an agent's memory as a git repository (package agent/memfs). Its
// objects and refs are keys of the agent, written by the agent's actor, so
// a push and the block changes it implies commit in one transaction.
var (
	GitObjects = &Family{"git-object", "gitobj/",
		"gitobj/<agent-id>/<object hash, 40 hex>", "a git object of the agent's repository: its type (one byte, git's type number), then its content"}
	GitRefs = &Family{"git-ref", "gitref/",
		"gitref/<agent-id>/<ref name>", "the hash (40 hex) of the commit the ref names"}
)

// GitObjectKey is where an agent's git object with hash (hex) is stored.
func GitObjectKey(agentID, hash string) []byte { return join(GitObjects, agentID, hash) }

// GitObjectsOf is the prefix of an agent's git objects.
func GitObjectsOf(agentID string) []byte { return join(GitObjects, agentID, "") }

// GitRefKey is where an agent's ref (e.g. refs/heads/main) is stored.
func GitRefKey(agentID, ref string) []byte { return join(GitRefs, agentID, ref) }

// GitRefsOf is the prefix of an agent's refs.
func GitRefsOf(agentID string) []byte { return join(GitRefs, agentID, "") }

// deleteRepository deletes an agent's repository.
func deleteRepository(txn kv.Txn, agentID string) error {
	if err := deleteEach(txn, GitRefsOf(agentID), nil); err != nil {
		return err
	}
	return deleteEach(txn, GitObjectsOf(agentID), nil)
}
