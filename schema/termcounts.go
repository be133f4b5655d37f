package schema

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kelpie/kelpie/kv"
)

// Term counts: how many listed agents have a tag, a name or a project, or
// belong to an identity, kept as the count of all agents is (counts.go): a
// base per term and a delta per agent whose change is not yet folded into
// it. A count filtered by one term so reads O(log n) keys and the deltas
// written since the last fold, whatever the number of agents with the
// term, and writes of different agents never conflict over a count. The
// deltas are written by IndexAgent with the term index entries (or, for a
// minted agent's create, in its CreateCounts key), and by SetIdentityAgent
// with an identity's links.
var TermCounts = &Family{"term-count", "count-term/",
	"count-term/base/<tag|name|project|identity>/<sha256 of the value, first 32 hex> or count-term/delta/<tag|name|project|identity>/<sha256 of the value, first 32 hex>/<agent-id>",
	"the count of the listed agents with the term (base, absent when 0), or an agent's change not yet folded into it (delta: -1 or 1), decimal"}

// TermIdentity is the kind of the term an agent has for each identity it
// belongs to. It is counted only: listings by identity read its links.
const TermIdentity = "identity"

// Counted says whether terms of kind are counted: trigrams are not (a
// count by query_text checks each name it finds).
func Counted(kind string) bool {
	return kind == TermTag || kind == TermName || kind == TermProject || kind == TermIdentity
}

const (
	termBases  = "count-term/base/"
	termDeltas = "count-term/delta/"
)

// TermCountBaseKey holds the folded count of t; TermCountDeltaKey an
// agent's change of it not yet folded.
func TermCountBaseKey(t Term) []byte { return []byte(termBases + termPath(t)) }

func TermCountDeltaKey(t Term, agentID string) []byte {
	return []byte(termDeltas + termPath(t) + "/" + agentID)
}

func termDeltasOf(t Term) []byte { return []byte(termDeltas + termPath(t) + "/") }

// termBaseOf returns the base key of a term count's delta key.
func termBaseOf(delta []byte) ([]byte, error) {
	kind, rest, ok1 := strings.Cut(strings.TrimPrefix(string(delta), termDeltas), "/")
	hash, _, ok2 := strings.Cut(rest, "/")
	if !strings.HasPrefix(string(delta), termDeltas) || !ok1 || !ok2 {
		return nil, fmt.Errorf("key %q is not the delta of a term count", delta)
	}
	return []byte(termBases + kind + "/" + hash), nil
}

// addTermCount adds delta (1 or -1) to the count of t for an agent with
// add, if terms of its kind are counted.
func addTermCount(txn kv.Txn, t Term, agentID string, delta int, add deltaWriter) error {
	if !Counted(t.Kind) {
		return nil
	}
	return add(txn, termPath(t), agentID, delta)
}

// TermTotal returns how many listed agents have the term t (of a Counted
// kind): its base and the deltas not yet folded into it.
func TermTotal(txn kv.Txn, t Term) (int, error) {
	if !Counted(t.Kind) {
		panic(fmt.Sprintf("schema: TermTotal of a %s term, which is not counted", t.Kind))
	}
	return sumCount(txn, TermCountBaseKey(t), termDeltasOf(t), termPath(t))
}

// countIdentities adds delta to the counts of the identities an agent
// belongs to (as identities finds them): it became listed (1) or stopped
// being listed (-1).
func countIdentities(txn kv.Txn, agentID string, delta int, add deltaWriter, identities func(agentID string) ([]string, error)) error {
	ids, err := identities(agentID)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := addTermCount(txn, Term{TermIdentity, id}, agentID, delta, add); err != nil {
			return err
		}
	}
	return nil
}

// SetIdentityAgent links an agent to an identity, or unlinks it, and moves
// the identity's count if the agent is listed as stored. (An agent's actor
// changes its links before its record is written; IndexAgent then counts
// the links it has if it became listed or stopped being listed.)
func SetIdentityAgent(txn kv.Txn, identityID, agentID string, linked bool) error {
	_, err := txn.Get(join(IdentityAgents, identityID, agentID))
	switch had := err == nil; {
	case err != nil && !errors.Is(err, kv.ErrNotFound):
		return err
	case had == linked:
		return nil // no change
	}
	a, err := GetAgent(txn, agentID)
	if err != nil && err != ErrAgentNotFound {
		return err
	}
	if Listed(a) {
		delta := 1
		if !linked {
			delta = -1
		}
		if err := addTermCount(txn, Term{TermIdentity, identityID}, agentID, delta, addObjectDelta); err != nil {
			return err
		}
	}
	return identityAgents.set(txn, identityID, agentID, linked)
}

// deleteTermCount deletes the count of t, base and deltas: its term is
// gone (an identity deleted with its links).
func deleteTermCount(txn kv.Txn, t Term) error {
	if err := deleteEach(txn, termDeltasOf(t), nil); err != nil {
		return err
	}
	return txn.Delete(TermCountBaseKey(t))
}
