package loop

import (
	"sync"

	"github.com/kelpie/kelpie/agent/window"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/schema"
)

// historyCacheBytes bounds the text of the messages a historyCache keeps,
// in bytes (their records take about as much again).
const historyCacheBytes = 32 << 20

// historyCache keeps the decoded messages of the contexts turns read, so
// that a turn reads from storage only its context's index and the messages
// added since the agent's last turn, not its whole history again: a context
// is mostly appended to.
//
// A message is kept by its agent, number and id, which the context's index
// names. What a request shows of a stored message (role, text, content,
// tool calls, the call it answers, its run) never changes under one id:
// the only rewrite in place of a message in a context marks its calls
// running (ops.go), and a context's system message and summary, which are
// recompiled in place, are not in its index. A message that is deleted
// and replaced takes a new id. A message read in a transaction that then
// failed is kept too: its retry stores the same message, and anything else
// stored at its number has another id.
//
// Kept messages are shared by every reader: none may change one. Two
// generations bound its size, as schema's decode caches do. They keep
// messages by agent, then by number, and a kept message is used only
// under the id the index names: one map lookup per message of a context,
// by number, costs less than one by a key of strings.
type historyCache struct {
	mu        sync.Mutex
	cur, prev map[string]map[uint64]*schema.Message
	curBytes  int
}

func newHistoryCache() *historyCache {
	return &historyCache{cur: map[string]map[uint64]*schema.Message{}}
}

// messages is window.Messages, reading only the messages not kept.
func (c *historyCache) messages(txn kv.Txn, o window.Owner) ([]*schema.Message, error) {
	if !o.Context().Indexed {
		return window.Messages(txn, o)
	}
	seqs, ids, err := window.Indexed(txn, o)
	if err != nil {
		return nil, err
	}
	agentID := o.AgentID()
	out := make([]*schema.Message, len(seqs))
	var missing []uint64
	c.mu.Lock()
	cur, prev := c.cur[agentID], c.prev[agentID]
	for i, seq := range seqs {
		if m := cur[seq]; m != nil && m.ID == ids[i] {
			out[i] = m
		} else if m := prev[seq]; m != nil && m.ID == ids[i] {
			out[i] = m
			c.addLocked(agentID, m)
		} else {
			missing = append(missing, seq)
		}
	}
	c.mu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	read, err := window.ReadMessages(txn, agentID, missing)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	j := 0
	for i := range out {
		if out[i] == nil {
			out[i] = read[j]
			j++
			c.addLocked(agentID, out[i])
		}
	}
	return out, nil
}

// keep keeps messages of agentID that a turn's operation stored (or is
// storing: see historyCache), so that the turn's next context does not
// read them back. None may change them since.
func (c *historyCache) keep(agentID string, ms []*schema.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range ms {
		c.addLocked(agentID, m)
	}
}

// addLocked keeps m, in place of another message kept at its number.
func (c *historyCache) addLocked(agentID string, m *schema.Message) {
	n := len(m.Text) + len(m.Content) + len(m.Reasoning) + 256
	for _, tc := range m.ToolCalls {
		n += len(tc.Arguments)
	}
	if c.curBytes+n > historyCacheBytes/2 {
		c.prev, c.cur, c.curBytes = c.cur, map[string]map[uint64]*schema.Message{}, 0
	}
	kept := c.cur[agentID]
	if kept == nil {
		kept = map[uint64]*schema.Message{}
		c.cur[agentID] = kept
	}
	if was := kept[m.Seq]; was == nil || was.ID != m.ID {
		kept[m.Seq] = m
		c.curBytes += n
	}
}
