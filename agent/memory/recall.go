package memory

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kelpie/kelpie/agent/message"
	"github.com/kelpie/kelpie/agent/prompt"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/schema"
)

// Limits of recall search.
const (
	maxRecallScan      = 10_000 // messages read, newest first
	maxRecallHitChars  = 2_000  // of each result's text
	DefaultRecallLimit = 10
	MaxRecallLimit     = 100
)

// RecallQuery is a search of an agent's past messages.
type RecallQuery struct {
	Query      string
	Roles      []string // only these roles; none: all
	Limit      int
	Start, End *time.Time
	Timezone   string // of the times shown
}

// RecallHit is one message found.
type RecallHit struct {
	Timestamp string `json:"timestamp"`
	Role      string `json:"role"`
	Content   string `json:"content"`
}

// SearchRecall searches an agent's messages (every conversation's, newest
// first, the latest maxRecallScan of them) for the query's words: messages
// with more of them rank first, newer first among equals.
func SearchRecall(txn kv.Txn, agentID string, q RecallQuery) ([]RecallHit, error) {
	words := strings.Fields(strings.ToLower(q.Query))
	var hits []scored[*schema.Message]
	scanned := 0
	err := kv.ScanEach(txn, kv.PrefixRange(schema.MessagesOf(agentID)), true, func(p kv.KeyValue) (bool, error) {
		scanned++
		m, err := schema.DecodeMessage(p.Value)
		if err != nil {
			return false, err
		}
		text := message.SearchText(m)
		if text == "" || len(q.Roles) > 0 && !slices.Contains(q.Roles, m.Role) ||
			q.Start != nil && m.CreatedAt.Before(*q.Start) || q.End != nil && m.CreatedAt.After(*q.End) {
			return scanned < maxRecallScan, nil
		}
		if score := wordsIn(text, words); score > 0 || len(words) == 0 {
			hits = append(hits, scored[*schema.Message]{m, score})
		}
		return scanned < maxRecallScan, nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(hits, func(a, b scored[*schema.Message]) int { return b.score - a.score })
	out := []RecallHit{}
	for _, h := range hits[:min(len(hits), q.Limit)] {
		text := message.SearchText(h.item)
		if utf8.RuneCountInString(text) > maxRecallHitChars {
			text = string([]rune(text)[:maxRecallHitChars]) + "…"
		}
		out = append(out, RecallHit{Timestamp: prompt.Clock(h.item.CreatedAt, q.Timezone), Role: h.item.Role, Content: text})
	}
	return out, nil
}
