package agent

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/clock"
	"github.com/kelpie/kelpie/kv"
)

// Config configures a Service.
type Config struct {
	// Store holds everything. Required.
	Store kv.Store
	// Runtime configures the actor runtime; its Store is set from Store.
	Runtime actor.Config
	// Rand is the source of new ids and names; nil means crypto/rand.
	Rand io.Reader
	// DefaultModel is the model handle of agents created without one; empty
	// means such a create is rejected, as Letta does.
	DefaultModel string
	// LLM resolves model handles to providers (an *llm.Registry). nil
	// means no provider is configured: everything works but sending
	// messages, which is answered with an error saying what to configure.
	LLM LLMResolver
	// LLMRetryBackoff is the first pause before re-asking a model after a
	// transient error (rate limit, 5xx, timeout); it doubles per retry. 0
	// means DefaultLLMRetryBackoff. A provider's Retry-After wins.
	LLMRetryBackoff time.Duration
}

// Service is the agent service. Create it with NewService.
type Service struct {
	store   kv.Store
	runtime *actor.Runtime
	env     *env
	turns   *turnManager
	clock   clock.Clock
}

// NewService starts the service's actor runtime over cfg.Store.
func NewService(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("agent: Config.Store is nil")
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	e := &env{rand: cfg.Rand, defaultModel: cfg.DefaultModel}
	rc := cfg.Runtime
	rc.Store = cfg.Store
	rt, err := actor.NewRuntime(rc, map[string]actor.Behavior{
		agentNamespace: agentBehavior{env: e},
		blockNamespace: blockBehavior{},
	})
	if err != nil {
		return nil, err
	}
	clk := cfg.Runtime.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	turns := newTurnManager(cfg.LLM, cfg.DefaultModel, clk, cfg.Runtime.Logger)
	turns.retryBackoff = cfg.LLMRetryBackoff
	if turns.retryBackoff <= 0 {
		turns.retryBackoff = DefaultLLMRetryBackoff
	}
	return &Service{store: cfg.Store, runtime: rt, env: e, turns: turns, clock: clk}, nil
}

// Close cancels the turns in progress (each records that it was cancelled),
// drains in-flight operations and stops the runtime. It does not close the
// store.
func (s *Service) Close(ctx context.Context) error {
	if err := s.turns.close(ctx); err != nil {
		return err
	}
	return s.runtime.Close(ctx)
}

// Stats reports the turns running and the turn locks held: zero in both
// once every turn has ended.
func (s *Service) Stats() TurnStats { return s.turns.stats() }

type idempotencyKeyType struct{}

// WithIdempotencyKey returns a context that makes the service apply the next
// mutation at most once for key (see actor.WithIdempotencyKey).
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKeyType{}, key)
}

// invoke runs op on an actor and decodes its JSON result into out (if not
// nil). scope keeps one idempotency key from answering two different routes.
func (s *Service) invoke(ctx context.Context, id actor.ID, op string, payload any, out any) error {
	data, err := marshal(payload)
	if err != nil {
		return err
	}
	var opts []actor.InvokeOption
	if key, _ := ctx.Value(idempotencyKeyType{}).(string); key != "" {
		opts = append(opts, actor.WithIdempotencyKey(id.Namespace+"\x00"+op+"\x00"+key))
	}
	res, err := s.runtime.Invoke(ctx, id, op, data, opts...)
	if err != nil {
		if errors.Is(err, actor.ErrIdempotencyMismatch) {
			return &Error{Kind: KindInvalid, Message: "Idempotency-Key was already used for a different request"}
		}
		return err
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(res, out)
}

// newIDFor returns the id of a new entity: random, or derived from the
// request's idempotency key so that a retry finds the first attempt.
func (s *Service) newIDFor(ctx context.Context, prefix string) (string, error) {
	if key, _ := ctx.Value(idempotencyKeyType{}).(string); key != "" {
		return idForKey(prefix, key), nil
	}
	return s.env.newID(prefix)
}

// maxReadAttempts bounds how often a read is re-run when storage cannot
// certify its snapshot (a commit it overlapped was still being applied).
const maxReadAttempts = 10

// read runs fn in a read-only snapshot and certifies what it read (see
// kv.Txn.Commit), re-running it from scratch when that fails. fn must
// therefore start from nothing each time it runs.
func (s *Service) read(ctx context.Context, fn func(kv.Txn) error) error {
	for attempt := 1; ; attempt++ {
		txn, err := s.store.Begin(ctx)
		if err != nil {
			return err
		}
		if err := fn(txn); err != nil {
			txn.Discard()
			return err
		}
		err = txn.Commit(ctx)
		if !errors.Is(err, kv.ErrConflict) || attempt == maxReadAttempts {
			return err
		}
		// The overlapped commits finish with their sync; wait for one.
		select {
		case <-s.clock.After(time.Duration(attempt) * 100 * time.Microsecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// CreateAgent creates an agent with its memory blocks and returns the state
// that was committed.
func (s *Service) CreateAgent(ctx context.Context, req CreateAgentRequest) (*AgentState, error) {
	if err := checkCreateAgent(req); err != nil {
		return nil, err
	}
	id, err := s.newIDFor(ctx, "agent")
	if err != nil {
		return nil, err
	}
	var st AgentState
	if err := s.invoke(ctx, agentActor(id), opCreate, req, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

func checkCreateAgent(req CreateAgentRequest) error {
	if req.Name != nil {
		if err := checkName(*req.Name); err != nil {
			return err
		}
	}
	if req.AgentType != nil && !agentTypes[*req.AgentType] {
		return invalidf("agent_type %q is not one of Letta's agent types", clip(*req.AgentType))
	}
	if req.System != nil {
		if err := checkChars("system", *req.System, MaxSystemChars); err != nil {
			return err
		}
	}
	if req.Description != nil {
		if err := checkChars("description", *req.Description, MaxDescriptionChars); err != nil {
			return err
		}
	}
	if err := checkTags("tags", req.Tags); err != nil {
		return err
	}
	if err := checkTags("tools", req.Tools); err != nil {
		return err
	}
	if err := checkMetadata(req.Metadata); err != nil {
		return err
	}
	if err := checkBlockIDs("block_ids", req.BlockIDs); err != nil {
		return err
	}
	if n := len(req.MemoryBlocks) + len(req.BlockIDs); n > MaxBlocksPerAgent {
		return invalidf("an agent may have at most %d blocks, got %d", MaxBlocksPerAgent, n)
	}
	labels := map[string]bool{}
	for i, b := range req.MemoryBlocks {
		field := fmt.Sprintf("memory_blocks[%d]", i)
		if err := checkCreateBlock(field, b); err != nil {
			return err
		}
		if labels[*b.Label] {
			return invalidf("%s: duplicate label %q", field, *b.Label)
		}
		labels[*b.Label] = true
	}
	if err := checkModel(req.Model, req.Embedding, req.ContextWindowLimit); err != nil {
		return err
	}
	rest := req
	rest.MemoryBlocks = nil // stored apart, each under its own limits
	return checkRecordSize(rest)
}

// checkRecordSize bounds everything an agent record holds, whatever field it
// arrives in.
func checkRecordSize(req any) error {
	data, err := marshal(req)
	if err != nil {
		return invalidf("request: %v", err)
	}
	if len(data) > MaxAgentRecordBytes {
		return invalidf("agent fields total %d bytes of JSON, over the limit of %d", len(data), MaxAgentRecordBytes)
	}
	return nil
}

func checkModel(model, embedding *string, contextWindowLimit *int) error {
	if model != nil {
		if _, err := llmConfigFor(*model, nil); err != nil {
			return err
		}
	}
	if embedding != nil {
		if _, err := embeddingConfigFor(*embedding); err != nil {
			return err
		}
	}
	if c := contextWindowLimit; c != nil && (*c <= 0 || *c > MaxContextWindowSet) {
		return invalidf("context_window_limit %d is out of range: want 1 to %d tokens", *c, MaxContextWindowSet)
	}
	return nil
}

func checkMetadata(m map[string]any) error {
	if m == nil {
		return nil
	}
	data, err := marshal(m)
	if err != nil {
		return invalidf("metadata: %v", err)
	}
	if len(data) > MaxMetadataBytes {
		return invalidf("metadata is %d bytes of JSON, over the limit of %d", len(data), MaxMetadataBytes)
	}
	return nil
}

// GetAgent returns an agent; withBlocks loads its memory blocks.
func (s *Service) GetAgent(ctx context.Context, id string, withBlocks bool) (*AgentState, error) {
	if err := checkAgentID("agent_id", id); err != nil {
		return nil, err
	}
	var st *AgentState
	err := s.read(ctx, func(txn kv.Txn) (err error) {
		st, err = loadAgent(txn, id, withBlocks)
		return err
	})
	return st, err
}

func loadAgent(txn kv.Txn, id string, withBlocks bool) (*AgentState, error) {
	rec, err := readAgent(txn, id)
	if err != nil {
		return nil, err
	}
	var blocks []attachedBlock
	if withBlocks {
		if blocks, err = agentBlocks(txn, id); err != nil {
			return nil, err
		}
	}
	return renderAgent(rec, blocks), nil
}

// UpdateAgent applies a PATCH to an agent.
func (s *Service) UpdateAgent(ctx context.Context, id string, req UpdateAgentRequest) (*AgentState, error) {
	if err := checkAgentID("agent_id", id); err != nil {
		return nil, err
	}
	if err := checkUpdateAgent(req); err != nil {
		return nil, err
	}
	var st AgentState
	if err := s.invoke(ctx, agentActor(id), opUpdate, req, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

func checkUpdateAgent(req UpdateAgentRequest) error {
	if req.Name != nil {
		if err := checkName(*req.Name); err != nil {
			return err
		}
	}
	if req.System != nil {
		if err := checkChars("system", *req.System, MaxSystemChars); err != nil {
			return err
		}
	}
	if req.Description != nil {
		if err := checkChars("description", *req.Description, MaxDescriptionChars); err != nil {
			return err
		}
	}
	if req.Tags != nil {
		if err := checkTags("tags", *req.Tags); err != nil {
			return err
		}
	}
	if req.Metadata != nil {
		if err := checkMetadata(*req.Metadata); err != nil {
			return err
		}
	}
	if req.BlockIDs != nil {
		if err := checkBlockIDs("block_ids", *req.BlockIDs); err != nil {
			return err
		}
	}
	if err := checkModel(req.Model, req.Embedding, req.ContextWindowLimit); err != nil {
		return err
	}
	return checkRecordSize(req)
}

// DeleteAgent deletes an agent, its attachments and its index entry in one
// transaction. Its blocks remain.
func (s *Service) DeleteAgent(ctx context.Context, id string) error {
	if err := checkAgentID("agent_id", id); err != nil {
		return err
	}
	return s.invoke(ctx, agentActor(id), opDelete, nil, nil)
}

// Order is a listing order.
type Order string

const (
	Asc  Order = "asc"
	Desc Order = "desc"
)

// Page selects one page of a listing: exclusive cursors by id, relative to
// the listing order, and a limit (0: the route's default).
type Page struct {
	Before, After string
	Limit         int
	Order         Order
}

func (p Page) check(defaultLimit int) (Page, error) {
	switch p.Order {
	case Asc, Desc:
	default:
		return p, invalidf("order %q: want asc or desc", clip(string(p.Order)))
	}
	if p.Limit < 0 || p.Limit > MaxListLimit {
		return p, invalidf("limit %d is out of range: want 1 to %d", p.Limit, MaxListLimit)
	}
	if p.Limit == 0 {
		p.Limit = defaultLimit
	}
	return p, nil
}

// AgentFilter narrows a listing of agents.
type AgentFilter struct {
	Name         string
	Tags         []string
	MatchAllTags bool
	QueryText    string
	ProjectID    string
	WithBlocks   bool
}

func (f AgentFilter) match(rec *agentRecord) bool {
	if deref(rec.Hidden) {
		return false
	}
	if f.Name != "" && rec.Name != f.Name {
		return false
	}
	if f.QueryText != "" && !strings.Contains(strings.ToLower(rec.Name), strings.ToLower(f.QueryText)) {
		return false
	}
	if f.ProjectID != "" && deref(rec.ProjectID) != f.ProjectID {
		return false
	}
	return matchTags(rec.Tags, f.Tags, f.MatchAllTags)
}

func matchTags(have, want []string, all bool) bool {
	if len(want) == 0 {
		return true
	}
	for _, t := range want {
		if slices.Contains(have, t) != all {
			return !all
		}
	}
	return all
}

// DefaultAgentListLimit is Letta's default page size for agents.
const DefaultAgentListLimit = 50

// ListAgents lists agents by creation time.
func (s *Service) ListAgents(ctx context.Context, f AgentFilter, p Page) ([]*AgentState, error) {
	p, err := p.check(DefaultAgentListLimit)
	if err != nil {
		return nil, err
	}
	out := []*AgentState{}
	err = s.read(ctx, func(txn kv.Txn) error {
		out = out[:0] // read may run this again
		return listIndex(txn, agentIndexPrefix, p, ValidAgentID, readAgent, func(r *agentRecord) time.Time { return r.CreatedAt }, func(rec *agentRecord) (bool, error) {
			if !f.match(rec) {
				return true, nil
			}
			var blocks []attachedBlock
			if f.WithBlocks {
				var err error
				if blocks, err = agentBlocks(txn, rec.ID); err != nil {
					return false, err
				}
			}
			out = append(out, renderAgent(rec, blocks))
			return len(out) < p.Limit, nil
		})
	})
	return out, err
}

// CountAgents counts the agents a listing with f would return.
func (s *Service) CountAgents(ctx context.Context, f AgentFilter) (int, error) {
	n := 0
	err := s.read(ctx, func(txn kv.Txn) error {
		n = 0 // read may run this again
		return scanEach(txn, kv.PrefixRange([]byte(agentIndexPrefix)), false, func(key []byte) (bool, error) {
			rec, err := readAgent(txn, idFromIndexKey(key))
			if err != nil {
				return false, dangling(err, "index entry %q", key)
			}
			if f.match(rec) {
				n++
			}
			return true, nil
		})
	})
	return n, err
}

// listIndex visits the records an index lists, in the page's order,
// strictly between its cursors, until visit returns false. valid and read
// find a record by id; created gives its place in the index. An unknown or
// malformed cursor is ignored, as Letta does.
func listIndex[R any](txn kv.Txn, prefix string, p Page, valid func(string) bool,
	read func(kv.Txn, string) (R, error), created func(R) time.Time, visit func(R) (bool, error)) error {
	r := kv.PrefixRange([]byte(prefix))
	cursor := func(id string) ([]byte, error) {
		if id == "" || !valid(id) {
			return nil, nil
		}
		rec, err := read(txn, id)
		if KindOf(err) == KindNotFound {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return indexKey(prefix, created(rec), id), nil
	}
	after, err := cursor(p.After)
	if err != nil {
		return err
	}
	before, err := cursor(p.Before)
	if err != nil {
		return err
	}
	// In ascending order "after" is a lower bound; in descending order it
	// is an upper bound. A key just past k is k+"\x00".
	lower, upper := after, before
	if p.Order == Desc {
		lower, upper = before, after
	}
	if lower != nil {
		r.Start = append(lower, 0)
	}
	if upper != nil {
		r.End = upper
	}
	return scanEach(txn, r, p.Order == Desc, func(key []byte) (bool, error) {
		rec, err := read(txn, idFromIndexKey(key))
		if err != nil {
			return false, dangling(err, "index entry %q", key)
		}
		return visit(rec)
	})
}

// scanBatch is how many keys scanEach reads at a time.
const scanBatch = 256

// scanEach calls fn for each key in r, in order, until fn returns false.
func scanEach(txn kv.Txn, r kv.Range, reverse bool, fn func(key []byte) (bool, error)) error {
	for {
		kvs, err := txn.Scan(r, scanBatch, reverse)
		if err != nil {
			return err
		}
		for _, p := range kvs {
			more, err := fn(p.Key)
			if err != nil || !more {
				return err
			}
		}
		if len(kvs) < scanBatch {
			return nil
		}
		last := kvs[len(kvs)-1].Key
		if reverse {
			r.End = last
		} else {
			r.Start = append(last, 0)
		}
	}
}

// ListAgentBlocks lists an agent's blocks, sorted by block id as Letta does.
func (s *Service) ListAgentBlocks(ctx context.Context, agentID string, p Page) ([]Block, error) {
	if err := checkAgentID("agent_id", agentID); err != nil {
		return nil, err
	}
	p, err := p.check(MaxBlocksPerAgent)
	if err != nil {
		return nil, err
	}
	var out []Block
	err = s.read(ctx, func(txn kv.Txn) error {
		if _, err := readAgent(txn, agentID); err != nil {
			return err
		}
		blocks, err := agentBlocks(txn, agentID)
		if err != nil {
			return err
		}
		ids := make([]string, 0, len(blocks))
		byID := map[string]Block{}
		for _, b := range blocks {
			ids = append(ids, b.block.ID)
			byID[b.block.ID] = b.block.Block
		}
		sort.Strings(ids)
		if p.Order == Desc {
			slices.Reverse(ids)
		}
		out = []Block{}
		for _, id := range pageOfIDs(ids, p) {
			out = append(out, byID[id])
		}
		return nil
	})
	return out, err
}

// pageOfIDs applies exclusive id cursors to ids already in listing order.
func pageOfIDs(ids []string, p Page) []string {
	beyond := func(a, b string) bool { // a comes after b in the listing
		if p.Order == Desc {
			return a < b
		}
		return a > b
	}
	var out []string
	for _, id := range ids {
		if p.After != "" && !beyond(id, p.After) || p.Before != "" && !beyond(p.Before, id) {
			continue
		}
		if out = append(out, id); len(out) == p.Limit {
			break
		}
	}
	return out
}

// GetAgentBlock returns the agent's block with label.
func (s *Service) GetAgentBlock(ctx context.Context, agentID, label string) (*Block, error) {
	if err := checkAgentID("agent_id", agentID); err != nil {
		return nil, err
	}
	var out *Block
	err := s.read(ctx, func(txn kv.Txn) error {
		if _, err := readAgent(txn, agentID); err != nil {
			return err
		}
		blocks, err := agentBlocks(txn, agentID)
		if err != nil {
			return err
		}
		for _, b := range blocks {
			if b.block.Label == label {
				out = &b.block.Block
				return nil
			}
		}
		return &Error{Kind: KindNotFound, Message: fmt.Sprintf("No block with label '%s' found for agent '%s'", clip(label), agentID)}
	})
	return out, err
}

// UpdateAgentBlock edits the agent's block with label. The edit is seen by
// every agent the block is attached to.
func (s *Service) UpdateAgentBlock(ctx context.Context, agentID, label string, u BlockUpdate) (*Block, error) {
	if err := checkAgentID("agent_id", agentID); err != nil {
		return nil, err
	}
	if err := checkBlockUpdate(u); err != nil {
		return nil, err
	}
	var b Block
	if err := s.invoke(ctx, agentActor(agentID), opUpdateBlock, labelledUpdate{Label: label, Update: u}, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// AttachBlock attaches a block to an agent; attaching it again is a no-op.
func (s *Service) AttachBlock(ctx context.Context, agentID, blockID string) (*AgentState, error) {
	return s.attachOrDetach(ctx, agentID, blockID, opAttachBlock)
}

// DetachBlock detaches a block from an agent.
func (s *Service) DetachBlock(ctx context.Context, agentID, blockID string) (*AgentState, error) {
	return s.attachOrDetach(ctx, agentID, blockID, opDetachBlock)
}

func (s *Service) attachOrDetach(ctx context.Context, agentID, blockID, op string) (*AgentState, error) {
	if err := checkAgentID("agent_id", agentID); err != nil {
		return nil, err
	}
	if err := checkBlockIDs("block_id", []string{blockID}); err != nil {
		return nil, err
	}
	var st AgentState
	if err := s.invoke(ctx, agentActor(agentID), op, blockRef{BlockID: blockID}, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// CreateBlock creates a standalone block.
func (s *Service) CreateBlock(ctx context.Context, cb CreateBlock) (*Block, error) {
	if err := checkCreateBlock("block", cb); err != nil {
		return nil, err
	}
	id, err := s.newIDFor(ctx, "block")
	if err != nil {
		return nil, err
	}
	var b Block
	if err := s.invoke(ctx, blockActor(id), opBlockCreate, cb, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// GetBlock returns a block.
func (s *Service) GetBlock(ctx context.Context, id string) (*Block, error) {
	if err := checkBlockIDs("block_id", []string{id}); err != nil {
		return nil, err
	}
	var out *Block
	err := s.read(ctx, func(txn kv.Txn) error {
		b, err := readBlock(txn, id)
		if err != nil {
			return err
		}
		out = &b.Block
		return nil
	})
	return out, err
}

// UpdateBlock edits a block; every agent it is attached to sees the edit.
func (s *Service) UpdateBlock(ctx context.Context, id string, u BlockUpdate) (*Block, error) {
	if err := checkBlockIDs("block_id", []string{id}); err != nil {
		return nil, err
	}
	if err := checkBlockUpdate(u); err != nil {
		return nil, err
	}
	var b Block
	if err := s.invoke(ctx, blockActor(id), opBlockUpdate, u, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// DeleteBlock detaches a block from every agent and deletes it.
func (s *Service) DeleteBlock(ctx context.Context, id string) error {
	if err := checkBlockIDs("block_id", []string{id}); err != nil {
		return err
	}
	return s.invoke(ctx, blockActor(id), opBlockDelete, nil, nil)
}

// BlockFilter narrows a listing of blocks.
type BlockFilter struct {
	Label        string
	TemplateName string
	ProjectID    string
	Tags         []string
	MatchAllTags bool
	// TemplatesOnly lists templates; otherwise templates are left out.
	TemplatesOnly bool
}

func (f BlockFilter) match(b *blockRecord) bool {
	switch {
	case deref(b.Hidden), b.IsTemplate != f.TemplatesOnly:
		return false
	case f.Label != "" && b.Label != f.Label:
		return false
	case f.TemplateName != "" && deref(b.TemplateName) != f.TemplateName:
		return false
	case f.ProjectID != "" && deref(b.ProjectID) != f.ProjectID:
		return false
	}
	return matchTags(b.Tags, f.Tags, f.MatchAllTags)
}

// DefaultBlockListLimit is Letta's default page size for blocks.
const DefaultBlockListLimit = 50

// ListBlocks lists blocks by creation time.
func (s *Service) ListBlocks(ctx context.Context, f BlockFilter, p Page) ([]Block, error) {
	p, err := p.check(DefaultBlockListLimit)
	if err != nil {
		return nil, err
	}
	out := []Block{}
	err = s.read(ctx, func(txn kv.Txn) error {
		out = out[:0] // read may run this again
		return listIndex(txn, blockIndexPrefix, p, ValidBlockID, readBlock, func(b *blockRecord) time.Time { return b.CreatedAt }, func(b *blockRecord) (bool, error) {
			if f.match(b) {
				out = append(out, b.Block)
			}
			return len(out) < p.Limit, nil
		})
	})
	return out, err
}

// CountBlocks counts every block, templates and hidden ones included, as
// Letta's count does.
func (s *Service) CountBlocks(ctx context.Context) (int, error) {
	n := 0
	err := s.read(ctx, func(txn kv.Txn) error {
		n = 0 // read may run this again
		return scanEach(txn, kv.PrefixRange([]byte(blockIndexPrefix)), false, func([]byte) (bool, error) {
			n++
			return true, nil
		})
	})
	return n, err
}

// ListBlockAgents lists the agents a block is attached to, by creation time.
// A block that does not exist has none, as in Letta.
func (s *Service) ListBlockAgents(ctx context.Context, blockID string, p Page, withBlocks bool) ([]*AgentState, error) {
	if err := checkBlockIDs("block_id", []string{blockID}); err != nil {
		return nil, err
	}
	p, err := p.check(DefaultAgentListLimit)
	if err != nil {
		return nil, err
	}
	out := []*AgentState{}
	err = s.read(ctx, func(txn kv.Txn) error {
		out = out[:0] // read may run this again
		links, err := txn.Scan(kv.PrefixRange(blockAgentsPrefix(blockID)), 0, false)
		if err != nil {
			return err
		}
		type entry struct {
			key string
			rec *agentRecord
		}
		entries := make([]entry, 0, len(links))
		for _, l := range links {
			rec, err := readAgent(txn, idFromIndexKey(l.Key))
			if err != nil {
				return dangling(err, "attachment %q", l.Key)
			}
			entries = append(entries, entry{string(indexKey("", rec.CreatedAt, rec.ID)), rec})
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].key < entries[j].key })
		if p.Order == Desc {
			slices.Reverse(entries)
		}
		keys := make([]string, len(entries))
		byKey := map[string]*agentRecord{}
		for i, e := range entries {
			keys[i], byKey[e.key] = e.key, e.rec
		}
		cursorKey := func(id string) string {
			for _, e := range entries {
				if e.rec.ID == id {
					return e.key
				}
			}
			return "" // unknown cursors are ignored
		}
		page := Page{Before: cursorKey(p.Before), After: cursorKey(p.After), Limit: p.Limit, Order: p.Order}
		for _, k := range pageOfIDs(keys, page) {
			var blocks []attachedBlock
			if withBlocks {
				if blocks, err = agentBlocks(txn, byKey[k].ID); err != nil {
					return err
				}
			}
			out = append(out, renderAgent(byKey[k], blocks))
		}
		return nil
	})
	return out, err
}
