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
	// Messages and runs (agent/messages.go).
	msgKeyPrefix    = "msg/"
	msgIDPrefix     = "msgid/"
	turnKeyPrefix   = "turnkey/"
	runKeyPrefix    = "run/"
	activeRunPrefix = "active-run/"
)

// checkInvariants reads the whole disk, at rest, and checks that the
// records, indexes and attachments agree, and that each agent's messages
// are whole (see messageScan): a partial effect of any operation shows up
// as a disagreement. Damaged values (injected corruption) are skipped.
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
	ms := newMessageScan()
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
		default:
			ms.add(k, v, ok)
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
	for _, p := range ms.problems(func(id string) bool { _, ok := agents[id]; return ok }) {
		out = append(out, p)
	}
	return out
}

// messageScan checks the stored messages and runs of every agent, at rest:
//
//   - an agent's messages are numbered 1, 2, ... with no gap, each record
//     says its own agent and number, and the message-id index and the
//     messages agree one to one;
//   - every tool call the server runs has exactly one result among the tool
//     messages right after its assistant message, and every such result
//     answers a call of it (a step commits the call with its results: a
//     call left without one is a step committed in pieces);
//   - every message of a run lies within the run's recorded range, which a
//     repeated request relies on to answer with the run's messages;
//   - every otid or idempotency key answered names a run of its agent, and
//     the agent's turn in progress names a running run;
//   - a deleted agent leaves no messages behind.
type messageScan struct {
	msgs    map[string]map[uint64]*storedMsg // agent -> seq -> message (nil: damaged)
	ids     map[string]string                // message id -> "<agent>/<seq hex>"
	runs    map[string]*storedRun            // nil: damaged
	keys    map[string][]string              // agent -> run ids its answered keys name
	active  map[string]string                // agent -> run id
	decodes []problem
}

type storedMsg struct {
	ID         string `json:"id"`
	AgentID    string `json:"agent_id"`
	Seq        uint64 `json:"seq"`
	Role       string `json:"role"`
	ToolCallID string `json:"tool_call_id"`
	RunID      string `json:"run_id"`
	ToolCalls  []struct {
		ID     string `json:"id"`
		Client bool   `json:"client"`
	} `json:"tool_calls"`
}

type storedRun struct {
	ID       string `json:"id"`
	AgentID  string `json:"agent_id"`
	Status   string `json:"status"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
}

// damagedEntry stands for an index entry whose value is damaged.
const damagedEntry = "\x00damaged"

func newMessageScan() *messageScan {
	return &messageScan{msgs: map[string]map[uint64]*storedMsg{}, ids: map[string]string{},
		runs: map[string]*storedRun{}, keys: map[string][]string{}, active: map[string]string{}}
}

// add takes one stored pair; v is its unsealed value, ok false when it is
// damaged.
func (s *messageScan) add(k string, v []byte, ok bool) {
	switch {
	case strings.HasPrefix(k, msgKeyPrefix):
		agentID, hex, _ := strings.Cut(k[len(msgKeyPrefix):], "/")
		var seq uint64
		if _, err := fmt.Sscanf(hex, "%016x", &seq); err != nil {
			s.decodes = append(s.decodes, problem{agentID, fmt.Sprintf("message key %q has no sequence number", k)})
			return
		}
		if s.msgs[agentID] == nil {
			s.msgs[agentID] = map[uint64]*storedMsg{}
		}
		var m *storedMsg
		if ok {
			m = new(storedMsg)
			if err := json.Unmarshal(v, m); err != nil {
				s.decodes = append(s.decodes, problem{agentID, fmt.Sprintf("message %q does not decode: %v", k, err)})
				m = nil
			}
		}
		s.msgs[agentID][seq] = m
	case strings.HasPrefix(k, msgIDPrefix):
		if !ok {
			v = []byte(damagedEntry)
		}
		s.ids[k[len(msgIDPrefix):]] = string(v)
	case strings.HasPrefix(k, runKeyPrefix):
		var r *storedRun
		if ok {
			r = new(storedRun)
			if err := json.Unmarshal(v, r); err != nil {
				s.decodes = append(s.decodes, problem{"", fmt.Sprintf("run %q does not decode: %v", k, err)})
				r = nil
			}
		}
		s.runs[k[len(runKeyPrefix):]] = r
	case strings.HasPrefix(k, turnKeyPrefix):
		if ok {
			agentID, _, _ := strings.Cut(k[len(turnKeyPrefix):], "/")
			s.keys[agentID] = append(s.keys[agentID], string(v))
		}
	case strings.HasPrefix(k, activeRunPrefix):
		if ok {
			s.active[k[len(activeRunPrefix):]] = string(v)
		}
	}
}

func (s *messageScan) problems(agentExists func(string) bool) []problem {
	out := s.decodes
	add := func(obj, format string, args ...any) {
		out = append(out, problem{obj, fmt.Sprintf(format, args...)})
	}
	for _, agentID := range sortedKeys(s.msgs) {
		msgs := s.msgs[agentID]
		if !agentExists(agentID) {
			add(agentID, "agent %s has no record, but %d of its messages remain", agentID, len(msgs))
			continue
		}
		n := uint64(len(msgs))
		for seq := uint64(1); seq <= n; seq++ {
			if _, ok := msgs[seq]; !ok {
				add(agentID, "agent %s has %d messages but none numbered %d: its numbering has a gap", agentID, n, seq)
				break
			}
		}
		damaged := false
		for seq := uint64(1); seq <= n; seq++ {
			m := msgs[seq]
			if m == nil {
				damaged = true
				continue
			}
			where := fmt.Sprintf("%s/%016x", agentID, seq)
			switch {
			case m.AgentID != agentID || m.Seq != seq:
				add(agentID, "message %s is stored as %s but says agent %s, number %d", m.ID, where, m.AgentID, m.Seq)
			case s.ids[m.ID] != where && s.ids[m.ID] != damagedEntry:
				add(agentID, "message %s is stored as %s, but its id index says %q", m.ID, where, s.ids[m.ID])
			}
			if m.RunID != "" {
				switch r, ok := s.runs[m.RunID]; {
				case !ok:
					add(agentID, "message %s (%s) belongs to run %s, which has no record", m.ID, where, m.RunID)
				case r != nil && (r.AgentID != agentID || seq < r.FirstSeq || seq > r.LastSeq):
					add(agentID, "message %s (%s) of run %s lies outside the run's messages %d..%d of agent %s", m.ID, where, m.RunID, r.FirstSeq, r.LastSeq, r.AgentID)
				}
			}
		}
		if damaged {
			continue
		}
		// Tool calls and their results.
		for seq := uint64(1); seq <= n; seq++ {
			m := msgs[seq]
			switch m.Role {
			case "tool":
				add(agentID, "tool result %s (message %d of agent %s, call %s) follows no assistant message", m.ID, seq, agentID, m.ToolCallID)
			case "assistant":
				answered := map[string]int{}
				next := seq + 1
				for ; next <= n && msgs[next].Role == "tool"; next++ {
					r := msgs[next]
					found := false
					for _, tc := range m.ToolCalls {
						found = found || tc.ID == r.ToolCallID
					}
					if !found {
						add(agentID, "tool result %s (message %d of agent %s) answers call %s, which assistant message %s (message %d) did not make", r.ID, next, agentID, r.ToolCallID, m.ID, seq)
					}
					answered[r.ToolCallID]++
				}
				for _, tc := range m.ToolCalls {
					if tc.Client {
						continue // waits for the client's result
					}
					if a := answered[tc.ID]; a != 1 {
						add(agentID, "tool call %s of assistant message %s (message %d of agent %s) has %d results after it: a step was committed in pieces", tc.ID, m.ID, seq, agentID, a)
					}
				}
				seq = next - 1
			}
		}
	}
	for _, id := range sortedKeys(s.ids) {
		if s.ids[id] == damagedEntry {
			continue
		}
		agentID, hex, _ := strings.Cut(s.ids[id], "/")
		var seq uint64
		fmt.Sscanf(hex, "%016x", &seq)
		m, ok := s.msgs[agentID][seq]
		switch {
		case !ok:
			add(agentID, "the id index names message %s as %s, which is not stored", id, s.ids[id])
		case m != nil && m.ID != id:
			add(agentID, "the id index names message %s as %s, which is message %s", id, s.ids[id], m.ID)
		}
	}
	for _, agentID := range sortedKeys(s.keys) {
		if !agentExists(agentID) {
			add(agentID, "agent %s has no record, but its answered otids and keys remain", agentID)
			continue
		}
		for _, runID := range s.keys[agentID] {
			switch r, ok := s.runs[runID]; {
			case !ok:
				add(agentID, "an answered otid or key of agent %s names run %s, which has no record", agentID, runID)
			case r != nil && r.AgentID != agentID:
				add(agentID, "an answered otid or key of agent %s names run %s of agent %s", agentID, runID, r.AgentID)
			}
		}
	}
	for _, agentID := range sortedKeys(s.active) {
		runID := s.active[agentID]
		switch r, ok := s.runs[runID]; {
		case !agentExists(agentID):
			add(agentID, "agent %s has no record, but its turn in progress (run %s) remains", agentID, runID)
		case !ok:
			add(agentID, "the turn in progress of agent %s is run %s, which has no record", agentID, runID)
		case r != nil && (r.AgentID != agentID || r.Status != "running" && r.Status != "created"):
			add(agentID, "the turn in progress of agent %s is run %s, which is %s (agent %s)", agentID, runID, r.Status, r.AgentID)
		}
	}
	return out
}
