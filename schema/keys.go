package schema

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/kv"
)

// The actor namespaces of agents and of standalone block operations.
const (
	AgentNamespace = "agents"
	BlockNamespace = "blocks"
)

// AgentActor is the actor of an agent.
func AgentActor(agentID string) actor.ID { return actor.ID{Namespace: AgentNamespace, Key: agentID} }

// BlockActor is the actor that serialises standalone operations on a block.
func BlockActor(blockID string) actor.ID { return actor.ID{Namespace: BlockNamespace, Key: blockID} }

// AgentKey is where an agent's record is: its actor's state.
func AgentKey(agentID string) []byte { return actor.StateKey(AgentActor(agentID)) }

// BlockKey is where a block's record is.
func BlockKey(blockID string) []byte { return []byte(Blocks.Prefix + blockID) }

// AttachmentKey and BlockAgentKey record that a block is attached to an
// agent, from each side; AttachmentsOf and BlockAgentsOf prefix every one of
// an agent's or a block's.
func AttachmentKey(agentID, blockID string) []byte { return join(Attachments, agentID, blockID) }
func AttachmentsOf(agentID string) []byte          { return join(Attachments, agentID, "") }
func BlockAgentKey(blockID, agentID string) []byte { return join(BlockAgents, blockID, agentID) }
func BlockAgentsOf(blockID string) []byte          { return join(BlockAgents, blockID, "") }

// IndexKey is the key of id in an index by creation time under prefix. Hex
// of the nanosecond Unix time keeps byte order equal to time order for
// every date after 1970; the id breaks ties.
func IndexKey(prefix string, created time.Time, id string) []byte {
	k := make([]byte, 0, len(prefix)+17+len(id))
	k = appendHex16(append(k, prefix...), uint64(created.UnixNano()))
	return append(append(k, '/'), id...)
}

// appendHex16 appends v as 16 hex digits, as %016x formats it, without
// fmt: keys of a create are made with it.
func appendHex16(b []byte, v uint64) []byte {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], v)
	return hex.AppendEncode(b, n[:])
}

// AgentConversationsOf prefixes the index of an agent's conversations (an
// index by creation time, see IndexKey).
func AgentConversationsOf(agentID string) string { return AgentConversations.Prefix + agentID + "/" }

// MessageKey is where message seq of an agent is; MessagesOf prefixes them
// all, in order.
func MessageKey(agentID string, seq uint64) []byte {
	k := make([]byte, 0, len(Messages.Prefix)+len(agentID)+17)
	k = append(append(append(k, Messages.Prefix...), agentID...), '/')
	return appendHex16(k, seq)
}
func MessagesOf(agentID string) []byte { return join(Messages, agentID, "") }

// MessageIDKey is the key that locates a message by its id.
func MessageIDKey(messageID string) []byte { return []byte(MessageIDs.Prefix + messageID) }

// ConversationMessageKey records that an agent's message seq belongs to a
// conversation; ConversationMessagesOf prefixes a conversation's, in order.
func ConversationMessageKey(convID string, seq uint64) []byte {
	return fmt.Appendf(nil, "%s%s/%016x", ConversationMessages.Prefix, convID, seq)
}
func ConversationMessagesOf(convID string) []byte { return join(ConversationMessages, convID, "") }

// ContextMessageKey records that an agent's message seq is in the context
// of owner (the agent, for its default conversation, or a conversation);
// ContextMessagesOf prefixes a context's, in order.
func ContextMessageKey(owner string, seq uint64) []byte {
	return fmt.Appendf(nil, "%s%s/%016x", ContextMessages.Prefix, owner, seq)
}
func ContextMessagesOf(owner string) []byte { return join(ContextMessages, owner, "") }

// TurnKey records that an otid or Idempotency-Key of an agent was answered.
func TurnKey(agentID, key string) []byte {
	return fmt.Appendf(nil, "%s%s/%x", TurnKeys.Prefix, agentID, sha256.Sum256([]byte(key)))
}
func TurnKeysOf(agentID string) []byte { return join(TurnKeys, agentID, "") }

// ActiveRunKey names an agent's turn in progress.
func ActiveRunKey(agentID string) []byte { return []byte(ActiveRuns.Prefix + agentID) }

// RunKey is where a run's record is; AgentRunKey lists it among its
// agent's runs.
func RunKey(runID string) []byte               { return []byte(Runs.Prefix + runID) }
func AgentRunKey(agentID, runID string) []byte { return join(AgentRuns, agentID, runID) }
func AgentRunsOf(agentID string) []byte        { return join(AgentRuns, agentID, "") }

// ConversationKey is where a conversation's record is.
func ConversationKey(convID string) []byte { return []byte(Conversations.Prefix + convID) }

// PassageKey is where a passage is; PassagesOf prefixes an agent's, in
// insertion order.
func PassageKey(agentID string, seq uint64, passageID string) []byte {
	return fmt.Appendf(nil, "%s%s/%016x/%s", Passages.Prefix, agentID, seq, passageID)
}
func PassagesOf(agentID string) []byte { return join(Passages, agentID, "") }

// PassageIDKey is the key that locates a passage by its id.
func PassageIDKey(passageID string) []byte { return []byte(PassageIDs.Prefix + passageID) }

func join(f *Family, owner, rest string) []byte { return []byte(f.Prefix + owner + "/" + rest) }

// LastPart returns what follows the last "/" of a key: the id at the end of
// an index, attachment or passage key.
func LastPart(key []byte) string {
	s := string(key)
	return s[strings.LastIndexByte(s, '/')+1:]
}

// SeqOf returns the sequence number at the end of a message or
// conversation-message key.
func SeqOf(key []byte) (uint64, error) {
	seq, err := strconv.ParseUint(LastPart(key), 16, 64)
	if err != nil {
		return 0, fmt.Errorf("key %q has no sequence number: %w", key, err)
	}
	return seq, nil
}

// messageLocation is the value of a message-id key.
func messageLocation(agentID string, seq uint64) []byte {
	return fmt.Appendf(nil, "%s/%016x", agentID, seq)
}

// parseMessageLocation reads a message-id key's value.
func parseMessageLocation(v []byte) (agentID string, seq uint64, err error) {
	agentID, hex, ok := strings.Cut(string(v), "/")
	if ok {
		seq, err = strconv.ParseUint(hex, 16, 64)
	}
	if !ok || err != nil || len(hex) != 16 {
		return "", 0, fmt.Errorf("message location %q is not <agent-id>/<seq, 16 hex>", v)
	}
	return agentID, seq, nil
}

// Window is the range of keys under prefix strictly between two listing
// cursors (the keys of the items named by a page's after and before; nil
// for none). In descending order after is the upper bound.
func Window(prefix, after, before []byte, desc bool) kv.Range {
	r := kv.PrefixRange(prefix)
	lower, upper := after, before
	if desc {
		lower, upper = before, after
	}
	if lower != nil {
		r.Start = append(lower[:len(lower):len(lower)], 0) // just past lower
	}
	if upper != nil {
		r.End = upper
	}
	return r
}
