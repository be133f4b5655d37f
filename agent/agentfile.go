package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/agent/message"
	"github.com/kelpie/kelpie/agent/window"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Limits of agent files.
const (
	// MaxAgentFileAgents bounds the agents one file imports (one
	// transaction writes them all).
	MaxAgentFileAgents = 32
	// MaxAgentFileMessages bounds the messages of one agent in a file.
	MaxAgentFileMessages = 10_000
)

// ExportOptions narrow an export.
type ExportOptions struct {
	// ConversationID exports that conversation's context instead of the
	// default conversation's.
	ConversationID string
	// ScrubMessages leaves every message out.
	ScrubMessages bool
}

// Export renders an agent as Letta's agent file, read in one snapshot:
// the agent, the messages in its context (system message first), its
// blocks, its tools (built-in ones by name, custom ones with their
// source), its folders and its views of their files (with the files'
// text). Ids are the
// file's own ("agent-0", "message-3", ...), as Letta writes them; secrets'
// values are blanked.
func (s *Agents) Export(ctx context.Context, agentID string, opt ExportOptions) (*letta.AgentFile, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	if opt.ConversationID != "" {
		if err := letta.CheckID("conversation_id", "conv", opt.ConversationID); err != nil {
			return nil, err
		}
	}
	var out *letta.AgentFile
	err := s.c.read(ctx, func(txn kv.Txn) error {
		x := newExporter(txn)
		var err error
		out, err = x.export(agentID, opt, s.c.clock.Now().UTC())
		return err
	})
	return out, err
}

// exporter maps stored ids to the file's, per entity type, in the order
// they are met.
type exporter struct {
	txn   kv.Txn
	ids   map[string]string
	count map[string]int
	file  letta.AgentFile
}

func newExporter(txn kv.Txn) *exporter {
	return &exporter{txn: txn, ids: map[string]string{}, count: map[string]int{}, file: letta.AgentFile{
		Agents: []letta.AgentFileAgent{}, Groups: []letta.AgentFileGroup{}, Blocks: []letta.AgentFileBlock{},
		Files: []letta.AgentFileFile{}, Sources: []letta.AgentFileSource{}, Tools: []letta.Tool{},
		MCPServers: []letta.AgentFileMCPServer{}, Skills: []json.RawMessage{},
		Metadata: map[string]string{"revision_id": letta.AgentFileRevision},
	}}
}

// fileID is the file's id of a stored id of kind (Letta's prefixes).
func (x *exporter) fileID(kind, id string) (string, bool) {
	if f, ok := x.ids[id]; ok {
		return f, false
	}
	f := kind + "-" + strconv.Itoa(x.count[kind])
	x.count[kind]++
	x.ids[id] = f
	return f, true
}

func (x *exporter) export(agentID string, opt ExportOptions, now time.Time) (*letta.AgentFile, error) {
	if err := x.agent(agentID, opt.ConversationID, opt.ScrubMessages); err != nil {
		return nil, err
	}
	// The group it manages comes along, with the group's agents, as
	// Letta exports it.
	g, err := managedGroup(x.txn, agentID)
	if err != nil || g == nil {
		x.file.CreatedAt = &letta.Timestamp{Time: now}
		return &x.file, err
	}
	for _, id := range g.AgentIDs {
		if _, seen := x.ids[id]; !seen {
			if err := x.agent(id, "", opt.ScrubMessages); err != nil {
				return nil, err
			}
		}
	}
	gid, _ := x.fileID("group", g.ID)
	fg := letta.AgentFileGroup{ID: gid, GroupCreate: letta.GroupCreate{Description: &g.Description, ProjectID: g.ProjectID,
		SharedBlockIDs: []string{}, Hidden: g.Hidden, ManagerConfig: managerConfigOf(g)}}
	for _, id := range g.AgentIDs {
		fg.AgentIDs = append(fg.AgentIDs, x.ids[id])
	}
	if g.ManagerAgentID != nil {
		fg.ManagerConfig.ManagerAgentID = new(x.ids[*g.ManagerAgentID])
	}
	x.file.Groups = append(x.file.Groups, fg)
	x.file.Agents[0].GroupIDs = []string{gid}
	x.file.CreatedAt = &letta.Timestamp{Time: now}
	return &x.file, nil
}

// managerConfigOf is a group's manager configuration.
func managerConfigOf(g *schema.Group) *letta.ManagerConfig {
	return &letta.ManagerConfig{ManagerType: g.ManagerType, ManagerAgentID: g.ManagerAgentID, TerminationToken: g.TerminationToken,
		MaxTurns: g.MaxTurns, SleeptimeAgentFrequency: g.SleeptimeAgentFrequency,
		MaxMessageBufferLength: g.MaxMessageBufferLength, MinMessageBufferLength: g.MinMessageBufferLength}
}

func (x *exporter) agent(agentID, convID string, scrub bool) error {
	o, err := window.Load(x.txn, agentID, convID)
	if err != nil {
		return err
	}
	a := o.Agent
	fileID, _ := x.fileID("agent", a.ID)
	blocks, err := memory.AgentBlocks(x.txn, a.ID)
	if err != nil {
		return err
	}
	tools, err := offeredTools(x.txn, a)
	if err != nil {
		return err
	}
	st := renderAgent(a, nil, nil)
	fa := letta.AgentFileAgent{ID: fileID, InContextMessageIDs: []string{}, Messages: []letta.AgentFileMessage{},
		FilesAgents: []letta.AgentFileFileAgent{}, GroupIDs: []string{}, SourceIDs: []string{},
		MaxFilesOpen: &st.MaxFilesOpen, PerFileViewWindowCharLimit: &st.PerFileViewWindowCharLimit}
	fa.CreateAgentRequest = letta.CreateAgentRequest{
		Name: &a.Name, MemoryBlocks: []letta.CreateBlock{}, BlockIDs: []string{}, Tags: nonNil(a.Tags), System: &a.System,
		AgentType: &a.AgentType, Description: a.Description, Metadata: a.Metadata, LLMConfig: &a.LLMConfig,
		EmbeddingConfig: st.EmbeddingConfig, ModelSettings: a.ModelSettings, CompactionSettings: a.CompactionSettings,
		ToolRules: nonNil(a.ToolRules), Tools: []string{}, ToolIDs: []string{}, IncludeBaseTools: new(false),
		MessageBufferAutoclear: a.MessageBufferAutoclear, EnableSleeptime: new(false), Timezone: &a.Timezone,
		Hidden: a.Hidden,
	}
	if len(a.ToolEnv) > 0 {
		blank := map[string]string{}
		for k := range a.ToolEnv {
			blank[k] = ""
		}
		fa.ToolExecEnvironmentVariables, fa.Secrets = blank, blank
	}
	for _, b := range blocks {
		id, fresh := x.fileID("block", b.ID)
		fa.BlockIDs = append(fa.BlockIDs, id)
		if fresh {
			x.file.Blocks = append(x.file.Blocks, exportBlock(id, b))
		}
	}
	for _, t := range tools {
		lt := t.Letta()
		id, fresh := x.fileID("tool", lt.ID)
		fa.ToolIDs = append(fa.ToolIDs, id)
		if fresh {
			if err := x.mcpServer(lt); err != nil {
				return err
			}
			lt.ID = id
			x.file.Tools = append(x.file.Tools, lt)
		}
	}
	if err := x.folders(&fa, a.ID); err != nil {
		return err
	}
	if !scrub {
		if err := x.messages(&fa, o); err != nil {
			return err
		}
	}
	x.file.Agents = append(x.file.Agents, fa)
	return nil
}

// messages exports the owner's context: its system message, its summary
// and the messages in it.
func (x *exporter) messages(fa *letta.AgentFileAgent, o window.Owner) error {
	var ms []*schema.Message
	for _, get := range []func(kv.Txn, window.Owner) (*schema.Message, error){window.System, window.Summary} {
		m, err := get(x.txn, o)
		if err != nil {
			return err
		}
		if m != nil {
			ms = append(ms, m)
		}
	}
	rest, err := window.Messages(x.txn, o)
	if err != nil {
		return err
	}
	for _, m := range append(ms, rest...) {
		id, _ := x.fileID("message", m.ID)
		fa.Messages = append(fa.Messages, exportMessage(id, fa.ID, m))
		fa.InContextMessageIDs = append(fa.InContextMessageIDs, id)
	}
	return nil
}

func exportBlock(id string, b *schema.Block) letta.AgentFileBlock {
	metadata := b.Metadata
	if metadata == nil {
		metadata = map[string]any{}
	}
	return letta.AgentFileBlock{ID: id, CreateBlock: letta.CreateBlock{
		Label: &b.Label, Value: &b.Value, Limit: &b.Limit, Description: b.Description, Metadata: metadata,
		ReadOnly: b.ReadOnly, Hidden: b.Hidden, IsTemplate: b.IsTemplate, TemplateName: b.TemplateName,
		PreserveOnMigration: b.PreserveOnMigration, Tags: nonNil(b.Tags),
	}}
}

// contentPart is one part of a message's content in Letta's stored shape.
type contentPart struct {
	Type      string  `json:"type"`
	Text      *string `json:"text,omitempty"`
	Reasoning *string `json:"reasoning,omitempty"`
	IsNative  *bool   `json:"is_native,omitempty"`
}

// exportMessage renders a stored message as Letta stores it.
func exportMessage(id, agentFileID string, m *schema.Message) letta.AgentFileMessage {
	fm := letta.AgentFileMessage{ID: id, Role: m.Role, Name: m.Name, AgentID: &agentFileID,
		CreatedAt: letta.Timestamp{Time: m.CreatedAt}, ToolCalls: nil}
	var parts []contentPart
	if m.Reasoning != "" {
		parts = append(parts, contentPart{Type: "reasoning", Reasoning: &m.Reasoning, IsNative: new(true)})
	}
	switch {
	case m.Role == schema.RoleUser && len(m.Content) > 0 && m.Content[0] == '[':
		fm.Content = m.Content
	case m.Text != "" || m.Role != schema.RoleAssistant:
		parts = append(parts, contentPart{Type: "text", Text: &m.Text})
	}
	if fm.Content == nil {
		fm.Content, _ = json.Marshal(nonNil(parts))
	}
	for _, tc := range m.ToolCalls {
		var c letta.OpenAIToolCall
		c.ID, c.Type, c.Function.Name, c.Function.Arguments = tc.ID, "function", tc.Name, tc.Arguments
		fm.ToolCalls = append(fm.ToolCalls, c)
	}
	if m.Role == schema.RoleTool {
		status := m.ToolStatus
		if status == "" {
			status = "success"
		}
		fm.ToolCallID, fm.Name = &m.ToolCallID, &m.ToolName
		resp, _ := json.Marshal(m.Text)
		fm.ToolReturns = []letta.AgentFileToolReturn{{ToolCallID: &m.ToolCallID, Status: status,
			Stdout: message.Lines(m.Stdout), Stderr: message.Lines(m.Stderr), FuncResponse: resp}}
	}
	return fm
}

// importedMessage reads a message of a file into the stored shape (its
// id, agent and sequence number are the importer's).
func importedMessage(field string, fm letta.AgentFileMessage, memgpt bool) (*schema.Message, error) {
	m := &schema.Message{Role: fm.Role, Name: fm.Name, CreatedAt: fm.CreatedAt.Time.UTC()}
	switch fm.Role {
	case schema.RoleUser, schema.RoleAssistant, schema.RoleTool, schema.RoleSystem, schema.RoleSummary:
	case "function":
		m.Role = schema.RoleTool
	default:
		return nil, letta.Invalidf("%s: messages of role %q are not supported by this server", field, letta.Clip(fm.Role))
	}
	if err := readContent(field, fm.Content, m); err != nil {
		return nil, err
	}
	for _, tc := range fm.ToolCalls {
		if tc.ID == "" || tc.Function.Name == "" {
			return nil, letta.Invalidf("%s: a tool call needs an id and a function name", field)
		}
		m.ToolCalls = append(m.ToolCalls, schema.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
	}
	m.ThoughtsInText = memgpt && len(m.ToolCalls) > 0
	if m.Role == schema.RoleTool {
		if fm.ToolCallID == nil || *fm.ToolCallID == "" {
			return nil, letta.Invalidf("%s: a tool message needs its tool_call_id", field)
		}
		m.ToolCallID, m.ToolStatus = *fm.ToolCallID, "success"
		if fm.Name != nil {
			m.ToolName, m.Name = *fm.Name, nil
		}
		if len(fm.ToolReturns) > 0 {
			r := fm.ToolReturns[0]
			if r.Status == "error" {
				m.ToolStatus = "error"
			}
			m.Stdout, m.Stderr = strings.Join(r.Stdout, ""), strings.Join(r.Stderr, "")
		}
	}
	if m.Role == schema.RoleUser && !onlyText(fm.Content) {
		m.Content = fm.Content // images: kept as sent
	}
	return m, nil
}

// onlyText reports whether content is a string or text parts only.
func onlyText(raw json.RawMessage) bool {
	var parts []contentPart
	if json.Unmarshal(raw, &parts) != nil {
		return true
	}
	for _, p := range parts {
		if p.Type != "text" {
			return false
		}
	}
	return true
}

// readContent reads a message's content (a string or a list of parts)
// into its text and reasoning.
func readContent(field string, raw json.RawMessage, m *schema.Message) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, &m.Text); err == nil {
		return nil
	}
	var parts []contentPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return letta.Invalidf("%s: content must be a string or a list of content parts", field)
	}
	var texts, reasoning []string
	for _, p := range parts {
		switch {
		case p.Type == "text" && p.Text != nil:
			texts = append(texts, *p.Text)
		case p.Type == "reasoning" && p.Reasoning != nil:
			reasoning = append(reasoning, *p.Reasoning)
		}
	}
	m.Text, m.Reasoning = strings.Join(texts, "\n"), strings.Join(reasoning, "\n")
	return nil
}

// checkFileID checks an id of the file: kind-<integer>, as Letta's
// importer requires (its message, which starts with a capital).
func checkFileID(kind, id string) error {
	rest, ok := strings.CutPrefix(id, kind+"-")
	if !ok {
		return fmt.Errorf("Invalid ID format: %s should start with '%s-'", id, kind) //lint:ignore ST1005 Letta's text
	}
	if _, err := strconv.Atoi(rest); err != nil {
		return fmt.Errorf("Invalid ID format: %s should have integer suffix", id) //lint:ignore ST1005 Letta's text
	}
	return nil
}
