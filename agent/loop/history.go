package loop

import (
	"slices"
	"sync"

	"github.com/kelpie/kelpie/agent/window"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/schema"
)

// historyCacheBytes bounds the text of the messages a historyCache keeps,
// in bytes (their records take about as much again).
const historyCacheBytes = 32 << 20

// messageOverheadBytes estimates what a kept message costs beyond its
// text: its fields, ids and the maps' entries.
const messageOverheadBytes = 256

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
//
// It keeps each context's index too, as last read, so that a context reads
// only the entries added since: entries at or after a context's start are
// never removed or renumbered (an eviction removes entries before the
// start it moves to, a reset moves it past them all), and numbers only
// grow. A kept index is used only if the last entry it holds is still
// stored under the id it names (ids are never reused): that one entry
// read again stands for those before it. An index read in a transaction
// that then failed ends with that transaction's entries, which fail that
// check unless a retry stored the same.
type historyCache struct {
	mu                sync.Mutex
	cur, prev         map[string]map[uint64]*schema.Message
	curIndex, prevIdx map[string]*keptIndex // by context owner
	curBytes          int
}

// keptIndex is a context's index as last read: never changed once kept.
type keptIndex struct {
	start uint64
	seqs  []uint64
	ids   []string
}

// bytes is about what k takes: a number, an id and their headers an
// entry.
func (k *keptIndex) bytes() int { return len(k.seqs) * 80 }

func newHistoryCache() *historyCache {
	return &historyCache{cur: map[string]map[uint64]*schema.Message{}, curIndex: map[string]*keptIndex{}}
}

// index is window.Indexed, reading only the entries added since the kept
// index of the context, when there is one.
func (c *historyCache) index(txn kv.Txn, o window.Owner) (seqs []uint64, ids []string, err error) {
	owner, start := o.ID(), o.Context().Start
	c.mu.Lock()
	k := c.curIndex[owner]
	if k == nil {
		k = c.prevIdx[owner]
	}
	c.mu.Unlock()
	if k != nil && k.start <= start {
		// A start moved forward evicted entries before it only.
		i, _ := slices.BinarySearch(k.seqs, start)
		seqs, ids = k.seqs[i:], k.ids[i:]
	}
	if len(seqs) > 0 {
		idOf := func(seq uint64, id []byte) string { return c.keptID(o.AgentID(), seq, id) }
		if seqs, ids, err = readIndexAfter(txn, owner, seqs, ids, idOf); err != nil {
			return nil, nil, err
		}
	}
	if seqs == nil {
		if seqs, ids, err = window.Indexed(txn, o); err != nil {
			return nil, nil, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if was := c.curIndex[owner]; was != nil {
		c.curBytes -= was.bytes()
	}
	k = &keptIndex{start: start, seqs: seqs, ids: ids}
	c.roomLocked(k.bytes())
	c.curIndex[owner] = k
	c.curBytes += k.bytes()
	return seqs, ids, nil
}

// keptID is id, the id the index names for message seq of agentID: the
// kept message's own string when it has that id. A kept index then shares
// its messages' ids, and messages, which compares them at every read of a
// context, finds them equal at once (at one address).
func (c *historyCache) keptID(agentID string, seq uint64, id []byte) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.cur[agentID][seq]; m != nil && m.ID == string(id) {
		return m.ID
	}
	return string(id)
}

// readIndexAfter reads the entries of owner's index from the last of a
// kept index on, and returns the kept index with those after it, at most
// window.MaxMessages (the newest): nil, and no error, if that last entry
// is not stored as kept, or if too many were added since to read them so.
// idOf makes the string of an entry's id.
func readIndexAfter(txn kv.Txn, owner string, seqs []uint64, ids []string, idOf func(uint64, []byte) string) ([]uint64, []string, error) {
	last := len(seqs) - 1
	r := kv.PrefixRange(schema.ContextMessagesOf(owner))
	r.Start = schema.ContextMessageKey(owner, seqs[last])
	entries, err := txn.Scan(r, window.MaxMessages+1, false)
	if err != nil || len(entries) == 0 || len(entries) > window.MaxMessages || string(entries[0].Value) != ids[last] {
		return nil, nil, err
	}
	if seq, err := schema.SeqOf(entries[0].Key); err != nil || seq != seqs[last] {
		return nil, nil, err
	}
	// Copies: a kept index is shared by its readers.
	seqs, ids = slices.Clip(seqs), slices.Clip(ids)
	for _, p := range entries[1:] {
		seq, err := schema.SeqOf(p.Key)
		if err != nil {
			return nil, nil, err
		}
		seqs, ids = append(seqs, seq), append(ids, idOf(seq, p.Value))
	}
	if n := len(seqs) - window.MaxMessages; n > 0 {
		seqs, ids = seqs[n:], ids[n:]
	}
	return seqs, ids, nil
}

// messages is window.Messages, reading only the messages not kept.
func (c *historyCache) messages(txn kv.Txn, o window.Owner) ([]*schema.Message, error) {
	if !o.Context().Indexed {
		return window.Messages(txn, o)
	}
	seqs, ids, err := c.index(txn, o)
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
	n := len(m.Text) + len(m.Content) + len(m.Reasoning) + messageOverheadBytes
	for _, tc := range m.ToolCalls {
		n += len(tc.Arguments)
	}
	c.roomLocked(n)
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

// roomLocked starts a new generation when n more bytes would not fit in
// this one.
func (c *historyCache) roomLocked(n int) {
	if c.curBytes+n > historyCacheBytes/2 {
		c.prev, c.cur, c.curBytes = c.cur, map[string]map[uint64]*schema.Message{}, 0
		c.prevIdx, c.curIndex = c.curIndex, map[string]*keptIndex{}
	}
}
