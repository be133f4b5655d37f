package message

import (
	"slices"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// At reads the message a listing key names: a conversation index entry
// (convID set) points into the agent's messages; an agent's history key
// holds the message itself.
func At(txn kv.Txn, agentID, convID string, p kv.KeyValue) (*schema.Message, error) {
	if convID == "" {
		return schema.DecodeMessage(p.Value)
	}
	seq, err := schema.SeqOf(p.Key)
	if err != nil {
		return nil, err
	}
	return schema.GetMessage(txn, agentID, seq)
}

// HistoryOf is the prefix whose keys list a conversation's messages in
// order, or all of an agent's when convID is empty.
func HistoryOf(agentID, convID string) []byte {
	if convID != "" {
		return schema.ConversationMessagesOf(convID)
	}
	return schema.MessagesOf(agentID)
}

// List returns one page of an agent's stored messages in listing order
// (p.Order), or of one conversation's when convID is set; defaultOnly
// keeps only those of no conversation. Messages that show nothing (see
// Shown) are left out, so that they do not count toward the page's limit:
// a short page means the listing ended. Cursors are message ids; an
// unknown one is ignored, as Letta does.
func List(txn kv.Txn, agentID, convID string, defaultOnly bool, p letta.Page) ([]*schema.Message, error) {
	keyOf := func(id string) ([]byte, error) {
		if id == "" {
			return nil, nil
		}
		owner, seq, err := schema.LocateMessage(txn, id)
		if letta.KindOf(err) == letta.KindNotFound || err == nil && owner != agentID {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if convID != "" {
			return schema.ConversationMessageKey(convID, seq), nil
		}
		return schema.MessageKey(agentID, seq), nil
	}
	after, err := keyOf(p.After)
	if err != nil {
		return nil, err
	}
	before, err := keyOf(p.Before)
	if err != nil {
		return nil, err
	}
	desc := p.Order == letta.Desc
	var out []*schema.Message
	size := 0
	err = kv.ScanEach(txn, schema.Window(HistoryOf(agentID, convID), after, before, desc), desc, func(kvp kv.KeyValue) (bool, error) {
		m, err := At(txn, agentID, convID, kvp)
		if err != nil {
			return false, err
		}
		if convID == "" && defaultOnly && m.ConversationID != "" || !Shown(m) {
			return true, nil
		}
		out, size = append(out, m), size+Size(m)
		return !p.Full(len(out), size), nil
	})
	return out, err
}

// Size is about what a stored message takes shown: its text, reasoning,
// content and tool calls, and its fields.
func Size(m *schema.Message) int {
	n := 256 + len(m.Text) + len(m.Reasoning) + len(m.Content)
	for _, tc := range m.ToolCalls {
		n += 256 + len(tc.Arguments)
	}
	return n
}

// Show renders stored messages given in listing order. Descending, the
// whole rendering is reversed (each message's parts too), as Letta does.
func Show(ms []*schema.Message, order letta.Order) []letta.Message {
	if order != letta.Desc {
		return RenderAll(ms)
	}
	oldestFirst := slices.Clone(ms)
	slices.Reverse(oldestFirst)
	out := RenderAll(oldestFirst)
	slices.Reverse(out)
	return out
}

// OfRun returns every stored message of a run, oldest first.
func OfRun(txn kv.Txn, run *schema.Run) ([]*schema.Message, error) {
	if run.FirstSeq == 0 {
		return nil, nil
	}
	r := kv.Range{Start: schema.MessageKey(run.AgentID, run.FirstSeq), End: schema.MessageKey(run.AgentID, run.LastSeq+1)}
	kvs, err := txn.Scan(r, 0, false)
	if err != nil {
		return nil, err
	}
	out := make([]*schema.Message, 0, len(kvs))
	for _, p := range kvs {
		m, err := schema.DecodeMessage(p.Value)
		if err != nil {
			return nil, err
		}
		if m.RunID == run.ID {
			out = append(out, m)
		}
	}
	return out, nil
}

// Page applies a page (cursors by message id) to stored messages given
// oldest first, and renders it.
func Page(ms []*schema.Message, p letta.Page) []letta.Message {
	ordered := slices.DeleteFunc(slices.Clone(ms), func(m *schema.Message) bool { return !Shown(m) })
	if p.Order == letta.Desc {
		slices.Reverse(ordered)
	}
	pos := map[string]int{}
	for i, m := range ordered {
		pos[m.ID] = i
	}
	var sel []*schema.Message
	size := 0
	for i, m := range ordered {
		if a, ok := pos[p.After]; ok && i <= a {
			continue
		}
		if b, ok := pos[p.Before]; ok && i >= b {
			continue
		}
		if sel, size = append(sel, m), size+Size(m); p.Full(len(sel), size) {
			break
		}
	}
	return Show(sel, p.Order)
}
