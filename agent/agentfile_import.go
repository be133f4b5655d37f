package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/agent/prompt"
	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/agent/window"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// ImportOptions adjust what an import creates (Letta's import form).
type ImportOptions struct {
	// Name names the (first) imported agent; otherwise AppendCopySuffix
	// appends "_copy" to each agent's name, as Letta does by default.
	Name             *string
	AppendCopySuffix bool
	// Model and Embedding replace the agents' model and embedding handles.
	Model, Embedding *string
	ProjectID        *string
	StripMessages    bool
	// OverrideExistingTools lets the file's custom tools replace the
	// source of existing tools of the same name; otherwise those are used
	// as they are.
	OverrideExistingTools bool
	// Secrets fill the values of the agents' secrets (blank in a file).
	Secrets map[string]string
}

// importPayload is the payload of opImportAgents: the checked file, with
// the new agents' ids.
type importPayload struct {
	AgentIDs []string               `json:"agent_ids"`
	Agents   []importedAgent        `json:"agents"`
	Groups   []letta.AgentFileGroup `json:"groups"`
	Blocks   []letta.AgentFileBlock `json:"blocks"`
	Tools    []letta.Tool           `json:"tools"`
	Override bool                   `json:"override"`
	// MCPServers are the file's, created or updated by name.
	MCPServers []letta.AgentFileMCPServer `json:"mcp_servers"`
	// Folders and Files are the file's, with the ids they get here.
	Folders   []importedFolder `json:"folders"`
	Files     []importedFile   `json:"files"`
	FolderIDs []string         `json:"folder_ids"`
	FileIDs   []string         `json:"file_ids"`
}

// importedAgent is an agent of the file as the import op writes it: its
// create request (block and tool ids still the file's) and its messages
// in order, each marked in context or not.
type importedAgent struct {
	FileID    string                   `json:"file_id"`
	Req       letta.CreateAgentRequest `json:"req"`
	Messages  []*schema.Message        `json:"messages"`
	InContext []bool                   `json:"in_context"`
	// SourceIDs and FilesAgents are its folders and its views of their
	// files, by the file's ids.
	SourceIDs   []string                   `json:"source_ids"`
	FilesAgents []letta.AgentFileFileAgent `json:"files_agents"`
}

// Import creates the agents of an agent file, with their blocks, custom
// tools, messages, folders (agentfile_folders.go) and MCP servers
// (agentfile_mcp.go), in ONE transaction: a failed or interrupted import
// leaves nothing behind. It returns the new agents' ids in the file's
// order. Blocks are created anew (shared between the file's agents as the
// file shares them); custom tools are matched by name; built-in tools by
// name. Each agent's context is the file's in-context messages after a
// system message compiled from its imported instructions and memory.
func (s *Agents) Import(ctx context.Context, f *letta.AgentFile, opt ImportOptions) ([]string, error) {
	p, err := s.c.planImport(f, opt)
	if err != nil {
		return nil, err
	}
	for i := range p.Agents {
		prefix := "agent"
		var id string
		if i == 0 {
			id, err = s.c.newIDFor(ctx, prefix)
		} else {
			id, err = s.c.newID(prefix)
		}
		if err != nil {
			return nil, err
		}
		p.AgentIDs = append(p.AgentIDs, id)
	}
	for _, ids := range []struct {
		prefix string
		n      int
		out    *[]string
	}{{"source", len(p.Folders), &p.FolderIDs}, {"file", len(p.Files), &p.FileIDs}} {
		for range ids.n {
			id, err := s.c.newID(ids.prefix)
			if err != nil {
				return nil, err
			}
			*ids.out = append(*ids.out, id)
		}
	}
	var out letta.ImportedAgents
	if err := s.c.invoke(ctx, schema.AgentActor(p.AgentIDs[0]), opImportAgents, p, &out); err != nil {
		return nil, err
	}
	// The files' text is embedded in the background, as an upload's is.
	for _, id := range p.FileIDs {
		s.c.ingest.start(id)
	}
	return out.AgentIDs, nil
}

// importError is Letta's AgentFileImportError: a 400 naming what failed.
func importError(format string, args ...any) error {
	return letta.Invalidf("Import failed: "+format, args...)
}

// planImport checks a file and resolves the options into what the import
// op writes; nothing is written.
func (c *core) planImport(f *letta.AgentFile, opt ImportOptions) (importPayload, error) {
	if err := checkAgentFile(f); err != nil {
		return importPayload{}, err
	}
	if err := c.checkFileMCPServers(f); err != nil {
		return importPayload{}, err
	}
	p := importPayload{Blocks: f.Blocks, Tools: f.Tools, Groups: f.Groups, Override: opt.OverrideExistingTools, MCPServers: f.MCPServers}
	var err error
	if p.Folders, p.Files, err = planFolders(f, opt.Embedding); err != nil {
		return p, err
	}
	for i, fa := range f.Agents {
		req := fa.CreateAgentRequest
		req.MemoryBlocks, req.Tools, req.IdentityIDs, req.InitialMessageSequence = nil, nil, nil, nil
		if req.IncludeBaseTools == nil {
			req.IncludeBaseTools = new(false) // the file lists its tools
		}
		if req.Name == nil {
			req.Name = new("")
		}
		switch {
		case opt.Name != nil && i == 0:
			req.Name = opt.Name
		case opt.AppendCopySuffix:
			req.Name = new(*req.Name + "_copy")
		}
		if opt.ProjectID != nil {
			req.ProjectID = opt.ProjectID
		}
		if opt.Model != nil {
			model, err := c.autoModel(opt.Model)
			if err != nil {
				return p, err
			}
			req.Model, req.LLMConfig = model, nil
		}
		if opt.Embedding != nil {
			req.Embedding, req.EmbeddingConfig = opt.Embedding, nil
		}
		fillSecrets(&req, opt.Secrets)
		// Its block and tool ids are the file's, checked with the file.
		checked := req
		checked.BlockIDs, checked.ToolIDs = nil, nil
		if err := checkCreateAgent(checked); err != nil {
			return p, importError("agent %s: %v", fa.ID, err)
		}
		ia := importedAgent{FileID: fa.ID, Req: req, SourceIDs: fa.SourceIDs, FilesAgents: fa.FilesAgents}
		if !opt.StripMessages {
			var err error
			if ia.Messages, ia.InContext, err = fileMessages(fa, prompt.IsMemGPT(deref(req.AgentType))); err != nil {
				return p, err
			}
		}
		p.Agents = append(p.Agents, ia)
	}
	return p, nil
}

// fillSecrets gives the agent's secrets (blank in a file) their values.
func fillSecrets(req *letta.CreateAgentRequest, values map[string]string) {
	if values == nil {
		return
	}
	for _, env := range []map[string]string{req.Secrets, req.ToolExecEnvironmentVariables} {
		for k := range env {
			env[k] = values[k]
		}
	}
}

// fileMessages reads an agent's messages, in the file's order, and marks
// those its context holds.
func fileMessages(fa letta.AgentFileAgent, memgpt bool) ([]*schema.Message, []bool, error) {
	missing := map[string]bool{}
	for _, id := range fa.InContextMessageIDs {
		missing[id] = true
	}
	var ms []*schema.Message
	var inContext []bool
	for _, fm := range fa.Messages {
		m, err := importedMessage(fmt.Sprintf("agent %s message %s", fa.ID, fm.ID), fm, memgpt)
		if err != nil {
			return nil, nil, err
		}
		in := missing[fm.ID]
		delete(missing, fm.ID)
		if m.Role == schema.RoleSystem && (len(fa.InContextMessageIDs) == 0 || fm.ID == fa.InContextMessageIDs[0]) {
			// The context's system message (its first) is compiled anew
			// from the agent's instructions and memory as imported;
			// other system messages are inputs, kept as the others.
			continue
		}
		ms, inContext = append(ms, m), append(inContext, in)
	}
	for id := range missing {
		return nil, nil, importError("agent %s lists message %s in its context, but has no such message", fa.ID, id)
	}
	return ms, inContext, nil
}

// checkAgentFile checks a file's shape and references as Letta's importer
// does.
func checkAgentFile(f *letta.AgentFile) error {
	var errs []string
	note := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	switch {
	case len(f.Agents) == 0:
		return importError("the file has no agents")
	case len(f.Agents) > MaxAgentFileAgents:
		return importError("the file has %d agents, over the limit of %d", len(f.Agents), MaxAgentFileAgents)
	}
	seen := map[string]bool{}
	unique := func(id string) {
		if seen[id] {
			errs = append(errs, "Duplicate ID across entity types: "+id)
		}
		seen[id] = true
	}
	for _, s := range f.MCPServers {
		note(checkFileID(MCPIDPrefix, s.ID))
		unique(s.ID)
	}
	blocks, tools := map[string]bool{}, map[string]bool{}
	for _, b := range f.Blocks {
		note(checkFileID("block", b.ID))
		unique(b.ID)
		blocks[b.ID] = true
		if b.Label == nil {
			errs = append(errs, fmt.Sprintf("block %s has no label", b.ID))
			continue
		}
		note(memory.CheckCreate("block "+b.ID, b.CreateBlock))
	}
	for _, t := range f.Tools {
		note(checkFileID("tool", t.ID))
		unique(t.ID)
		tools[t.ID] = true
		note(checkFileTool(t))
	}
	agents := map[string]bool{}
	for _, a := range f.Agents {
		agents[a.ID] = true
	}
	for _, g := range f.Groups {
		note(checkFileID("group", g.ID))
		unique(g.ID)
		note(checkFileGroup(g, agents))
	}
	for _, a := range f.Agents {
		note(checkFileID("agent", a.ID))
		unique(a.ID)
		if len(a.Messages) > MaxAgentFileMessages {
			errs = append(errs, fmt.Sprintf("agent %s has %d messages, over the limit of %d", a.ID, len(a.Messages), MaxAgentFileMessages))
		}
		for _, m := range a.Messages {
			note(checkFileID("message", m.ID))
			unique(m.ID)
		}
		for _, id := range a.BlockIDs {
			if !blocks[id] {
				errs = append(errs, fmt.Sprintf("agent %s names block %s, which the file does not have", a.ID, id))
			}
		}
		for _, id := range a.ToolIDs {
			if !tools[id] {
				errs = append(errs, fmt.Sprintf("agent %s names tool %s, which the file does not have", a.ID, id))
			}
		}
	}
	errs = append(errs, checkFileFolders(f, unique)...)
	if len(errs) > 0 {
		return importError("Schema validation failed: %s", strings.Join(errs, "; "))
	}
	return nil
}

// checkFileTool checks a tool of a file: a built-in tool this server has,
// an MCP tool, or a custom one with its source and schema.
func checkFileTool(t letta.Tool) error {
	if t.ToolType == schema.ToolTypeMCP {
		return checkFileMCPTool(t)
	}
	if t.ToolType != letta.ToolTypeCustom {
		if _, ok := tool.Lookup(t.Name); !ok {
			return fmt.Errorf("tool %s: %q is a %s tool this server does not have", t.ID, letta.Clip(t.Name), letta.Clip(t.ToolType))
		}
		return nil
	}
	if t.SourceCode == nil {
		return fmt.Errorf("tool %s: a custom tool needs its source_code", t.ID)
	}
	if err := letta.CheckChars("source_code", *t.SourceCode, letta.MaxSourceCodeChars); err != nil {
		return fmt.Errorf("tool %s: %v", t.ID, err)
	}
	name, err := schemaName(t.JSONSchema)
	if err != nil {
		return fmt.Errorf("tool %s: %v", t.ID, err)
	}
	if name != t.Name {
		return fmt.Errorf("tool %s: its json_schema names %q, not %q", t.ID, letta.Clip(name), letta.Clip(t.Name))
	}
	if _, builtin := tool.Lookup(name); builtin {
		return fmt.Errorf("tool %s: %q is the name of a built-in tool", t.ID, name)
	}
	return checkToolFields(t.Description, t.Tags, &t.ReturnCharLimit)
}

// importAgents is opImportAgents: everything the file holds, written in the
// invocation's one transaction. The first agent is the invoked actor's;
// the others are new agents whose ids nobody knows before this commits,
// so no activation of theirs can exist: their records are written here
// as their actors' states, with their index entries.
func importAgents(c *core, call *actor.Call, _ *schema.Agent, p importPayload) ([]byte, error) {
	txn, now := call.Txn, call.Now
	ids := map[string]string{} // the file's ids -> stored ids
	servers, err := importMCPServers(c, txn, p.MCPServers, ids, now)
	if err != nil {
		return nil, err
	}
	for _, t := range p.Tools {
		id, err := importTool(c, txn, t, servers, p.Override, now)
		if err != nil {
			return nil, err
		}
		ids[t.ID] = id
	}
	if err := importFolders(c, txn, p, ids, now); err != nil {
		return nil, err
	}
	for _, fb := range p.Blocks {
		id, err := c.newID("block")
		if err != nil {
			return nil, err
		}
		if err := schema.CreateMintedBlock(txn, memory.NewBlock(id, fb.CreateBlock, now), nil); err != nil { // id: random, just minted
			return nil, err
		}
		ids[fb.ID] = id
	}
	for i, ia := range p.Agents {
		req := ia.Req
		req.BlockIDs, req.ToolIDs = mapIDs(ids, req.BlockIDs), mapIDs(ids, req.ToolIDs)
		a, _, _, err := buildAgent(c, txn, p.AgentIDs[i], req, now, nil)
		if err != nil {
			return nil, err
		}
		// Its views are in the system message importHistory compiles.
		if err := attachImportedFolders(txn, a, ia, ids, now); err != nil {
			return nil, err
		}
		if err := importHistory(c, txn, a, ia, now); err != nil {
			return nil, err
		}
		if i == 0 {
			call.SetState(a)
			continue
		}
		if err := storeNewAgent(txn, a); err != nil {
			return nil, err
		}
	}
	for i, fa := range p.Agents {
		ids[fa.FileID] = p.AgentIDs[i]
	}
	if err := importGroups(c, txn, p, ids, now); err != nil {
		return nil, err
	}
	return schema.Encode(letta.ImportedAgents{AgentIDs: p.AgentIDs})
}

func mapIDs(ids map[string]string, fileIDs []string) []string {
	out := make([]string, len(fileIDs))
	for i, id := range fileIDs {
		out[i] = ids[id]
	}
	return out
}

// storeNewAgent writes a new agent's record as its actor's state, with
// its index entries, in txn.
func storeNewAgent(txn kv.Txn, a *schema.Agent) error {
	if _, err := txn.Get(schema.AgentKey(a.ID)); !errors.Is(err, kv.ErrNotFound) {
		if err == nil {
			err = letta.Conflictf("agent %s already exists", a.ID)
		}
		return err
	}
	data, err := schema.Encode(a)
	if err != nil {
		return err
	}
	if err := txn.Set(schema.AgentKey(a.ID), data); err != nil {
		return err
	}
	return schema.IndexAgent(txn, schema.Indexed{}, schema.IndexedOf(a))
}

// importHistory stores an imported agent's messages: those out of its
// context first, then its system message (which opens the context), then
// those in it, each in the file's order.
func importHistory(c *core, txn kv.Txn, a *schema.Agent, ia importedAgent, now time.Time) error {
	var seq uint64
	add := func(m *schema.Message) error {
		id, err := c.newID("message")
		if err != nil {
			return err
		}
		seq++
		m.ID, m.AgentID, m.Seq = id, a.ID, seq
		return schema.AppendMessage(txn, m)
	}
	for i, m := range ia.Messages {
		if !ia.InContext[i] {
			if err := add(m); err != nil {
				return err
			}
		}
	}
	if seq > 0 {
		// Out of the context: no context index entries.
		if err := schema.EvictContext(txn, a.ID, 1, seq+1); err != nil {
			return err
		}
	}
	// Compiled from what the transaction wrote: its blocks and open files,
	// after the messages stored out of its context.
	sys, err := window.Open(txn, window.Owner{Agent: a}, now)
	if err != nil {
		return err
	}
	seq = sys.Seq
	for i, m := range ia.Messages {
		if !ia.InContext[i] {
			continue
		}
		if err := add(m); err != nil {
			return err
		}
		if m.Role == schema.RoleSummary {
			a.Context.SummaryID, a.Context.SummarySeq = m.ID, m.Seq
		}
	}
	return nil
}

// importTool returns the id of the file's tool t here: a built-in tool's,
// an MCP tool's (importMCPTool), or that of the custom tool of its name,
// created or (override) updated from the file.
func importTool(c *core, txn kv.Txn, t letta.Tool, servers map[string]*schema.MCPServer, override bool, now time.Time) (string, error) {
	if t.ToolType == schema.ToolTypeMCP {
		return importMCPTool(c, txn, t, servers, override, now)
	}
	if t.ToolType != letta.ToolTypeCustom {
		b, _ := tool.Lookup(t.Name)
		return b.Letta().ID, nil
	}
	id, err := schema.ToolIDByName(txn, t.Name)
	if err != nil || id != "" && !override {
		return id, err
	}
	rec := &schema.Tool{CreatedAt: now}
	created := id == ""
	if created {
		if id, err = c.newID("tool"); err != nil {
			return "", err
		}
	} else {
		old, err := schema.GetTool(txn, id)
		if err != nil {
			return "", err
		}
		rec.CreatedAt = old.CreatedAt
	}
	rec.Tool, rec.UpdatedAt = t, now
	rec.ID, rec.ToolType = id, letta.ToolTypeCustom
	rec.Tags, rec.Metadata = nonNil(rec.Tags), nonNilMap(rec.Metadata)
	if rec.ReturnCharLimit <= 0 {
		rec.ReturnCharLimit = letta.DefaultReturnCharLimit
	}
	return id, schema.PutTool(txn, rec, t.Name, created)
}

// checkFileGroup checks a group of a file: its agents are the file's.
func checkFileGroup(g letta.AgentFileGroup, agents map[string]bool) error {
	if err := checkManager(g.ManagerConfig, true, false); err != nil {
		return fmt.Errorf("group %s: %v", g.ID, err)
	}
	members := slices.Clone(g.AgentIDs)
	if m := g.ManagerConfig; m != nil && m.ManagerAgentID != nil {
		members = append(members, *m.ManagerAgentID)
	}
	for _, id := range members {
		if !agents[id] {
			return fmt.Errorf("group %s names agent %s, which the file does not have", g.ID, id)
		}
	}
	if len(g.AgentIDs) > MaxGroupAgents {
		return fmt.Errorf("group %s has %d agents, over the limit of %d", g.ID, len(g.AgentIDs), MaxGroupAgents)
	}
	return nil
}

// importGroups creates the file's groups of the agents just created.
func importGroups(c *core, txn kv.Txn, p importPayload, ids map[string]string, now time.Time) error {
	for _, fg := range p.Groups {
		req := fg.GroupCreate
		req.AgentIDs = mapIDs(ids, req.AgentIDs)
		req.SharedBlockIDs = nil
		if req.Description == nil {
			req.Description = new("")
		}
		if m := req.ManagerConfig; m != nil && m.ManagerAgentID != nil {
			mc := *m
			mc.ManagerAgentID = new(ids[*m.ManagerAgentID])
			req.ManagerConfig = &mc
		}
		id, err := c.newID("group")
		if err != nil {
			return err
		}
		if _, err := newGroup(txn, id, req, now, p.AgentIDs...); err != nil {
			return err
		}
	}
	return nil
}
