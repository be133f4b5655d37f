package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
)

// Encode is the encoding of every record (and of every actor result): JSON
// without HTML escaping, so stored values are the size of what the client
// sent.
func Encode(v any) ([]byte, error) {
	var out []byte
	err := EncodeTo(v, func(data []byte) error {
		// One allocation of the encoding's size: the buffer stays with
		// the encoder, instead of growing from nothing for every record.
		out = bytes.Clone(data)
		return nil
	})
	return out, err
}

// EncodeTo encodes v as Encode does and hands the encoding to use, which
// must not keep it: it is the pooled encoder's buffer.
func EncodeTo(v any, use func([]byte) error) error {
	e := encoders.Get().(*encoder)
	if err := e.enc.Encode(v); err != nil {
		return err // e is dropped: an encoder that failed is not reused
	}
	err := use(bytes.TrimSuffix(e.buf.Bytes(), []byte("\n")))
	if e.buf.Cap() <= maxPooledBytes {
		e.buf.Reset()
		encoders.Put(e)
	}
	return err
}

// encoder is a json.Encoder (without HTML escaping) writing into buf.
type encoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var encoders = sync.Pool{New: func() any {
	e := &encoder{}
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}}

// Decode decodes a record or payload encoded by Encode into v. Numbers in
// untyped fields (metadata, say) stay exact: a large integer keeps every
// digit through storage and back.
func Decode(data []byte, v any) error {
	d := decoders.Get().(*decoder)
	d.r.Reset(data)
	d.fed += int64(len(data))
	err := d.dec.Decode(v)
	// A decoder is reused only in the state a new one starts in: no error
	// (it keeps one), nothing left unread (after a value followed by more
	// data, which Decode ignores as it always has), and a buffer of
	// ordinary size.
	if err == nil && d.dec.InputOffset() == d.fed && len(data) <= maxPooledBytes {
		decoders.Put(d)
	}
	return err
}

// decoder is a json.Decoder reading whatever r is reset to: reused, it
// keeps its buffer, which a new one allocates and grows for every record.
type decoder struct {
	r   bytes.Reader
	fed int64 // bytes given to dec in all
	dec *json.Decoder
}

var decoders = sync.Pool{New: func() any {
	d := &decoder{}
	d.dec = json.NewDecoder(&d.r)
	d.dec.UseNumber()
	return d
}}

// maxPooledBytes is the largest record after which a decoder or an
// encoder is reused, in bytes: its buffer grows to the record's size, and
// a rare large record should not keep that memory.
const maxPooledBytes = 64 << 10

// Missing records are the client's "not found", with Letta's messages.
var (
	ErrAgentNotFound = &letta.Error{Kind: letta.KindNotFound, Message: "Agent not found"}
	ErrBlockNotFound = &letta.Error{Kind: letta.KindNotFound, Message: "Block not found"}
)

// decode decodes a record of type R; what names it in errors.
func decode[R any](data []byte, what string) (*R, error) {
	var r R
	if err := Decode(data, &r); err != nil {
		return nil, fmt.Errorf("decode %s: %w", what, err)
	}
	return &r, nil
}

// get reads and decodes the record at key, or returns missing.
func get[R any](txn kv.Txn, key []byte, what string, missing error) (*R, error) {
	data, err := txn.Get(key)
	if errors.Is(err, kv.ErrNotFound) {
		return nil, missing
	}
	if err != nil {
		return nil, err
	}
	return decode[R](data, what)
}

func put(txn kv.Txn, key []byte, rec any) error {
	// Set copies the value: it can take the encoder's buffer.
	return EncodeTo(rec, func(data []byte) error { return txn.Set(key, data) })
}

// DecodeAgent decodes an agent record (an agent actor's state). The
// result is the caller's own.
func DecodeAgent(data []byte) (*Agent, error) {
	return decodeCached(decodedAgents, data, "agent record", (*Agent).clone)
}

// GetAgent returns the record of an agent, or ErrAgentNotFound.
func GetAgent(txn kv.Txn, agentID string) (*Agent, error) {
	data, err := agentRecord(txn, agentID)
	if err != nil {
		return nil, err
	}
	return decodeCached(decodedAgents, data, "agent "+agentID, (*Agent).clone)
}

// agentRecord reads the stored record of an agent, or ErrAgentNotFound.
func agentRecord(txn kv.Txn, agentID string) ([]byte, error) {
	data, err := txn.Get(AgentKey(agentID))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, ErrAgentNotFound
	}
	return data, err
}

// GetBlock returns a block, or ErrBlockNotFound. The result is the
// caller's own.
func GetBlock(txn kv.Txn, blockID string) (*Block, error) {
	data, err := txn.Get(BlockKey(blockID))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, ErrBlockNotFound
	}
	if err != nil {
		return nil, err
	}
	return decodeCached(decodedBlocks, data, "block "+blockID, (*Block).clone)
}

// PutBlock writes a block's record.
func PutBlock(txn kv.Txn, b *Block) error { return put(txn, BlockKey(b.ID), b) }

// CreateBlock writes a new block's record, its index entry and its share
// of the count of blocks (DeleteBlock undoes all three).
func CreateBlock(txn kv.Txn, b *Block) error {
	if err := putNewBlock(txn, b); err != nil {
		return err
	}
	return addCount(txn, CountedBlocks, b.ID, 1)
}

// CreateMintedBlock is CreateBlock for a block whose id was just minted at
// random, which no block ever had: so its count delta cannot exist either,
// and is written without reading it first; or, with counts (those of the
// minted agent's create that makes the block), not written: the block is
// counted with the agent (IndexMintedAgent).
func CreateMintedBlock(txn kv.Txn, b *Block, counts *MintedCounts) error {
	if err := putNewBlock(txn, b); err != nil {
		return err
	}
	if counts != nil {
		counts.add(CountedBlocks, b.ID)
		return nil
	}
	return setNewDelta(txn, CountDeltaKey(CountedBlocks, b.ID), 1)
}

// putNewBlock writes a new block's record and its index entry.
func putNewBlock(txn kv.Txn, b *Block) error {
	if err := PutBlock(txn, b); err != nil {
		return err
	}
	return txn.Set(IndexKey(BlockIndex.Prefix, b.CreatedAt, b.ID), nil)
}

// GetRun returns a run, or a not-found error.
func GetRun(txn kv.Txn, runID string) (*Run, error) {
	return get[Run](txn, RunKey(runID), "run "+runID, letta.NotFoundf("Run %s not found", runID))
}

// PutRun writes a run's record.
func PutRun(txn kv.Txn, r *Run) error { return put(txn, RunKey(r.ID), r) }

// GetConversation returns a conversation, or a not-found error.
func GetConversation(txn kv.Txn, convID string) (*Conversation, error) {
	return get[Conversation](txn, ConversationKey(convID), "conversation "+convID,
		letta.NotFoundf("Conversation %s not found", convID))
}

// GetAgentConversation returns a conversation of an agent, or a not-found
// error (also when the conversation is another agent's).
func GetAgentConversation(txn kv.Txn, agentID, convID string) (*Conversation, error) {
	c, err := GetConversation(txn, convID)
	if err != nil {
		return nil, err
	}
	if c.AgentID != agentID {
		return nil, letta.NotFoundf("Conversation %s not found", convID)
	}
	return c, nil
}

// PutConversation writes a conversation's record.
func PutConversation(txn kv.Txn, c *Conversation) error { return put(txn, ConversationKey(c.ID), c) }

// GetMessage returns message seq of an agent, which must exist.
func GetMessage(txn kv.Txn, agentID string, seq uint64) (*Message, error) {
	data, err := txn.Get(MessageKey(agentID, seq))
	if err != nil {
		return nil, fmt.Errorf("message %d of %s: %w", seq, agentID, err)
	}
	return DecodeMessage(data)
}

// AppendMessage stores m as message m.Seq of its agent, with its id index,
// its entry in its context (but a summary, which the context names itself)
// and, if it belongs to one, its conversation's index entry. A system
// message stored here is an input in the context (Letta's system-role
// MessageCreate); a context's own system prompt is stored by
// AppendSystemPrompt.
func AppendMessage(txn kv.Txn, m *Message) error {
	return appendMessage(txn, m, m.Role != RoleSummary)
}

// AppendSystemPrompt is AppendMessage for the system message a context
// names as its own (Context.SystemID): it has no entry in the context's
// index, as the context renders it first by itself.
func AppendSystemPrompt(txn kv.Txn, m *Message) error {
	if m.Role != RoleSystem {
		return fmt.Errorf("message %s: a system prompt must have role %s, not %q", m.ID, RoleSystem, m.Role)
	}
	return appendMessage(txn, m, false)
}

func appendMessage(txn kv.Txn, m *Message, inIndex bool) error {
	if err := put(txn, MessageKey(m.AgentID, m.Seq), m); err != nil {
		return err
	}
	if err := txn.Set(MessageIDKey(m.ID), messageLocation(m.AgentID, m.Seq)); err != nil {
		return err
	}
	if inIndex {
		if err := txn.Set(ContextMessageKey(ContextOwner(m), m.Seq), []byte(m.ID)); err != nil {
			return err
		}
	}
	if m.ConversationID != "" {
		return txn.Set(ConversationMessageKey(m.ConversationID, m.Seq), nil)
	}
	return nil
}

// LocateMessage returns the agent and sequence number of a message, or a
// not-found error.
func LocateMessage(txn kv.Txn, messageID string) (agentID string, seq uint64, err error) {
	v, err := txn.Get(MessageIDKey(messageID))
	if errors.Is(err, kv.ErrNotFound) {
		return "", 0, letta.NotFoundf("Message %s not found", messageID)
	}
	if err != nil {
		return "", 0, err
	}
	return parseMessageLocation(v)
}

// LastSeq returns the highest message sequence number of an agent, 0 if it
// has no messages.
func LastSeq(txn kv.Txn, agentID string) (uint64, error) {
	kvs, err := txn.Scan(kv.PrefixRange(MessagesOf(agentID)), 1, true)
	if err != nil || len(kvs) == 0 {
		return 0, err
	}
	return SeqOf(kvs[0].Key)
}

// DecodePassage decodes a stored passage.
func DecodePassage(data []byte) (*Passage, error) { return decode[Passage](data, "passage") }

// PutPassage writes a new passage, its id index, its word index and its
// share of its owner's counts (IndexPassage).
func PutPassage(txn kv.Txn, p *Passage) error {
	k := PassageKey(p.Owner(), p.Seq, p.ID)
	if err := put(txn, k, p); err != nil {
		return err
	}
	if err := IndexPassage(txn, p, 1); err != nil {
		return err
	}
	return txn.Set(PassageIDKey(p.ID), k)
}

// Attach links a block to an agent in both directions, at the agent's next
// block position.
func Attach(txn kv.Txn, a *Agent, blockID string) error {
	pos := a.NextBlockPosition
	a.NextBlockPosition++
	if err := txn.Set(AttachmentKey(a.ID, blockID), strconv.AppendInt(nil, pos, 10)); err != nil {
		return err
	}
	return txn.Set(BlockAgentKey(blockID, a.ID), nil)
}

// Detach removes both directions of an attachment.
func Detach(txn kv.Txn, agentID, blockID string) error {
	if err := txn.Delete(AttachmentKey(agentID, blockID)); err != nil {
		return err
	}
	return txn.Delete(BlockAgentKey(blockID, agentID))
}

// AttachmentPosition decodes the value of an attachment key.
func AttachmentPosition(key, value []byte) (int64, error) {
	pos, err := strconv.ParseInt(string(value), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("attachment %q: bad position: %w", key, err)
	}
	return pos, nil
}

// Dangling reports a reference (an index entry, an attachment) whose target
// is missing or unreadable. References change in the same transactions as
// their targets, so this is a fault inside the server, never the client's
// "not found": the error's kind is dropped.
func Dangling(err error, format string, args ...any) error {
	if letta.KindOf(err) != 0 {
		return fmt.Errorf(format+": broken reference: %v", append(args, err)...)
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// PutMessage rewrites a stored message in place (a recompiled system
// message): its number, id and conversation do not change.
func PutMessage(txn kv.Txn, m *Message) error { return put(txn, MessageKey(m.AgentID, m.Seq), m) }

// MessageHead is the head of a stored message: what listing a context's
// message ids needs.
type MessageHead struct {
	ID, ConversationID, Role string
}

// ReadMessageHead reads the head of a stored message from the start of its
// encoding (see Message: its id, agent, number, conversation and role come
// first, in that order, and none holds a character JSON escapes), without
// decoding the rest; ok is false for an encoding it cannot read so (one
// stored before that order), which the caller decodes whole.
func ReadMessageHead(data []byte) (h MessageHead, ok bool) {
	rest := data
	field := func(prefix string, quoted bool) (string, bool) {
		if !bytes.HasPrefix(rest, []byte(prefix)) {
			return "", false
		}
		rest = rest[len(prefix):]
		end := bytes.IndexByte(rest, ',')
		if quoted {
			end = bytes.IndexByte(rest, '"')
		}
		if end < 0 {
			return "", false
		}
		v := rest[:end]
		if bytes.IndexByte(v, '\\') >= 0 {
			return "", false
		}
		rest = rest[end:]
		if quoted {
			rest = rest[1:]
		}
		return string(v), true
	}
	var ok1, ok2, ok3, ok4, ok5 bool
	h.ID, ok1 = field(`{"id":"`, true)
	_, ok2 = field(`,"agent_id":"`, true)
	_, ok3 = field(`,"seq":`, false)
	h.ConversationID, ok4 = field(`,"conversation_id":"`, true)
	h.Role, ok5 = field(`,"role":"`, true)
	return h, ok1 && ok2 && ok3 && ok4 && ok5
}

// EvictContext removes from owner's context the entries of its messages
// numbered from up to (not including) to; to 0 means all. The messages
// stay stored.
func EvictContext(txn kv.Txn, owner string, from, to uint64) error {
	r := kv.PrefixRange(ContextMessagesOf(owner))
	r.Start = ContextMessageKey(owner, from)
	if to > 0 {
		r.End = ContextMessageKey(owner, to)
	}
	kvs, err := txn.Scan(r, 0, false)
	if err != nil {
		return err
	}
	for _, p := range kvs {
		if err := txn.Delete(p.Key); err != nil {
			return err
		}
	}
	return nil
}
