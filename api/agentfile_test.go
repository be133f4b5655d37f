package api

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/letta"
)

// upload posts an agent file to /v1/agents/import as a multipart form
// with fields (name, value pairs).
func (c *client) upload(file []byte, fields ...string) response {
	c.t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	if file != nil {
		fw, err := w.CreateFormFile("file", "agent.af")
		if err != nil {
			c.t.Fatal(err)
		}
		fw.Write(file)
	}
	for i := 0; i+1 < len(fields); i += 2 {
		w.WriteField(fields[i], fields[i+1])
	}
	w.Close()
	req, err := http.NewRequest("POST", c.base+"/v1/agents/import", &body)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, data}
}

// A file in Letta's own export shape (as its server writes it: memgpt_v2
// agent, send_message history, a custom tool, a core tool typed
// letta_sleeptime_core, null fields everywhere).
const lettaExport = `{
 "agents": [{
  "name": "analyst", "memory_blocks": [], "tools": [], "tool_ids": ["tool-0", "tool-1", "tool-2"],
  "source_ids": [], "block_ids": ["block-0"], "tool_rules": [], "tags": ["export"],
  "system": "You are an analyst.", "agent_type": "memgpt_v2_agent",
  "llm_config": {"model": "gpt-4o-mini", "model_endpoint_type": "openai", "model_endpoint": "https://api.openai.com/v1", "context_window": 32000, "handle": "openai/gpt-4o-mini", "temperature": 0.7},
  "embedding_config": {"embedding_endpoint_type": "openai", "embedding_model": "text-embedding-3-small", "embedding_dim": 1536, "embedding_chunk_size": 300},
  "initial_message_sequence": null, "include_base_tools": false, "description": null, "metadata": null,
  "model": null, "embedding": null, "tool_exec_environment_variables": {}, "secrets": null, "identity_ids": null,
  "message_buffer_autoclear": false, "enable_sleeptime": false, "timezone": "UTC", "max_files_open": 5,
  "per_file_view_window_char_limit": 15000, "hidden": null, "id": "agent-0",
  "in_context_message_ids": ["message-0", "message-1", "message-2", "message-3"], "files_agents": [], "group_ids": [],
  "messages": [
   {"type": "message", "role": "system", "content": [{"type": "text", "text": "old prompt", "signature": null}], "name": null, "otid": null, "sender_id": null, "batch_item_id": null, "group_id": null, "id": "message-0", "model": null, "agent_id": "agent-0", "tool_calls": null, "tool_call_id": null, "tool_returns": [], "created_at": "2025-10-10T07:14:29.101+00:00", "approve": null, "approval_request_id": null, "denial_reason": null, "approvals": []},
   {"type": "message", "role": "user", "content": [{"type": "text", "text": "Compute fib(5)", "signature": null}], "name": null, "otid": null, "sender_id": null, "batch_item_id": null, "group_id": null, "id": "message-1", "model": null, "agent_id": "agent-0", "tool_calls": null, "tool_call_id": null, "tool_returns": [], "created_at": "2025-10-10T07:14:31.639749+00:00", "approve": null, "approval_request_id": null, "denial_reason": null, "approvals": []},
   {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "Answering.", "signature": null}], "name": null, "otid": null, "sender_id": null, "batch_item_id": null, "group_id": null, "id": "message-2", "model": "gpt-4o-mini", "agent_id": "agent-0", "tool_calls": [{"id": "call_1", "function": {"arguments": "{\"message\": \"fib(5) = 5\"}", "name": "send_message"}, "type": "function"}], "tool_call_id": null, "tool_returns": [], "created_at": "2025-10-10T07:14:32+00:00", "approve": null, "approval_request_id": null, "denial_reason": null, "approvals": []},
   {"type": "message", "role": "tool", "content": [{"type": "text", "text": "{\"status\": \"OK\"}", "signature": null}], "name": "send_message", "otid": null, "sender_id": null, "batch_item_id": null, "group_id": null, "id": "message-3", "model": "gpt-4o-mini", "agent_id": "agent-0", "tool_calls": null, "tool_call_id": "call_1", "tool_returns": [{"tool_call_id": "call_1", "status": "success", "stdout": null, "stderr": null, "func_response": "{\"status\": \"OK\"}"}], "created_at": "2025-10-10T07:14:33+00:00", "approve": null, "approval_request_id": null, "denial_reason": null, "approvals": []}
  ]
 }],
 "groups": [],
 "blocks": [{"value": "Project: numbers", "limit": 6000, "project_id": null, "template_name": null, "is_template": false, "template_id": null, "base_template_id": null, "deployment_id": null, "entity_id": null, "preserve_on_migration": false, "label": "project_context", "read_only": false, "description": null, "metadata": {}, "hidden": null, "tags": null, "id": "block-0"}],
 "files": [], "sources": [],
 "tools": [
  {"id": "tool-0", "tool_type": "custom", "description": "Fibonacci.", "source_type": "python", "name": "calculate_fibonacci", "tags": [], "source_code": "def calculate_fibonacci(n: int) -> int:\n    \"\"\"Fibonacci.\"\"\"\n    return n\n", "json_schema": {"name": "calculate_fibonacci", "description": "Fibonacci.", "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}, "args_json_schema": null, "return_char_limit": 6000, "pip_requirements": null, "npm_requirements": null, "default_requires_approval": null, "created_by_id": "user-00000000-0000-4000-8000-000000000000", "last_updated_by_id": null, "metadata_": {}},
  {"id": "tool-1", "tool_type": "letta_core", "description": "Sends a message.", "source_type": "python", "name": "send_message", "tags": ["letta_core"], "source_code": null, "json_schema": {"name": "send_message"}, "args_json_schema": null, "return_char_limit": 1000000, "pip_requirements": null, "npm_requirements": null, "default_requires_approval": null, "created_by_id": null, "last_updated_by_id": null, "metadata_": {}},
  {"id": "tool-2", "tool_type": "letta_sleeptime_core", "description": "Insert.", "source_type": "python", "name": "memory_insert", "tags": ["letta_sleeptime_core"], "source_code": null, "json_schema": {"name": "memory_insert"}, "args_json_schema": null, "return_char_limit": 1000000, "pip_requirements": null, "npm_requirements": null, "default_requires_approval": null, "created_by_id": null, "last_updated_by_id": null, "metadata_": {}}
 ],
 "mcp_servers": [],
 "metadata": {"revision_id": "c734cfc0d595"},
 "created_at": "2025-10-10T07:14:34.2+00:00"
}`

// Spec: POST /v1/agents/import takes Letta's own agent files (multipart
// "file"), answers {"agent_ids": [...]}, and the agent is there with its
// blocks, tools and history; GET /v1/agents/{id}/export answers a file
// that imports again. Bad files get Letta's errors and change nothing.
func TestAgentFileRoutes(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	r := c.upload([]byte(lettaExport))
	if r.status != http.StatusOK {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	var imported letta.ImportedAgents
	if err := json.Unmarshal(r.body, &imported); err != nil || len(imported.AgentIDs) != 1 {
		t.Fatalf("import answer %s: %v", r.body, err)
	}
	id := imported.AgentIDs[0]
	var st letta.AgentState
	c.ok("GET", "/v1/agents/"+id+"?include=agent.blocks&include=agent.tools", "", &st)
	if st.Name != "analyst_copy" || st.AgentType != "memgpt_v2_agent" || len(st.Blocks) != 1 || st.Blocks[0].Value != "Project: numbers" || len(st.Tools) != 3 {
		t.Fatalf("imported agent: name %q type %q blocks %+v tools %d", st.Name, st.AgentType, st.Blocks, len(st.Tools))
	}
	if len(st.MessageIDs) != 4 {
		t.Errorf("imported context %v, want the system message and 3 more", st.MessageIDs)
	}
	var msgs []map[string]any
	c.ok("GET", "/v1/agents/"+id+"/messages?order=asc", "", &msgs)
	var kinds []string
	for _, m := range msgs {
		kinds = append(kinds, m["message_type"].(string))
	}
	if got := strings.Join(kinds, ","); got != "system_message,user_message,reasoning_message,assistant_message,tool_return_message" {
		t.Errorf("imported history %s", got)
	}

	// Export, then import the export under another name.
	exp := c.do("GET", "/v1/agents/"+id+"/export", "")
	if exp.status != http.StatusOK {
		t.Fatalf("export: %d %s", exp.status, exp.body)
	}
	var f letta.AgentFile
	if err := json.Unmarshal(exp.body, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Tools) != 3 || len(f.Blocks) != 1 || f.Agents[0].Messages[1].Role != "user" || f.Metadata["revision_id"] == "" {
		t.Fatalf("export %s", exp.body)
	}
	r = c.upload(exp.body, "name", "second", "strip_messages", "true")
	if r.status != http.StatusOK {
		t.Fatalf("re-import: %d %s", r.status, r.body)
	}
	json.Unmarshal(r.body, &imported)
	c.ok("GET", "/v1/agents/"+imported.AgentIDs[0], "", &st)
	if st.Name != "second" || len(st.MessageIDs) != 1 {
		t.Errorf("re-imported %q with %d messages in context, want \"second\" with its system message only", st.Name, len(st.MessageIDs))
	}
	scrubbed := c.do("GET", "/v1/agents/"+id+"/export?scrub_messages=true", "")
	if !bytes.Contains(scrubbed.body, []byte(`"messages":[]`)) {
		t.Errorf("scrubbed export has messages: %s", scrubbed.body)
	}

	before := c.snapshot()
	for _, tc := range []struct {
		name   string
		file   []byte
		status int
		detail string
	}{
		{"not JSON", []byte("{"), 400, "Corrupted agent file format."},
		{"legacy", []byte(`{"name": "x", "messages": []}`), 400, "Legacy AgentSchema format is deprecated"},
		{"bad id", []byte(strings.Replace(lettaExport, `"id": "block-0"`, `"id": "block-x"`, 1)), 400, "should have integer suffix"},
		{"unknown block", []byte(strings.Replace(lettaExport, `"block_ids": ["block-0"]`, `"block_ids": ["block-7"]`, 1)), 400, "names block block-7"},
		{"file of no folder", []byte(strings.Replace(lettaExport, `"files": []`, `"files": [{"id": "file-0", "source_id": "source-3", "file_name": "s/a.txt", "processing_status": "completed", "content": "x"}]`, 1)), 400, "File file-0 references non-existent source source-3"},
	} {
		r := c.upload(tc.file)
		if r.status != tc.status || !strings.Contains(string(r.body), tc.detail) {
			t.Errorf("%s: %d %s, want %d %q", tc.name, r.status, r.body, tc.status, tc.detail)
		}
	}
	if r := c.upload(nil); r.status != http.StatusUnprocessableEntity {
		t.Errorf("no file: %d %s", r.status, r.body)
	}
	if after := c.snapshot(); after != before {
		t.Error("a refused import changed what is stored")
	}
	c.expect(404, "GET", "/v1/agents/agent-00000000-0000-4000-8000-000000000000/export", "")
	c.expect(400, "GET", "/v1/agents/"+id+"/export?use_legacy_format=true", "")
}
