package schema

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kelpie/kelpie/kv"
)

// A Term is one value an agent is found by in a filtered listing: one of
// its tags, its name, its project, a trigram of its name. Only listed (not
// hidden) agents have terms, as only they are listed.
type Term struct {
	Kind  string // TermTag, TermName, TermProject or TermGram
	Value string
}

// The kinds of terms.
const (
	TermTag     = "tag"
	TermName    = "name"
	TermProject = "project"
	// TermGram's values are the trigrams of the lower-cased name, which
	// find the agents whose name holds a substring (query_text) by
	// intersecting the indexes of the substring's trigrams. A name with
	// more than MaxNameGrams of them has only GramsOverflow instead: it
	// bounds the writes of a long name, and such agents are checked one by
	// one.
	TermGram = "gram"
)

// MaxNameGrams is how many distinct trigrams of a name are indexed.
const MaxNameGrams = 64

// GramsOverflow is the gram term of the names with more than MaxNameGrams
// trigrams. No trigram has this value (a trigram has three runes).
const GramsOverflow = ""

// Grams returns the distinct trigrams of the lower-cased s, in order of
// first appearance; none when s has fewer than three runes.
func Grams(s string) []string {
	r := []rune(strings.ToLower(s))
	var grams []string
	for i := 0; i+3 <= len(r); i++ {
		if g := string(r[i : i+3]); !slices.Contains(grams, g) {
			grams = append(grams, g)
		}
	}
	return grams
}

// TermPrefix prefixes the index of the agents with the term, by creation
// time. The value is hashed: a term may be long or hold any character, and
// a key may not.
func TermPrefix(t Term) []byte { return []byte(AgentTerms.Prefix + termPath(t) + "/") }

// termPath names a term in keys: "<kind>/<sha256 of the value, first 32 hex>".
func termPath(t Term) string {
	sum := sha256.Sum256([]byte(t.Value))
	return t.Kind + "/" + hex.EncodeToString(sum[:16])
}

// TermKeys are the index keys an agent created at created has for term t:
// its entry in the term's index and, for a tag, its entry in the index of
// tag names.
func TermKeys(t Term, created time.Time, agentID string) [][]byte {
	keys := [][]byte{IndexKey(string(TermPrefix(t)), created, agentID)}
	if t.Kind == TermTag {
		keys = append(keys, TagNameKey(t.Value, agentID))
	}
	return keys
}

// TagNameKey is the entry of an agent in the index of tag names; TagNamesOf
// prefixes the entries of one tag.
func TagNameKey(tag, agentID string) []byte { return append(TagNamesOf(tag), agentID...) }
func TagNamesOf(tag string) []byte          { return fmt.Appendf(nil, "%s%x/", TagNames.Prefix, tag) }

// TagOf returns the tag of a tag-name index key.
func TagOf(key []byte) (string, error) {
	rest := strings.TrimPrefix(string(key), TagNames.Prefix)
	h, _, ok := strings.Cut(rest, "/")
	tag, err := hex.DecodeString(h)
	if !ok || err != nil {
		return "", fmt.Errorf("key %q is not a tag-name index key", key)
	}
	return string(tag), nil
}

// Listed says whether an agent appears in listings and counts: it exists
// and is not hidden.
func Listed(a *Agent) bool { return a != nil && (a.Hidden == nil || !*a.Hidden) }

// AgentTermsOf returns the terms of an agent, each once; none for an agent
// that is not listed.
func AgentTermsOf(a *Agent) []Term {
	if !Listed(a) {
		return nil
	}
	terms := []Term{{TermName, a.Name}}
	if grams := Grams(a.Name); len(grams) > MaxNameGrams {
		terms = append(terms, Term{TermGram, GramsOverflow})
	} else {
		for _, g := range grams {
			terms = append(terms, Term{TermGram, g})
		}
	}
	if a.ProjectID != nil {
		terms = append(terms, Term{TermProject, *a.ProjectID})
	}
	for _, tag := range a.Tags {
		if t := (Term{TermTag, tag}); !slices.Contains(terms, t) {
			terms = append(terms, t)
		}
	}
	return terms
}

// Indexed is what an agent's index entries and its share of the count
// depend on. The zero value is an agent that does not exist.
type Indexed struct {
	ID        string
	CreatedAt time.Time
	Terms     []Term
	Listed    bool
}

// IndexedOf returns what indexes a (nil: an agent that does not exist).
func IndexedOf(a *Agent) Indexed {
	if a == nil {
		return Indexed{}
	}
	return Indexed{ID: a.ID, CreatedAt: a.CreatedAt, Terms: AgentTermsOf(a), Listed: Listed(a)}
}

// IndexView copies of a what IndexedOf reads (nil for nil). The agent
// actor takes it before an operation, which may change a in place, to
// compute the index entries a had only when SameIndex says they may have
// changed: most operations (every turn's) change none of them, and the
// terms (the name's trigrams) cost more than the rest of the check.
func IndexView(a *Agent) *Agent {
	if a == nil {
		return nil
	}
	return &Agent{ID: a.ID, CreatedAt: a.CreatedAt, Name: a.Name, ProjectID: clonePtr(a.ProjectID), Tags: slices.Clone(a.Tags), Hidden: clonePtr(a.Hidden)}
}

// SameIndex reports whether IndexedOf(view) and IndexedOf(a) are equal
// because what they are computed from is, view being an IndexView.
func SameIndex(view, a *Agent) bool {
	if view == nil || a == nil {
		return view == a
	}
	return view.ID == a.ID && view.CreatedAt.Equal(a.CreatedAt) && view.Name == a.Name &&
		equalPtr(view.ProjectID, a.ProjectID) && slices.Equal(view.Tags, a.Tags) && equalPtr(view.Hidden, a.Hidden)
}

func equalPtr[T comparable](a, b *T) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// IndexAgent moves an agent's index entries (by creation time and by term)
// and its share of the count from what they were to what they are, in the
// transaction that writes its record: indexes and count are never out of
// step with the records. The agent actor calls it after every operation.
func IndexAgent(txn kv.Txn, was, is Indexed) error {
	return indexAgent(txn, was, is, addObjectDelta, func(agentID string) ([]string, error) { return IdentitiesOfAgent(txn, agentID) })
}

// IndexMintedAgent is IndexAgent for a new agent whose id was minted at
// random for this transaction (actor.Call.Minted), which identities lists
// the identities of (each once): nothing was ever stored under the id, so
// its counts are raised without reading anything, in one key with what
// counts gathered (its new blocks); and its only links to identities are
// those the transaction made, which are not scanned for.
func IndexMintedAgent(txn kv.Txn, is Indexed, identities []string, counts *MintedCounts) error {
	err := indexAgent(txn, Indexed{}, is, counts.addNew, func(string) ([]string, error) { return identities, nil })
	if err != nil {
		return err
	}
	return counts.write(txn)
}

// setNewDelta sets the delta key of an object that cannot have one yet.
func setNewDelta(txn kv.Txn, key []byte, delta int) error {
	if delta != 1 {
		panic(fmt.Sprintf("schema: the count delta at %q of a new object would be %d", key, delta))
	}
	return txn.Set(key, []byte("1"))
}

// indexAgent is IndexAgent writing count deltas with add, and finding an
// agent's identities with identities.
func indexAgent(txn kv.Txn, was, is Indexed, add deltaWriter, identities func(agentID string) ([]string, error)) error {
	existed, exists := was.ID != "", is.ID != ""
	if existed && exists && (was.ID != is.ID || !was.CreatedAt.Equal(is.CreatedAt)) {
		panic(fmt.Sprintf("schema: IndexAgent: agent %s (created %v) became %s (created %v)", was.ID, was.CreatedAt, is.ID, is.CreatedAt))
	}
	switch {
	case !existed && exists:
		if err := txn.Set(IndexKey(AgentIndex.Prefix, is.CreatedAt, is.ID), nil); err != nil {
			return err
		}
	case existed && !exists:
		if err := txn.Delete(IndexKey(AgentIndex.Prefix, was.CreatedAt, was.ID)); err != nil {
			return err
		}
	}
	if !slices.Equal(was.Terms, is.Terms) { // most operations change no term
		if err := moveTerms(txn, was, is, add); err != nil {
			return err
		}
	}
	switch {
	case !was.Listed && is.Listed:
		if err := countIdentities(txn, is.ID, 1, add, identities); err != nil {
			return err
		}
		return add(txn, CountedAgents, is.ID, 1)
	case was.Listed && !is.Listed:
		if err := countIdentities(txn, was.ID, -1, add, identities); err != nil {
			return err
		}
		return add(txn, CountedAgents, was.ID, -1)
	}
	return nil
}

// moveTerms deletes the entries of the terms only was has and writes those
// of the terms only is has, and moves the agent's share of the terms'
// counts with them.
func moveTerms(txn kv.Txn, was, is Indexed, add deltaWriter) error {
	for _, t := range was.Terms {
		if !slices.Contains(is.Terms, t) {
			for _, k := range TermKeys(t, was.CreatedAt, was.ID) {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			if err := addTermCount(txn, t, was.ID, -1, add); err != nil {
				return err
			}
		}
	}
	for _, t := range is.Terms {
		if !slices.Contains(was.Terms, t) {
			if err := setAll(txn, TermKeys(t, is.CreatedAt, is.ID)); err != nil {
				return err
			}
			if err := addTermCount(txn, t, is.ID, 1, add); err != nil {
				return err
			}
		}
	}
	return nil
}

// setAll sets each key to an empty value.
func setAll(txn kv.Txn, keys [][]byte) error {
	for _, k := range keys {
		if err := txn.Set(k, nil); err != nil {
			return err
		}
	}
	return nil
}
