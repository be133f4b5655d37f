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
// generations bound its size, as schema's decode caches do.
type historyCache struct {
	mu        sync.Mutex
	cur, prev map[historyKey]*schema.Message
	curBytes  int
}

type historyKey struct {
	agentID string
	seq     uint64
	id      string
}

func newHistoryCache() *historyCache {
	return &historyCache{cur: map[historyKey]*schema.Message{}}
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
	for i, seq := range seqs {
		if out[i] = c.getLocked(historyKey{agentID, seq, ids[i]}); out[i] == nil {
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
			m := read[j]
			j++
			out[i] = m
			c.addLocked(historyKey{agentID, m.Seq, m.ID}, m)
		}
	}
	return out, nil
}

func (c *historyCache) getLocked(k historyKey) *schema.Message {
	if m, ok := c.cur[k]; ok {
		return m
	}
	m, ok := c.prev[k]
	if ok {
		c.addLocked(k, m)
	}
	return m
}

func (c *historyCache) addLocked(k historyKey, m *schema.Message) {
	n := len(m.Text) + len(m.Content) + len(m.Reasoning) + 256
	for _, tc := range m.ToolCalls {
		n += len(tc.Arguments)
	}
	if c.curBytes+n > historyCacheBytes/2 {
		c.prev, c.cur, c.curBytes = c.cur, map[historyKey]*schema.Message{}, 0
	}
	if _, ok := c.cur[k]; !ok {
		c.cur[k] = m
		c.curBytes += n
	}
}
