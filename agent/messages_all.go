package agent

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/kelpie/kelpie/agent/message"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// MaxAgentsScannedForMessages bounds the agents a listing of every
// agent's messages reads: messages have no index across agents, so the
// listing reads each agent's newest (or oldest) ones and merges them.
const MaxAgentsScannedForMessages = 1000

// msgPos orders messages across agents: by time, then agent, then number.
type msgPos struct {
	at    time.Time
	agent string
	seq   uint64
}

func (a msgPos) compare(b msgPos) int {
	if c := a.at.Compare(b.at); c != 0 {
		return c
	}
	if c := strings.Compare(a.agent, b.agent); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}

func posOf(m *schema.Message) msgPos { return msgPos{m.CreatedAt, m.AgentID, m.Seq} }

// ListAll lists messages across agents (Letta's GET /v1/messages), newest
// first by default; convID narrows it to one conversation. Cursors are
// message ids. Only the first MaxAgentsScannedForMessages agents (by
// creation) are read.
func (s *Messages) ListAll(ctx context.Context, convID string, p letta.Page) ([]letta.Message, error) {
	if convID != "" {
		if err := letta.CheckID("conversation_id", "conv", convID); err != nil {
			return nil, err
		}
		var agentID string
		err := s.c.read(ctx, func(txn kv.Txn) error {
			conv, err := schema.GetConversation(txn, convID)
			if err == nil {
				agentID = conv.AgentID
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		return s.List(ctx, agentID, MessageFilter{ConversationID: convID}, p)
	}
	p, err := checkPage(p, DefaultMessageListLimit)
	if err != nil {
		return nil, err
	}
	var out []*schema.Message
	err = s.c.read(ctx, func(txn kv.Txn) error {
		after, before, err := cursors(txn, p)
		if err != nil {
			return err
		}
		desc := p.Order == letta.Desc
		// in reports whether m lies after the page's start and before its
		// end, in the listing's order.
		in := func(m *schema.Message) bool {
			pos := posOf(m)
			if desc {
				return (after == nil || pos.compare(*after) < 0) && (before == nil || pos.compare(*before) > 0)
			}
			return (after == nil || pos.compare(*after) > 0) && (before == nil || pos.compare(*before) < 0)
		}
		agents := 0
		return kv.ScanEach(txn, kv.PrefixRange([]byte(schema.AgentIndex.Prefix)), false, func(e kv.KeyValue) (bool, error) {
			agents++
			n := 0
			err := kv.ScanEach(txn, kv.PrefixRange(schema.MessagesOf(schema.LastPart(e.Key))), desc, func(v kv.KeyValue) (bool, error) {
				m, err := schema.DecodeMessage(v.Value)
				if err != nil {
					return false, err
				}
				if message.Shown(m) && in(m) {
					out = append(out, m)
					n++
				}
				return n < p.Limit, nil
			})
			return agents < MaxAgentsScannedForMessages, err
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *schema.Message) int {
		if p.Order == letta.Desc {
			return posOf(b).compare(posOf(a))
		}
		return posOf(a).compare(posOf(b))
	})
	return message.RenderAll(out[:min(len(out), p.Limit)]), nil
}

// cursors reads the positions of a page's cursor messages (nil: none, or
// an unknown id, which is ignored as Letta does).
func cursors(txn kv.Txn, p letta.Page) (after, before *msgPos, err error) {
	at := func(id string) (*msgPos, error) {
		if id == "" || !letta.ValidID("message", id) {
			return nil, nil
		}
		agentID, seq, err := schema.LocateMessage(txn, id)
		if letta.KindOf(err) == letta.KindNotFound {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		m, err := schema.GetMessage(txn, agentID, seq)
		if err != nil {
			return nil, err
		}
		pos := posOf(m)
		return &pos, nil
	}
	if after, err = at(p.After); err != nil {
		return nil, nil, err
	}
	before, err = at(p.Before)
	return after, before, err
}
