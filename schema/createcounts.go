package schema

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/kelpie/kelpie/kv"
)

// CreateCounts holds, in one key per minted agent create, what the create
// added to the counts of agents, of blocks and of terms: a create writes
// one key where a delta per count it raised would be one key each (and as
// many deletes for the fold). Each line of the value adds 1 to the count
// it names for one object. A later change of such an object moves the
// count with the object's own delta (counts.go, termcounts.go), -1 against
// the 1 here; FoldCounts folds both into the bases, a create's key first,
// so a base never takes the -1 without the 1. Identities are not counted
// here: deleting one deletes its count, base and deltas, by prefix.
var CreateCounts = &Family{"count-create", "count-create/",
	"count-create/<agent-id>",
	"what the agent's create added to counts, not yet folded: one line per object counted, '<what>' (the agent) or '<what> <object-id>', what being agents, blocks or a term's <tag|name|project>/<sha256 of the value, first 32 hex>"}

// CreateCountKey holds what the create of agent agentID added to counts.
func CreateCountKey(agentID string) []byte { return []byte(CreateCounts.Prefix + agentID) }

// MintedCounts gathers what the create of a minted agent adds to counts,
// to write them in one key (CreateCounts) with IndexMintedAgent.
type MintedCounts struct {
	agentID string
	value   []byte
}

// NewMintedCounts starts what the create of agentID adds to counts.
func NewMintedCounts(agentID string) *MintedCounts { return &MintedCounts{agentID: agentID} }

// add counts object id (the agent itself when it is the agent's id) in the
// count of what.
func (m *MintedCounts) add(what, id string) {
	if len(m.value) > 0 {
		m.value = append(m.value, '\n')
	}
	m.value = append(m.value, what...)
	if id != m.agentID {
		m.value = append(append(m.value, ' '), id...)
	}
}

// write stores what was gathered, if anything (a hidden agent without
// blocks is counted nowhere).
func (m *MintedCounts) write(txn kv.Txn) error {
	if len(m.value) == 0 {
		return nil
	}
	return txn.Set(CreateCountKey(m.agentID), m.value)
}

// eachCreated calls fn with the count (agents, blocks or a term's path) and
// the object of each line of the value of a CreateCounts key.
func eachCreated(key, value []byte, fn func(what, id string) error) error {
	agentID := strings.TrimPrefix(string(key), CreateCounts.Prefix)
	for line := range bytes.SplitSeq(value, []byte{'\n'}) {
		what, id, ok := strings.Cut(string(line), " ")
		if !ok {
			id = agentID
		}
		if what == "" || id == "" || !createCounted(what) {
			return fmt.Errorf("count-create %q: line %q is not '<what>' or '<what> <object-id>' of a count", key, line)
		}
		if err := fn(what, id); err != nil {
			return err
		}
	}
	return nil
}

// createCounted says whether what names a count a create may raise in a
// CreateCounts key.
func createCounted(what string) bool {
	if what == CountedAgents || what == CountedBlocks {
		return true
	}
	kind, hash, ok := strings.Cut(what, "/")
	return ok && kind != TermIdentity && Counted(kind) && len(hash) == 32
}

// createdBase returns the base key of the count a CreateCounts line names.
func createdBase(what string) []byte {
	if what == CountedAgents || what == CountedBlocks {
		return CountBaseKey(what)
	}
	return []byte(termBases + what)
}

// sumCreated returns how many objects the creates not yet folded added to
// the count of what (agents, blocks or a term's path).
func sumCreated(txn kv.Txn, what string) (int, error) {
	n := 0
	err := kv.ScanEach(txn, kv.PrefixRange([]byte(CreateCounts.Prefix)), false, func(p kv.KeyValue) (bool, error) {
		err := eachCreated(p.Key, p.Value, func(w, _ string) error {
			if w == what {
				n++
			}
			return nil
		})
		return err == nil, err
	})
	return n, err
}

// addNew is the deltaWriter of a minted agent's create: it raises counts
// in the create's key, but those of identities with a delta key of the
// agent's, as deleting an identity finds them.
func (m *MintedCounts) addNew(txn kv.Txn, what, id string, delta int) error {
	if !createCounted(what) {
		return setNewDelta(txn, objectDeltaKey(what, id), delta)
	}
	if delta != 1 {
		panic(fmt.Sprintf("schema: a create would add %d to the count %q of %s", delta, what, id))
	}
	m.add(what, id)
	return nil
}
