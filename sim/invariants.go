package sim

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"sort"
	"strings"
	"time"

	"github.com/kelpie/kelpie/kv"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// unseal checks a value as kv.DB stores it (a CRC-32C of key and value,
// then the value) and returns the value.
func unseal(key, stored []byte) ([]byte, bool) {
	if len(stored) < 4 {
		return nil, false
	}
	v := stored[4:]
	c := crc32.Update(0, castagnoli, key)
	c = crc32.Update(c, castagnoli, v)
	return v, binary.BigEndian.Uint32(stored) == c
}

// Storage layout of the agent service (agent/keys.go), as the invariants
// see it.
const (
	agentStatePrefix  = "actor/state/agents/"
	agentIndexPrefix  = "index/agents/"
	blockIndexPrefix  = "index/blocks/"
	blockPrefix       = "block/"
	attachmentPrefix  = "agent-block/"
	blockAgentsPrefix = "block-agent/"
)

// checkInvariants reads the whole disk, at rest, and checks that the
// records, indexes and attachments agree: a partial effect of any
// operation shows up as a disagreement. Damaged values (injected
// corruption) are skipped.
func (s *system) checkInvariants(when string) {
	for _, p := range storageProblems(s.disk) {
		s.violation("invariants", p.object, "%s: %s", when, p.msg)
	}
}

type problem struct{ object, msg string }

func storageProblems(disk *kv.MemEngine) []problem {
	snap, err := disk.NewSnapshot()
	if err != nil {
		return []problem{{"", fmt.Sprintf("cannot read the disk: %v", err)}}
	}
	defer snap.Close()
	kvs, err := snap.Scan(kv.Range{Start: []byte{0}}, 0, false)
	if err != nil {
		return []problem{{"", fmt.Sprintf("cannot scan the disk: %v", err)}}
	}
	type rec struct {
		ID        string    `json:"id"`
		CreatedAt time.Time `json:"created_at"`
	}
	agents := map[string]*rec{}     // id -> record (nil: damaged)
	blocks := map[string]*rec{}     // id -> record (nil: damaged)
	agentIdx := map[string]string{} // id -> index key
	blockIdx := map[string]string{}
	att := map[[2]string]bool{}  // (agent, block)
	back := map[[2]string]bool{} // (agent, block) from block-agent
	var out []problem
	add := func(obj, format string, args ...any) {
		out = append(out, problem{obj, fmt.Sprintf(format, args...)})
	}
	for _, p := range kvs {
		k := string(p.Key)
		v, ok := unseal(p.Key, p.Value)
		var r *rec
		parse := func() {
			if ok {
				r = new(rec)
				if err := json.Unmarshal(v, r); err != nil {
					add("", "record %q does not decode: %v", k, err)
					r = nil
				}
			}
		}
		switch {
		case strings.HasPrefix(k, agentStatePrefix):
			parse()
			agents[k[len(agentStatePrefix):]] = r
		case strings.HasPrefix(k, blockPrefix):
			parse()
			blocks[k[len(blockPrefix):]] = r
		case strings.HasPrefix(k, agentIndexPrefix):
			id := k[strings.LastIndexByte(k, '/')+1:]
			if old, dup := agentIdx[id]; dup {
				add(id, "agent %s has two index entries: %q and %q", id, old, k)
			}
			agentIdx[id] = k
		case strings.HasPrefix(k, blockIndexPrefix):
			id := k[strings.LastIndexByte(k, '/')+1:]
			if old, dup := blockIdx[id]; dup {
				add(id, "block %s has two index entries: %q and %q", id, old, k)
			}
			blockIdx[id] = k
		case strings.HasPrefix(k, attachmentPrefix):
			a, b, _ := strings.Cut(k[len(attachmentPrefix):], "/")
			att[[2]string{a, b}] = true
		case strings.HasPrefix(k, blockAgentsPrefix):
			b, a, _ := strings.Cut(k[len(blockAgentsPrefix):], "/")
			back[[2]string{a, b}] = true
		}
	}
	indexKey := func(prefix string, r *rec) string {
		return fmt.Sprintf("%s%016x/%s", prefix, uint64(r.CreatedAt.UnixNano()), r.ID)
	}
	for _, id := range sortedKeys(agents) {
		r := agents[id]
		k, ok := agentIdx[id]
		switch {
		case !ok:
			add(id, "agent %s has a record but no index entry", id)
		case r != nil && k != indexKey(agentIndexPrefix, r):
			add(id, "agent %s: index entry %q does not match its record (want %q)", id, k, indexKey(agentIndexPrefix, r))
		}
	}
	for _, id := range sortedKeys(agentIdx) {
		if _, ok := agents[id]; !ok {
			add(id, "index entry %q names agent %s, which has no record", agentIdx[id], id)
		}
	}
	for _, id := range sortedKeys(blocks) {
		r := blocks[id]
		k, ok := blockIdx[id]
		switch {
		case !ok:
			add(id, "block %s has a record but no index entry", id)
		case r != nil && k != indexKey(blockIndexPrefix, r):
			add(id, "block %s: index entry %q does not match its record (want %q)", id, k, indexKey(blockIndexPrefix, r))
		}
	}
	for _, id := range sortedKeys(blockIdx) {
		if _, ok := blocks[id]; !ok {
			add(id, "index entry %q names block %s, which has no record", blockIdx[id], id)
		}
	}
	pairs := make([][2]string, 0, len(att)+len(back))
	for p := range att {
		pairs = append(pairs, p)
	}
	for p := range back {
		if !att[p] {
			pairs = append(pairs, p)
		}
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i][0]+pairs[i][1] < pairs[j][0]+pairs[j][1] })
	for _, p := range pairs {
		a, b := p[0], p[1]
		switch {
		case !att[p]:
			add(a, "block %s lists agent %s, which does not have it attached", b, a)
		case !back[p]:
			add(a, "agent %s has block %s attached, which does not list it", a, b)
		}
		if _, ok := agents[a]; !ok {
			add(a, "block %s is attached to agent %s, which has no record", b, a)
		}
		if _, ok := blocks[b]; !ok {
			add(a, "agent %s has block %s attached, which has no record", a, b)
		}
	}
	return out
}
