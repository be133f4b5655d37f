package agent

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"github.com/kelpie/kelpie/agent/files"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/memfs"
	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/agent/prompt"
	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/agent/window"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Agents is the surface of agents: their records and the blocks attached
// to them.
type Agents struct{ c *core }

// Limits on agent fields.
const (
	MaxNameChars        = 256
	MaxSystemChars      = 200_000
	MaxAgentRecordBytes = 2 << 20 // an agent's fields but its blocks, as JSON
	// DefaultAgentListLimit is Letta's default page size for agents.
	DefaultAgentListLimit = 50
)

// DefaultAgentType is the type of an agent created without one.
const DefaultAgentType = "letta_v1_agent"

// Agent types Letta defines.
var agentTypes = map[string]bool{
	"memgpt_agent": true, "memgpt_v2_agent": true, "letta_v1_agent": true, "react_agent": true,
	"workflow_agent": true, "split_thread_agent": true, "sleeptime_agent": true,
	"voice_convo_agent": true, "voice_sleeptime_agent": true,
}

var namePattern = regexp.MustCompile(`^[\p{L}\p{N}_ '\-]+$`)

// Create creates an agent with its memory blocks and returns the state that
// was committed.
func (s *Agents) Create(ctx context.Context, req letta.CreateAgentRequest) (*letta.AgentState, error) {
	return decoded(s.CreateEncoded(ctx, req))
}

// CreateEncoded is Create, answering the state as it was encoded when it
// was committed.
func (s *Agents) CreateEncoded(ctx context.Context, req letta.CreateAgentRequest) (Encoded[letta.AgentState], error) {
	var err error
	if req.Model, err = s.c.autoModel(req.Model); err != nil {
		return nil, err
	}
	if err := checkCreateFields(req); err != nil {
		return nil, err
	}
	payload, err := createPayload(req)
	if err != nil {
		return nil, err
	}
	id, opts, err := s.c.newActorFor(ctx, "agent")
	if err != nil {
		return nil, err
	}
	// The request is the invocation's from here: createAgent changes
	// nothing it holds.
	opts = append(opts, actor.WithLocal(req))
	var st []byte
	if err := s.c.invokeEncoded(ctx, schema.AgentActor(id), opCreateAgent, payload, &st, opts...); err != nil {
		return nil, err
	}
	return st, nil
}

// Get returns an agent; withBlocks loads its memory blocks.
func (s *Agents) Get(ctx context.Context, id string, withBlocks bool) (*letta.AgentState, error) {
	if err := letta.CheckID("agent_id", "agent", id); err != nil {
		return nil, err
	}
	var st *letta.AgentState
	err := s.c.read(ctx, func(txn kv.Txn) error {
		a, err := schema.GetAgent(txn, id)
		if err != nil {
			return err
		}
		st, err = loadAgent(txn, a, withBlocks)
		return err
	})
	return st, err
}

// loadAgent renders an agent, with its blocks if asked, and the ids of the
// messages in its context.
func loadAgent(txn kv.Txn, a *schema.Agent, withBlocks bool) (*letta.AgentState, error) {
	return loadSharing(txn, a, withBlocks, nil)
}

// loadSharing is loadAgent reading each block once per shared map (see
// memory.SharedAgentBlocks).
func loadSharing(txn kv.Txn, a *schema.Agent, withBlocks bool, shared map[string]*schema.Block) (*letta.AgentState, error) {
	var blocks []*schema.Block
	if withBlocks {
		var err error
		if blocks, err = memory.SharedAgentBlocks(txn, a.ID, shared); err != nil {
			return nil, err
		}
	}
	identityIDs, err := schema.IdentitiesOfAgent(txn, a.ID)
	if err != nil {
		return nil, err
	}
	st := renderAgent(a, blocks, identityIDs)
	if st.MessageIDs, err = window.IDs(txn, window.Owner{Agent: a}); err != nil {
		return nil, err
	}
	if g, err := managedGroup(txn, a.ID); err != nil {
		return nil, err
	} else if g != nil {
		st.MultiAgentGroup = &g.Group
	}
	if withBlocks {
		if st.Tools, err = agentToolsJSON(txn, a); err != nil {
			return nil, err
		}
		if st.Sources, st.Memory.FileBlocks, err = folderState(txn, a); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// Update applies a PATCH to an agent.
func (s *Agents) Update(ctx context.Context, id string, req letta.UpdateAgentRequest) (*letta.AgentState, error) {
	return decoded(s.UpdateEncoded(ctx, id, req))
}

// UpdateEncoded is Update, answering the state as it was encoded when it
// was committed.
func (s *Agents) UpdateEncoded(ctx context.Context, id string, req letta.UpdateAgentRequest) (Encoded[letta.AgentState], error) {
	if err := letta.CheckID("agent_id", "agent", id); err != nil {
		return nil, err
	}
	var err error
	if req.Model, err = s.c.autoModel(req.Model); err != nil {
		return nil, err
	}
	if err := checkUpdateAgent(req); err != nil {
		return nil, err
	}
	var st []byte
	if err := s.c.invoke(ctx, schema.AgentActor(id), opUpdateAgent, req, &st); err != nil {
		return nil, err
	}
	return st, nil
}

// CloseInterruptedRun closes, as failed, the run a turn of the agent left
// in progress when its node died: a cluster node calls it once it took the
// agent over, rather than leaving the run shown running until the agent's
// next turn closes it.
func (s *Agents) CloseInterruptedRun(ctx context.Context, id string) error {
	return s.c.turns.CloseInterrupted(ctx, id)
}

// Delete deletes an agent and everything it owns (schema.DeleteAgent) in
// one transaction, with the sleep-time agents of the sleep-time group it
// manages (see deleteWithGroup). Its blocks remain.
func (s *Agents) Delete(ctx context.Context, id string) error {
	if err := letta.CheckID("agent_id", "agent", id); err != nil {
		return err
	}
	return s.c.deleteWithGroup(ctx, id)
}

// AgentFilter narrows a listing of agents.
type AgentFilter struct {
	Name         string
	Tags         []string
	MatchAllTags bool
	QueryText    string
	ProjectID    string
	// IdentityID keeps the agents of an identity. The listing walks every
	// agent to find them (no index joins identities to listing order); a
	// count by it alone reads the identity's count.
	IdentityID string
	WithBlocks bool

	members map[string]bool // of IdentityID, read in the listing's snapshot
}

// withMembers reads the agents of f's identity, if it names one.
func (f AgentFilter) withMembers(txn kv.Txn) (AgentFilter, error) {
	if f.IdentityID == "" {
		return f, nil
	}
	ids, err := schema.AgentsOf(txn, f.IdentityID)
	f.members = map[string]bool{}
	for _, id := range ids {
		f.members[id] = true
	}
	return f, err
}

func (f AgentFilter) match(a *schema.Agent) bool {
	switch {
	case a.Hidden != nil && *a.Hidden:
		return false
	case f.Name != "" && a.Name != f.Name:
		return false
	case f.QueryText != "" && !strings.Contains(strings.ToLower(a.Name), strings.ToLower(f.QueryText)):
		return false
	case f.ProjectID != "" && (a.ProjectID == nil || *a.ProjectID != f.ProjectID):
		return false
	case f.IdentityID != "" && !f.members[a.ID]:
		return false
	}
	return memory.MatchTags(a.Tags, f.Tags, f.MatchAllTags)
}

// List lists agents by creation time.
func (s *Agents) List(ctx context.Context, f AgentFilter, p letta.Page) ([]*letta.AgentState, error) {
	p, err := checkPage(p, DefaultAgentListLimit)
	if err != nil {
		return nil, err
	}
	out := []*letta.AgentState{}
	size := 0
	shared := map[string]*schema.Block{} // agents sharing a block share its value
	err = s.c.read(ctx, func(txn kv.Txn) error {
		f, err := f.withMembers(txn)
		if err != nil {
			return err
		}
		return eachAgent(txn, f, p, func(a *schema.Agent) (bool, error) {
			st, err := loadSharing(txn, a, f.WithBlocks, shared)
			if err != nil {
				return false, err
			}
			out, size = append(out, st), size+agentSize(st)
			return !p.Full(len(out), size), nil
		})
	})
	return out, err
}

// Count counts the agents a listing with f would return.
func (s *Agents) Count(ctx context.Context, f AgentFilter) (int, error) {
	var n int
	err := s.c.read(ctx, func(txn kv.Txn) (err error) {
		n, err = countAgents(txn, f)
		return err
	})
	return n, err
}

// checkCreateAgent checks a create request: its fields, and the size of
// the record it makes.
func checkCreateAgent(req letta.CreateAgentRequest) error {
	if err := checkCreateFields(req); err != nil {
		return err
	}
	_, err := createPayload(req)
	return err
}

// createPayload encodes a create request, checking on the way the size of
// the record it makes, as checkRecordSize would: the request's JSON but its
// memory blocks (stored apart, each under its own limits), which is its
// JSON less theirs, with "memory_blocks":null in their place.
func createPayload(req letta.CreateAgentRequest) ([]byte, error) {
	data, err := schema.Encode(req)
	if err != nil {
		return nil, letta.Invalidf("request: %v", err)
	}
	var blocks int // only the length of their JSON counts: it is not kept
	if err := schema.EncodeTo(req.MemoryBlocks, func(js []byte) error { blocks = len(js); return nil }); err != nil {
		return nil, letta.Invalidf("request: %v", err)
	}
	if err := checkJSONSize(len(data) - blocks + len("null")); err != nil {
		return nil, err
	}
	return data, nil
}

// checkCreateFields checks a create request's fields.
func checkCreateFields(req letta.CreateAgentRequest) error {
	err := agentFields{name: req.Name, agentType: req.AgentType, system: req.System, description: req.Description,
		tags: &req.Tags, tools: &req.Tools, metadata: &req.Metadata, blockIDs: &req.BlockIDs, identityIDs: &req.IdentityIDs}.check()
	if err != nil {
		return err
	}
	if n := len(req.MemoryBlocks) + len(req.BlockIDs); n > memory.MaxBlocksPerAgent {
		return letta.Invalidf("an agent may have at most %d blocks, got %d", memory.MaxBlocksPerAgent, n)
	}
	labels := map[string]bool{}
	for i, b := range req.MemoryBlocks {
		field := fmt.Sprintf("memory_blocks[%d]", i)
		if err := memory.CheckCreate(field, b); err != nil {
			return err
		}
		if labels[*b.Label] {
			return letta.Invalidf("%s: duplicate label %q", field, *b.Label)
		}
		labels[*b.Label] = true
	}
	if err := checkModel(req.Model, req.Embedding, req.ContextWindowLimit); err != nil {
		return err
	}
	if err := checkInitialMessages(req.InitialMessageSequence); err != nil {
		return err
	}
	if _, err := tool.ParseRules(req.ToolRules); err != nil {
		return err
	}
	return checkToolEnv(req.ToolExecEnvironmentVariables, req.Secrets)
}

func checkUpdateAgent(req letta.UpdateAgentRequest) error {
	err := agentFields{name: req.Name, system: req.System, description: req.Description,
		tags: req.Tags, metadata: req.Metadata, blockIDs: req.BlockIDs, identityIDs: req.IdentityIDs}.check()
	if err != nil {
		return err
	}
	if err := checkModel(req.Model, req.Embedding, req.ContextWindowLimit); err != nil {
		return err
	}
	if req.ToolRules != nil {
		if _, err := tool.ParseRules(*req.ToolRules); err != nil {
			return err
		}
	}
	if err := checkToolEnv(deref(req.ToolExecEnvironmentVariables), deref(req.Secrets)); err != nil {
		return err
	}
	return checkRecordSize(req)
}

// agentFields are the fields creates and updates share; nil is absent.
type agentFields struct {
	name, agentType, system, description *string
	tags, tools, blockIDs, identityIDs   *[]string
	metadata                             *map[string]any
}

func (f agentFields) check() error {
	if f.name != nil {
		if err := letta.CheckChars("name", *f.name, MaxNameChars); err != nil {
			return err
		}
		if *f.name != "" && !namePattern.MatchString(*f.name) {
			return letta.Invalidf("Agent name '%s' contains invalid characters. Only letters (any language), digits, spaces, hyphens, underscores, and apostrophes are allowed.", letta.Clip(*f.name))
		}
	}
	if f.agentType != nil && !agentTypes[*f.agentType] {
		return letta.Invalidf("agent_type %q is not one of Letta's agent types", letta.Clip(*f.agentType))
	}
	if f.system != nil {
		if err := letta.CheckChars("system", *f.system, MaxSystemChars); err != nil {
			return err
		}
	}
	if f.description != nil {
		if err := letta.CheckChars("description", *f.description, letta.MaxDescriptionChars); err != nil {
			return err
		}
	}
	for _, l := range []struct {
		field string
		tags  *[]string
	}{{"tags", f.tags}, {"tools", f.tools}} {
		if l.tags != nil {
			if err := letta.CheckTags(l.field, *l.tags); err != nil {
				return err
			}
		}
	}
	if f.metadata != nil {
		if err := letta.CheckMetadata(*f.metadata); err != nil {
			return err
		}
	}
	if f.identityIDs != nil {
		if err := checkIDs("identity_ids", "identity", *f.identityIDs); err != nil {
			return err
		}
	}
	if f.blockIDs != nil {
		return checkBlockIDs("block_ids", *f.blockIDs)
	}
	return nil
}

func checkBlockIDs(field string, ids []string) error { return checkIDs(field, "block", ids) }

// checkIDs checks a list of ids of prefix, at most MaxLinkedIDs.
func checkIDs(field, prefix string, ids []string) error {
	if len(ids) > MaxLinkedIDs {
		return letta.Invalidf("%s: at most %d ids, got %d", field, MaxLinkedIDs, len(ids))
	}
	for i, id := range ids {
		if err := letta.CheckID(fmt.Sprintf("%s[%d]", field, i), prefix, id); err != nil {
			return err
		}
	}
	return nil
}

// checkRecordSize bounds everything an agent record holds, whatever field it
// arrives in.
func checkRecordSize(req any) error {
	data, err := schema.Encode(req)
	if err != nil {
		return letta.Invalidf("request: %v", err)
	}
	return checkJSONSize(len(data))
}

// checkJSONSize bounds the JSON of an agent record's fields.
func checkJSONSize(n int) error {
	if n > MaxAgentRecordBytes {
		return letta.Invalidf("agent fields total %d bytes of JSON, over the limit of %d", n, MaxAgentRecordBytes)
	}
	return nil
}

// createAgent creates the agent record with its new memory blocks and
// attaches them and the existing blocks it names.
func createAgent(c *core, call *actor.Call, _ *schema.Agent, req letta.CreateAgentRequest) ([]byte, error) {
	txn := call.Txn
	// A minted create counts its agent, blocks and terms in one key
	// (schema.MintedCounts); any other create counts as IndexAgent does.
	var counts *schema.MintedCounts
	if indexesItself(call) {
		counts = schema.NewMintedCounts(call.ID.Key)
	}
	a, blocks, custom, err := buildAgent(c, txn, call.ID.Key, req, call.Now, counts)
	if err != nil {
		return nil, err
	}
	sys, err := window.OpenNewAgent(txn, a, blocks, call.Now)
	if err != nil {
		return nil, err
	}
	if _, err := memfs.SyncAgent(txn, a, blocks, call.Now, "Create the agent's memory"); err != nil {
		return nil, err
	}
	initial, err := appendInitialMessages(c, txn, a, sys.Seq, req.InitialMessageSequence, call.Now)
	if err != nil {
		return nil, err
	}
	var group *schema.Group
	if a.EnableSleeptime != nil && *a.EnableSleeptime && a.AgentType != "sleeptime_agent" {
		if group, err = createSleeptimeGroup(c, txn, a, blocks, call.Now); err != nil {
			return nil, err
		}
	}
	if err := joinIdentities(txn, a.ID, nil, req.IdentityIDs); err != nil {
		return nil, err
	}
	call.SetState(a)
	// Its identities as a read lists them: by id, each once.
	identityIDs := slices.Compact(slices.Sorted(slices.Values(req.IdentityIDs)))
	if indexesItself(call) {
		// Its links to identities are those just made: a minted id has no
		// others.
		if err := schema.IndexMintedAgent(txn, schema.IndexedOf(a), identityIDs, counts); err != nil {
			return nil, err
		}
	}
	st := renderAgent(a, blocks, identityIDs)
	// A new context holds its system message and initial messages only.
	st.MessageIDs = append([]string{a.Context.SystemID}, initial...)
	if group != nil {
		st.MultiAgentGroup = &group.Group
	}
	return encodeAgent(st, tool.Offered(a, custom))
}

// buildAgent writes what a new agent has in txn: its new memory blocks,
// its attachments to them and to the existing blocks it names, and its
// tools. It returns the record to store (its context not opened yet), its
// blocks in attachment order and its custom tools: an answer is rendered
// from them, not read back. counts, if not nil, counts the new blocks (see
// schema.CreateMintedBlock).
func buildAgent(c *core, txn kv.Txn, id string, req letta.CreateAgentRequest, now time.Time, counts *schema.MintedCounts) (*schema.Agent, []*schema.Block, []*schema.Tool, error) {
	a, err := newAgent(c, id, req, now)
	if err != nil {
		return nil, nil, nil, err
	}
	labels := map[string]string{} // label -> block id
	var blocks []*schema.Block
	for i, cb := range req.MemoryBlocks {
		id, err := c.newID("block")
		if err != nil {
			return nil, nil, nil, err
		}
		b := memory.NewBlock(id, cb, now)
		if other, dup := labels[b.Label]; dup {
			return nil, nil, nil, letta.Invalidf("memory_blocks[%d]: label %q is already used by block %s", i, b.Label, other)
		}
		labels[b.Label] = id
		if err := schema.CreateMintedBlock(txn, b, counts); err != nil { // id: random, just minted
			return nil, nil, nil, err
		}
		blocks = append(blocks, b)
	}
	for _, id := range req.BlockIDs {
		b, err := schema.GetBlock(txn, id)
		if err != nil {
			return nil, nil, nil, err
		}
		if other, dup := labels[b.Label]; dup && other != id {
			return nil, nil, nil, letta.Conflictf("block %s has label %q, already used by block %s on this agent", id, b.Label, other)
		}
		if _, dup := labels[b.Label]; !dup {
			labels[b.Label] = id
			blocks = append(blocks, b)
		}
	}
	if len(blocks) > memory.MaxBlocksPerAgent {
		return nil, nil, nil, letta.Invalidf("an agent may have at most %d blocks, got %d", memory.MaxBlocksPerAgent, len(blocks))
	}
	for _, b := range blocks {
		if err := schema.Attach(txn, a, b.ID); err != nil {
			return nil, nil, nil, err
		}
	}
	custom, err := attachNamedTools(txn, a, req.Tools, req.ToolIDs)
	if err != nil {
		return nil, nil, nil, err
	}
	return a, blocks, custom, nil
}

// renderCommitted answers an agent write with the agent as committed, with
// its blocks.
func renderCommitted(txn kv.Txn, a *schema.Agent) ([]byte, error) {
	st, err := loadAgent(txn, a, true)
	if err != nil {
		return nil, err
	}
	return schema.Encode(st)
}

func updateAgent(c *core, call *actor.Call, a *schema.Agent, req letta.UpdateAgentRequest) ([]byte, error) {
	if err := applyAgentUpdate(a, req); err != nil {
		return nil, err
	}
	if req.BlockIDs != nil {
		if err := replaceBlocks(call.Txn, a, *req.BlockIDs); err != nil {
			return nil, err
		}
	}
	if req.IdentityIDs != nil {
		if err := setAgentIdentities(call.Txn, a.ID, *req.IdentityIDs); err != nil {
			return nil, err
		}
	}
	if req.EnableSleeptime != nil && *req.EnableSleeptime {
		if err := ensureSleeptimeGroup(c, call.Txn, a, call.Now); err != nil {
			return nil, err
		}
	}
	a.UpdatedAt = call.Now
	return commitAgent(call, a)
}

// commitAgent stores a changed agent record, recompiles the system message
// of its default conversation if its instructions or memory changed (Letta
// rebuilds it at every such change), commits its blocks to its memory
// repository if it keeps one and they changed, and answers with the agent
// as committed.
func commitAgent(call *actor.Call, a *schema.Agent) ([]byte, error) {
	call.SetState(a)
	if a.Context.SystemID != "" {
		if _, _, err := window.Refresh(call.Txn, window.Owner{Agent: a}, call.Now, window.IfChanged, false); err != nil {
			return nil, err
		}
	}
	if _, err := memfs.SyncAgent(call.Txn, a, nil, call.Now, "Update the agent's memory"); err != nil {
		return nil, err
	}
	return renderCommitted(call.Txn, a)
}

func deleteAgent(_ *core, call *actor.Call, a *schema.Agent, _ struct{}) ([]byte, error) {
	gone, err := leaveSleeptimeGroup(call.Txn, a)
	if err != nil {
		return nil, err
	}
	if err := schema.DeleteAgent(call.Txn, a); err != nil {
		return nil, err
	}
	// A cluster's claim of the agent goes with it.
	if err := schema.DeleteClaims(call.Txn, call.ID.String()); err != nil {
		return nil, err
	}
	call.DeleteState()
	return schema.Encode(gone)
}

// newAgent resolves a create request into the record to store.
func newAgent(c *core, id string, req letta.CreateAgentRequest, now time.Time) (*schema.Agent, error) {
	a := &schema.Agent{
		ID: id, AgentType: DefaultAgentType, Description: req.Description, Metadata: req.Metadata,
		Tags: nonNil(req.Tags), ModelSettings: jsonOrNil(req.ModelSettings), CompactionSettings: jsonOrNil(req.CompactionSettings),
		ToolRules: nonNil(req.ToolRules), ProjectID: req.ProjectID,
		MessageBufferAutoclear: req.MessageBufferAutoclear, EnableSleeptime: req.EnableSleeptime,
		Timezone: "UTC", Hidden: req.Hidden, CreatedAt: now, UpdatedAt: now,
		IncludeBaseTools: req.IncludeBaseTools, ToolEnv: toolEnv(req.ToolExecEnvironmentVariables, req.Secrets),
	}
	if req.AgentType != nil {
		a.AgentType = *req.AgentType
	}
	a.System = prompt.SystemFor(a.AgentType)
	if req.System != nil {
		a.System = *req.System
	}
	if req.Timezone != nil {
		a.Timezone = *req.Timezone
	}
	if req.Name != nil {
		a.Name = *req.Name
	} else {
		name, err := randomName(c.rand)
		if err != nil {
			return nil, err
		}
		a.Name = name
	}
	llmConfig, err := resolveLLMConfig(c.defaultModel, req.LLMConfig, req.Model, req.ContextWindowLimit)
	if err != nil {
		return nil, err
	}
	a.LLMConfig = llmConfig
	a.EmbeddingConfig = req.EmbeddingConfig
	if req.Embedding != nil {
		if a.EmbeddingConfig, err = embeddingConfigFor(*req.Embedding); err != nil {
			return nil, err
		}
	}
	a.EmbeddingConfig = embeddingOrDefault(a.EmbeddingConfig)
	return a, nil
}

var (
	nameAdjectives = []string{"Amber", "Brave", "Calm", "Clever", "Curious", "Eager", "Gentle", "Happy", "Keen", "Lively", "Lucky", "Misty", "Noble", "Quiet", "Rapid", "Silver", "Steady", "Swift", "Vivid", "Witty"}
	nameNouns      = []string{"Badger", "Comet", "Falcon", "Fox", "Harbor", "Heron", "Kelpie", "Lantern", "Maple", "Meadow", "Otter", "Panda", "Pebble", "Quill", "River", "Robin", "Sparrow", "Tide", "Willow", "Wren"}
)

// randomName returns an AdjectiveNoun name, as Letta gives unnamed agents.
func randomName(r io.Reader) (string, error) {
	var b [4]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("random name: %w", err)
	}
	n := binary.BigEndian.Uint32(b[:])
	return nameAdjectives[n%uint32(len(nameAdjectives))] + nameNouns[(n>>16)%uint32(len(nameNouns))], nil
}

// applyAgentUpdate applies the scalar and list fields of an update to a;
// block_ids are applied by the caller, which needs the transaction.
func applyAgentUpdate(a *schema.Agent, req letta.UpdateAgentRequest) error {
	set(&a.Name, req.Name)
	set(&a.System, req.System)
	set(&a.Timezone, req.Timezone)
	set(&a.MessageBufferAutoclear, req.MessageBufferAutoclear)
	setPtr(&a.Description, req.Description)
	setPtr(&a.ProjectID, req.ProjectID)
	setPtr(&a.EnableSleeptime, req.EnableSleeptime)
	setPtr(&a.LastStopReason, req.LastStopReason)
	setPtr(&a.Hidden, req.Hidden)
	if req.ToolExecEnvironmentVariables != nil || req.Secrets != nil {
		a.ToolEnv = toolEnv(deref(req.ToolExecEnvironmentVariables), deref(req.Secrets))
	}
	if req.Tags != nil {
		a.Tags = nonNil(*req.Tags)
	}
	if req.Metadata != nil {
		a.Metadata = *req.Metadata
	}
	if req.ToolRules != nil {
		a.ToolRules = nonNil(*req.ToolRules)
	}
	switch {
	case req.LLMConfig != nil:
		a.LLMConfig = *req.LLMConfig
	case req.Model != nil:
		c, err := llmConfigFor(*req.Model, req.ContextWindowLimit)
		if err != nil {
			return err
		}
		a.LLMConfig = c
	}
	if req.ContextWindowLimit != nil {
		a.LLMConfig.ContextWindow = *req.ContextWindowLimit
	}
	setPtr(&a.EmbeddingConfig, req.EmbeddingConfig)
	if req.Embedding != nil {
		c, err := embeddingConfigFor(*req.Embedding)
		if err != nil {
			return err
		}
		a.EmbeddingConfig = c
	}
	return nil
}

// set sets *dst to *src when src is given.
func set[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

// setPtr replaces the optional *dst with src when src is given.
func setPtr[T any](dst **T, src *T) {
	if src != nil {
		*dst = src
	}
}

// agentSize is about what an agent's JSON takes: its blocks twice (in
// memory and in blocks, as Letta shows them) and its other fields.
func agentSize(st *letta.AgentState) int {
	n := 2048 + len(st.System)
	for i := range st.Blocks {
		n += 2 * blockSize(&st.Blocks[i])
	}
	return n
}

// renderAgent builds the API shape of an agent. blocks is nil when the
// caller did not ask for them.
func renderAgent(a *schema.Agent, blocks []*schema.Block, identityIDs []string) *letta.AgentState {
	bs := make([]letta.Block, len(blocks))
	for i, b := range blocks {
		bs[i] = b.Block
	}
	maxFiles, window := files.Limits(a.LLMConfig.ContextWindow)
	var modelSettings any = modelSettingsFor(a.LLMConfig)
	if len(a.ModelSettings) > 0 {
		modelSettings = a.ModelSettings
	}
	var compaction any
	if len(a.CompactionSettings) > 0 {
		compaction = a.CompactionSettings
	}
	// Agents stored before every agent got an embedding show the default.
	embeddingConfig := embeddingOrDefault(a.EmbeddingConfig)
	var lastRun *letta.Timestamp
	if a.LastRunCompletion != nil {
		lastRun = &letta.Timestamp{Time: *a.LastRunCompletion}
	}
	return &letta.AgentState{
		CreatedAt: letta.Timestamp{Time: a.CreatedAt}, UpdatedAt: letta.Timestamp{Time: a.UpdatedAt},
		ID: a.ID, Name: a.Name, ToolRules: nonNil(a.ToolRules), MessageIDs: []string{},
		System: a.System, AgentType: a.AgentType, LLMConfig: a.LLMConfig, EmbeddingConfig: embeddingConfig,
		Model: a.LLMConfig.Handle, Embedding: embeddingConfig.Handle, ModelSettings: modelSettings, CompactionSettings: compaction,
		Description: a.Description, Metadata: a.Metadata,
		Memory: letta.Memory{AgentType: a.AgentType, Blocks: bs, FileBlocks: []any{}},
		Blocks: bs, Tools: []any{}, Sources: []any{}, Tags: nonNil(a.Tags),
		ToolExecEnvironmentVariables: toolEnvJSON(a), Secrets: toolEnvJSON(a), ProjectID: a.ProjectID,
		IdentityIDs: nonNil(identityIDs), Identities: []any{},
		MessageBufferAutoclear: a.MessageBufferAutoclear, EnableSleeptime: a.EnableSleeptime,
		LastStopReason: a.LastStopReason, LastRunCompletion: lastRun, LastRunDurationMS: a.LastRunDurationMS, Timezone: a.Timezone,
		MaxFilesOpen: maxFiles, PerFileViewWindowCharLimit: window, Hidden: a.Hidden,
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// jsonOrNil treats an explicit JSON null like an absent value.
func jsonOrNil(m json.RawMessage) json.RawMessage {
	if string(m) == "null" {
		return nil
	}
	return m
}
