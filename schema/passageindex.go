package schema

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/kelpie/kelpie/kv"
)

// The word index of archival passages and their counts, written in the
// transaction that stores or deletes a passage (IndexPassage), so that a
// lexical search reads the postings of its query's words instead of every
// passage, and a prompt shows how many passages an agent has and their
// tags without reading them.
//
// A passage's words (Words) are the maximal runs of letters, digits and
// marks of its lower-cased text. Only agent and archive passages are
// indexed by word: a folder's chunks are searched by their own scan.
var (
	PassageTerms = &Family{"passage-term", "passageterm/",
		"passageterm/<agent-id or archive-id>/<sha256 of the word, first 32 hex>/<seq, 16 hex>/<passage-id>",
		"empty: the passage holds the word (or, for the hash of \"\", has more than MaxPassageTerms words and no other entry)"}
	PassageCounts = &Family{"passage-count", "passagecount/",
		"passagecount/<agent-id, archive-id or folder-id>",
		"how many passages the owner has, decimal; absent when none"}
	PassageTagCounts = &Family{"passage-tag", "passagetag/",
		"passagetag/<agent-id, archive-id or folder-id>/<tag, hex>",
		"how many of the owner's passages have the tag, decimal; absent when none (hex keeps the tags' order)"}
)

// MaxPassageTerms is how many distinct words of a passage are indexed. A
// passage with more has only the OverflowTerm entry instead: it bounds the
// writes of a long passage, and a search checks such passages one by one.
const MaxPassageTerms = 512

// OverflowTerm is the indexed term of the passages with more than
// MaxPassageTerms words. No word is empty.
const OverflowTerm = ""

// Words returns the distinct words of s, lower-cased, in order of first
// appearance: its maximal runs of letters, digits and combining marks (a
// mark belongs to its letter: "İ" lower-cases to "i" and a combining dot).
func Words(s string) []string {
	var out []string
	seen := map[string]bool{}
	for w := range strings.FieldsFuncSeq(strings.ToLower(s), notWord) {
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}

// CountWords counts how many of words (distinct, from Words) are words of
// s.
func CountWords(s string, words []string) int {
	if len(words) == 0 {
		return 0
	}
	held := make([]bool, len(words))
	n := 0
	for w := range strings.FieldsFuncSeq(strings.ToLower(s), notWord) {
		if i := slices.Index(words, w); i >= 0 && !held[i] {
			if held[i], n = true, n+1; n == len(words) {
				break
			}
		}
	}
	return n
}

func notWord(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r) }

// IndexedTerms returns the terms a passage is indexed by: its words, or
// OverflowTerm alone when it has more than MaxPassageTerms; none for a
// folder's chunk.
func IndexedTerms(p *Passage) []string {
	if p.FolderID != "" {
		return nil
	}
	if w := Words(p.Text); len(w) <= MaxPassageTerms {
		return w
	}
	return []string{OverflowTerm}
}

// PassageTermsOf prefixes the postings of a term of an owner's passages,
// in passage order (seq).
func PassageTermsOf(owner, term string) []byte {
	sum := sha256.Sum256([]byte(term))
	return join(PassageTerms, owner, hex.EncodeToString(sum[:16])+"/")
}

// PassageTermKey is a passage's posting of a term; passageKey is the
// passage's key.
func PassageTermKey(owner, term string, passageKey []byte) []byte {
	return append(PassageTermsOf(owner, term), passageTail(owner, passageKey)...)
}

// PassageOfTerm returns the key of the passage a posting of an owner's
// names.
func PassageOfTerm(owner string, termKey []byte) []byte {
	rest := termKey[len(PassageTerms.Prefix)+len(owner)+1:]
	return append(PassagesOf(owner), rest[strings.IndexByte(string(rest), '/')+1:]...)
}

// PassageCountKey holds how many passages an owner has.
func PassageCountKey(owner string) []byte { return []byte(PassageCounts.Prefix + owner) }

// PassageTagCountKey holds how many of an owner's passages have a tag;
// PassageTagCountsOf prefixes an owner's, in tag order.
func PassageTagCountKey(owner, tag string) []byte {
	return append(PassageTagCountsOf(owner), hex.EncodeToString([]byte(tag))...)
}
func PassageTagCountsOf(owner string) []byte { return join(PassageTagCounts, owner, "") }

// distinctTags returns p's tags, each once.
func distinctTags(p *Passage) []string {
	tags := slices.Clone(p.Tags)
	slices.Sort(tags)
	return slices.Compact(tags)
}

// IndexPassage adds (delta 1) or removes (delta -1) a passage's postings
// and its share of its owner's counts, in the transaction that writes or
// deletes its record.
func IndexPassage(txn kv.Txn, p *Passage, delta int) error {
	owner := p.Owner()
	key := PassageKey(owner, p.Seq, p.ID)
	for _, t := range IndexedTerms(p) {
		k := PassageTermKey(owner, t, key)
		var err error
		if delta > 0 {
			err = txn.Set(k, nil)
		} else {
			err = txn.Delete(k)
		}
		if err != nil {
			return err
		}
	}
	if err := addTo(txn, PassageCountKey(owner), delta); err != nil {
		return err
	}
	for _, tag := range distinctTags(p) {
		if err := addTo(txn, PassageTagCountKey(owner, tag), delta); err != nil {
			return err
		}
	}
	return nil
}

// addTo adds delta to the count at key, deleting it at 0.
func addTo(txn kv.Txn, key []byte, delta int) error {
	n, err := readCount(txn, key)
	if err != nil {
		return err
	}
	switch n += delta; {
	case n == 0:
		return txn.Delete(key)
	case n < 0:
		panic(fmt.Sprintf("schema: the count at %q would be %d", key, n))
	}
	return txn.Set(key, strconv.AppendInt(nil, int64(n), 10))
}

// PassageStats returns how many passages an owner has and their distinct
// tags, sorted: two reads, whatever the number of passages.
func PassageStats(txn kv.Txn, owner string) (count int, tags []string, err error) {
	if count, err = readCount(txn, PassageCountKey(owner)); err != nil {
		return 0, nil, err
	}
	prefix := PassageTagCountsOf(owner)
	err = kv.ScanEach(txn, kv.PrefixRange(prefix), false, func(p kv.KeyValue) (bool, error) {
		tag, err := hex.DecodeString(string(p.Key[len(prefix):]))
		if err != nil {
			return false, fmt.Errorf("passage tag count %q: the tag is not hex", p.Key)
		}
		tags = append(tags, string(tag))
		return true, nil
	})
	return count, tags, err
}

// deletePassageIndexOf deletes every posting and count of an owner's
// passages.
func deletePassageIndexOf(txn kv.Txn, owner string) error {
	for _, prefix := range [][]byte{join(PassageTerms, owner, ""), PassageTagCountsOf(owner)} {
		if err := deleteEach(txn, prefix, nil); err != nil {
			return err
		}
	}
	return txn.Delete(PassageCountKey(owner))
}
