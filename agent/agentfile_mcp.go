package agent

import (
	"fmt"
	"time"

	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// MCP servers in agent files, as Letta writes and reads them: an export
// lists the servers of the agents' MCP tools, without their secrets (auth
// token, custom headers, stdio env); an import creates each server, or
// reuses the one of its name here (its address or command updated from
// the file, its secrets kept, as Letta's create-or-update does), then the
// MCP tools of the file as tools of those servers. The user re-enters
// secrets afterwards.

// mcpServer adds to the file the MCP server of a tool the export met, if
// it is an MCP tool whose server is not in the file yet.
func (x *exporter) mcpServer(t letta.Tool) error {
	sid := schema.MCPServerOf(&schema.Tool{Tool: t})
	if sid == "" {
		return nil
	}
	id, fresh := x.fileID(MCPIDPrefix, sid)
	if !fresh {
		return nil
	}
	s, err := schema.GetMCPServer(x.txn, sid)
	if err != nil {
		return schema.Dangling(err, "tool %s", t.ID)
	}
	fs := letta.AgentFileMCPServer{ID: id, ServerType: s.Type, ServerName: s.Name}
	if s.Type == schema.MCPStdio {
		fs.StdioConfig = &letta.AgentFileStdio{ServerName: s.Name, Type: s.Type, Command: s.Command, Args: nonNil(s.Args)}
	} else {
		fs.ServerURL = new(s.URL)
	}
	x.file.MCPServers = append(x.file.MCPServers, fs)
	return nil
}

// fileMCPServer is the server a file describes, as it would be stored
// (no id, no secrets).
func fileMCPServer(fs letta.AgentFileMCPServer) (*schema.MCPServer, error) {
	s := &schema.MCPServer{Name: fs.ServerName, Type: fs.ServerType}
	if err := checkMCPName(fs.ServerName); err != nil {
		return nil, err
	}
	switch fs.ServerType {
	case schema.MCPStdio:
		if fs.StdioConfig == nil || fs.StdioConfig.Command == "" {
			return nil, fmt.Errorf("a stdio server needs its stdio_config with a command")
		}
		s.Command, s.Args, s.Env = fs.StdioConfig.Command, fs.StdioConfig.Args, fs.StdioConfig.Env
	case schema.MCPSSE, schema.MCPStreamableHTTP:
		if fs.ServerURL == nil || *fs.ServerURL == "" {
			return nil, fmt.Errorf("a %s server needs its server_url", fs.ServerType)
		}
		s.URL = *fs.ServerURL
	default:
		return nil, fmt.Errorf("server_type must be one of 'stdio', 'sse', 'streamable_http', got %q", letta.Clip(fs.ServerType))
	}
	return s, checkMCPSize(s)
}

// checkFileMCPServers checks a file's MCP servers (their shape, and that
// this server may reach them) and that each MCP tool names one of them.
func (c *core) checkFileMCPServers(f *letta.AgentFile) error {
	names := map[string]bool{}
	for _, fs := range f.MCPServers {
		if c.mcp == nil {
			return importError("the file has MCP servers, but %s", errNoMCP.Message)
		}
		s, err := fileMCPServer(fs)
		if err == nil {
			err = c.mcp.Check(s)
		}
		if err != nil {
			return importError("mcp server %s: %v", fs.ID, err)
		}
		if names[fs.ServerName] {
			return importError("the file has two MCP servers named %q", letta.Clip(fs.ServerName))
		}
		names[fs.ServerName] = true
	}
	for _, t := range f.Tools {
		if t.ToolType != schema.ToolTypeMCP {
			continue
		}
		if name := mcpServerNameOf(t); !names[name] {
			return importError("tool %s: its MCP server %q is not among the file's mcp_servers", t.ID, letta.Clip(name))
		}
	}
	return nil
}

// mcpServerNameOf is the server name an MCP tool's metadata gives.
func mcpServerNameOf(t letta.Tool) string {
	m, _ := t.Metadata[schema.MCPMetadataKey].(map[string]any)
	name, _ := m["server_name"].(string)
	return name
}

// checkFileMCPTool checks an MCP tool of a file: a name a model can call
// that no built-in tool has, and a schema.
func checkFileMCPTool(t letta.Tool) error {
	if !mcpToolNamePattern.MatchString(t.Name) {
		return fmt.Errorf("tool %s: %q is not a name a model can call (letters, digits, _ and -, at most 64)", t.ID, letta.Clip(t.Name))
	}
	if _, builtin := tool.Lookup(t.Name); builtin {
		return fmt.Errorf("tool %s: %q is the name of a built-in tool", t.ID, t.Name)
	}
	if t.JSONSchema == nil {
		return fmt.Errorf("tool %s: an MCP tool needs its json_schema", t.ID)
	}
	return nil
}

// importMCPServers creates the file's MCP servers, or updates those whose
// name is taken here, in the import's transaction, and returns them by
// name.
func importMCPServers(c *core, txn kv.Txn, fss []letta.AgentFileMCPServer, ids map[string]string, now time.Time) (map[string]*schema.MCPServer, error) {
	out := map[string]*schema.MCPServer{}
	for _, fs := range fss {
		s, err := fileMCPServer(fs)
		if err != nil {
			return nil, err
		}
		id, err := schema.MCPServerIDByName(txn, s.Name)
		if err != nil {
			return nil, err
		}
		if id == "" {
			if s.ID, err = c.newID(MCPIDPrefix); err != nil {
				return nil, err
			}
			s.CreatedAt = now
		} else {
			old, err := schema.GetMCPServer(txn, id)
			if err != nil {
				return nil, schema.Dangling(err, "name entry %q", s.Name)
			}
			if old.Type != s.Type {
				return nil, importError("mcp server %s: %q is a %s server here, not %s", fs.ID, s.Name, old.Type, s.Type)
			}
			// The file has no secrets: the ones stored stay.
			kept := *old
			kept.URL, kept.Command, kept.Args = s.URL, s.Command, s.Args
			if s.Env != nil {
				kept.Env = s.Env
			}
			s = &kept
		}
		s.UpdatedAt = now
		if err := schema.PutMCPServer(txn, s, s.Name); err != nil {
			return nil, err
		}
		ids[fs.ID], out[s.Name] = s.ID, s
	}
	return out, nil
}

// importMCPTool returns the id here of the file's MCP tool t: that of the
// tool of its name if it is an MCP tool (its schema replaced if override),
// else a new tool of its server.
func importMCPTool(c *core, txn kv.Txn, t letta.Tool, servers map[string]*schema.MCPServer, override bool, now time.Time) (string, error) {
	s := servers[mcpServerNameOf(t)]
	id, err := schema.ToolIDByName(txn, t.Name)
	if err != nil {
		return "", err
	}
	if id != "" {
		have, err := schema.GetTool(txn, id)
		if err != nil {
			return "", err
		}
		if schema.MCPServerOf(have) == "" {
			return "", importError("tool %s: %q is the name of custom tool %s here", t.ID, letta.Clip(t.Name), id)
		}
		if !override {
			return id, nil
		}
		have.JSONSchema, have.Description, have.UpdatedAt = t.JSONSchema, t.Description, now
		return id, schema.PutMCPTool(txn, s, have, have.Name, false)
	}
	if id, err = c.newID("tool"); err != nil {
		return "", err
	}
	rec := &schema.Tool{Tool: letta.Tool{ID: id, Name: t.Name, Description: t.Description, SourceType: new("python"),
		JSONSchema: t.JSONSchema, ReturnCharLimit: t.ReturnCharLimit}, CreatedAt: now, UpdatedAt: now}
	if rec.ReturnCharLimit <= 0 {
		rec.ReturnCharLimit = letta.DefaultReturnCharLimit
	}
	return id, schema.PutMCPTool(txn, s, rec, "", true)
}
