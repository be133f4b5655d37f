package api

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
)

const usageLine = `data: {"message_type":"usage_statistics","completion_tokens":10,"prompt_tokens":100,"total_tokens":110,"step_count":1,"run_ids":null,"cached_input_tokens":null,"cache_write_tokens":null,"reasoning_tokens":null,"context_tokens":null}` + "\n\n"

func TestSendMessageNonStreaming(t *testing.T) {
	p := &scripted{}
	p.add(textReply("Hello, Ada!"))
	c, _ := newTurnServer(t, p, Options{})
	a := c.createAgent(`{"name":"talker","memory_blocks":[{"label":"human","value":"Ada"}]}`)
	r := c.do("POST", "/v1/agents/"+a.ID+"/messages", `{"messages":[{"role":"user","content":"hi","otid":"o-1"}]}`)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	want := `{"messages":[{"id":"message-X","date":"2025-05-01T12:00:00+00:00","name":null,"message_type":"assistant_message","otid":"X","sender_id":null,"step_id":"step-X","seq_id":1,"run_id":"run-X","content":"Hello, Ada!"}],` +
		`"stop_reason":{"message_type":"stop_reason","stop_reason":"end_turn"},` +
		`"usage":{"message_type":"usage_statistics","completion_tokens":10,"prompt_tokens":100,"total_tokens":110,"step_count":1,"run_ids":null,"cached_input_tokens":null,"cache_write_tokens":null,"reasoning_tokens":null,"context_tokens":null}}`
	if got := normalizeIDs(string(r.body)); got != want {
		t.Errorf("body:\n%s\nwant:\n%s", got, want)
	}
	// Resending the same otid answers the same, without a model call.
	r2 := c.do("POST", "/v1/agents/"+a.ID+"/messages", `{"messages":[{"role":"user","content":"hi","otid":"o-1"}]}`)
	var first, again letta.Response
	_ = json.Unmarshal(r.body, &first)
	_ = json.Unmarshal(r2.body, &again)
	if p.calls != 1 || !strings.Contains(string(r2.body), `"content":"Hello, Ada!"`) || normalizeIDs(string(r2.body)) != want {
		t.Errorf("resend: %d calls, %s", p.calls, r2.body)
	}
	// The history, newest first by default, with the user message's otid.
	var hist []map[string]any
	c.ok("GET", "/v1/agents/"+a.ID+"/messages", "", &hist)
	if len(hist) != 3 || hist[0]["message_type"] != "assistant_message" || hist[1]["message_type"] != "user_message" ||
		hist[1]["otid"] != "o-1" || hist[1]["content"] != "hi" || hist[1]["seq_id"] != nil {
		t.Errorf("history %v", hist)
	}
	var run letta.Run
	c.ok("GET", "/v1/runs/"+hist[0]["run_id"].(string), "", &run)
	if run.Status != "completed" || deref(run.StopReason) != "end_turn" || run.AgentID != a.ID {
		t.Errorf("run %+v", run)
	}
	var runMsgs []map[string]any
	c.ok("GET", "/v1/runs/"+run.ID+"/messages", "", &runMsgs)
	if len(runMsgs) != 2 || runMsgs[0]["message_type"] != "user_message" {
		t.Errorf("run messages %v", runMsgs)
	}
	// The run's usage is what the turn's answer reported.
	var usage letta.UsageStatistics
	c.ok("GET", "/v1/runs/"+run.ID+"/usage", "", &usage)
	if !reflect.DeepEqual(usage, first.Usage) {
		t.Errorf("run usage %+v, the turn answered %+v", usage, first.Usage)
	}
	c.expect(404, "GET", "/v1/runs/run-123e4567-e89b-42d3-8456-426614174000/usage", "")
	// include_return_message_types filters the response.
	p.add(toolCallReply("c1", "conversation_search", `{"query":"hi"}`), textReply("found it"))
	var resp letta.Response
	var raw map[string]any
	c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"input":"search","include_return_message_types":["assistant_message"]}`, &raw)
	b, _ := json.Marshal(raw["messages"])
	var msgs []map[string]any
	_ = json.Unmarshal(b, &msgs)
	if len(msgs) != 1 || msgs[0]["content"] != "found it" {
		t.Errorf("filtered %v", msgs)
	}
	_ = resp
}

func TestStreamFraming(t *testing.T) {
	p := &scripted{}
	p.add(textReply("Hello, Ada!"))
	c, _ := newTurnServer(t, p, Options{})
	a := c.createAgent(`{"name":"streamer"}`)
	body, hdr := c.stream("POST", "/v1/agents/"+a.ID+"/messages", `{"messages":[{"role":"user","content":"hi"}],"streaming":true}`)
	want := `data: {"id":"message-X","date":"2025-05-01T12:00:00+00:00","name":null,"message_type":"assistant_message","otid":"X","sender_id":null,"step_id":"step-X","seq_id":1,"run_id":"run-X","content":"Hello, Ada!"}` + "\n\n" +
		`data: {"message_type":"stop_reason","stop_reason":"end_turn"}` + "\n\n" +
		usageLine +
		"data: [DONE]\n\n"
	if got := normalizeIDs(body); got != want {
		t.Errorf("stream:\n%q\nwant:\n%q", got, want)
	}
	if hdr.Get("Cache-Control") != "no-cache" {
		t.Errorf("headers %v", hdr)
	}

	// The older route always streams; pings can be turned off; tokens
	// stream as pieces of one message.
	p.add(textReply("one two three"))
	body, _ = c.stream("POST", "/v1/agents/"+a.ID+"/messages/stream", `{"input":"count","stream_tokens":true,"include_pings":false}`)
	chunks := strings.Split(strings.TrimSuffix(body, "\n\n"), "\n\n")
	if len(chunks) != 6 {
		t.Fatalf("chunks %q", chunks)
	}
	var text string
	var ids []string
	for i, ch := range chunks[:3] {
		var m map[string]any
		if !strings.HasPrefix(ch, "data: ") || json.Unmarshal([]byte(ch[6:]), &m) != nil {
			t.Fatalf("chunk %q", ch)
		}
		if m["message_type"] != "assistant_message" || m["seq_id"] != float64(i+1) {
			t.Errorf("chunk %d: %v", i, m)
		}
		text += m["content"].(string)
		ids = append(ids, m["id"].(string)+"/"+m["otid"].(string))
	}
	if text != "one two three" || ids[0] != ids[1] || ids[1] != ids[2] {
		t.Errorf("token stream %q ids %v", text, ids)
	}
	var hist []map[string]any
	c.ok("GET", "/v1/agents/"+a.ID+"/messages?limit=1", "", &hist)
	if len(hist) != 1 || hist[0]["content"] != "one two three" || hist[0]["id"].(string)+"/"+hist[0]["otid"].(string) != ids[0] {
		t.Errorf("stored %v", hist)
	}
}

func TestStreamPingsAndErrors(t *testing.T) {
	p := &scripted{}
	p.add(func(ctx context.Context, req llm.Request, d func(llm.Delta)) (*llm.Response, error) {
		time.Sleep(80 * time.Millisecond)
		return textReply("late")(ctx, req, d)
	}, func(context.Context, llm.Request, func(llm.Delta)) (*llm.Response, error) {
		return nil, &llm.Error{Provider: "openai", Status: 500, Message: "boom"}
	})
	c, _ := newTurnServer(t, p, Options{PingInterval: 10 * time.Millisecond})
	a := c.createAgent(`{"name":"pinger"}`)
	body, _ := c.stream("POST", "/v1/agents/"+a.ID+"/messages", `{"input":"hi","streaming":true}`)
	if !strings.HasPrefix(body, "data: {\"message_type\":\"ping\"}\n\n") || !strings.HasSuffix(body, usageLine+"data: [DONE]\n\n") {
		t.Errorf("stream with pings:\n%s", body)
	}

	body, _ = c.stream("POST", "/v1/agents/"+a.ID+"/messages", `{"input":"again","streaming":true,"include_pings":false}`)
	want := `data: {"message_type":"stop_reason","stop_reason":"llm_api_error"}` + "\n\n" +
		"event: error\n" +
		`data: {"message_type":"error_message","run_id":"run-X","error_type":"llm_error","message":"The model provider returned an error.","detail":"llm openai: status 500: boom","seq_id":1}` + "\n\n" +
		"data: [DONE]\n\n"
	if got := normalizeIDs(body); got != want {
		t.Errorf("error stream:\n%q\nwant:\n%q", got, want)
	}
	// The history holds the user message, nothing half-done.
	var hist []map[string]any
	c.ok("GET", "/v1/agents/"+a.ID+"/messages?order=asc", "", &hist)
	if len(hist) != 4 || hist[0]["message_type"] != "system_message" || hist[3]["message_type"] != "user_message" {
		t.Errorf("history %v", hist)
	}
}

func TestSendMessageWithoutProvider(t *testing.T) {
	c, _ := newTurnServer(t, nil, Options{})
	a := c.createAgent(`{"name":"quiet"}`)
	r := c.do("POST", "/v1/agents/"+a.ID+"/messages", `{"input":"hi"}`)
	if r.status != http.StatusServiceUnavailable || r.header.Get("X-Should-Retry") != "false" ||
		!strings.Contains(string(r.body), "OPENAI_API_KEY") || !strings.Contains(string(r.body), "No LLM provider is configured") {
		t.Fatalf("status %d %v: %s", r.status, r.header, r.body)
	}
	// Streaming requests get the same JSON error, not a stream.
	r = c.do("POST", "/v1/agents/"+a.ID+"/messages", `{"input":"hi","streaming":true}`)
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("streaming: %d %s", r.status, r.body)
	}
	var models []any
	c.ok("GET", "/v1/models/", "", &models)
	if len(models) != 0 {
		t.Errorf("models %v", models)
	}
	// Everything else works.
	var hist []any
	c.ok("GET", "/v1/agents/"+a.ID+"/messages", "", &hist)
	var conv letta.Conversation
	c.ok("POST", "/v1/conversations/?agent_id="+a.ID, `{}`, &conv)
	var ps []letta.Passage
	c.ok("POST", "/v1/agents/"+a.ID+"/archival-memory", `{"text":"a fact"}`, &ps)
}

func TestMessageRequestErrors(t *testing.T) {
	c, _ := newTurnServer(t, &scripted{}, Options{})
	a := c.createAgent(`{"name":"strict"}`)
	path := "/v1/agents/" + a.ID + "/messages"
	c.expect(400, "POST", path, `{}`)
	c.expect(400, "POST", path, `{"input":"x","messages":[]}`)
	c.expect(400, "POST", path, `{"input":"x","max_steps":0}`)
	c.expect(400, "POST", path, `{"messages":[{"content":"no role"}]}`)
	c.expect(400, "POST", path, `{"messages":[{"role":"user","content":[{"type":"image","url":"x"}]}]}`)
	c.expect(422, "POST", path, `{"input":"x","include_return_message_types":["bogus"]}`)
	c.expect(422, "POST", path, `{"input":`)
	c.expect(422, "POST", "/v1/agents/agent-1/messages", `{"input":"x"}`)
	c.expect(404, "POST", "/v1/agents/agent-123e4567-e89b-42d3-8456-426614174000/messages", `{"input":"x"}`)
	c.expect(422, "GET", "/v1/runs/run-1", "")
	c.expect(404, "GET", "/v1/runs/run-123e4567-e89b-42d3-8456-426614174000", "")
	c.expect(400, "POST", path, `{"messages":[{"type":"approval","approvals":[{"type":"tool","tool_call_id":"x","tool_return":"y","status":"success"}]}]}`)
}

// The calls letta-code makes for `letta -p`, in order, with a client tool
// the model calls (an approval round trip).
func TestLettaCodeFlow(t *testing.T) {
	p := &scripted{}
	p.add(toolCallReply("toolu_1", "Bash", `{"command":"echo pong"}`), textReply("pong"))
	c, _ := newTurnServer(t, p, Options{})
	var agents []any
	c.ok("GET", "/v1/agents/?limit=1", "", &agents)
	var base []letta.Tool
	c.ok("POST", "/v1/tools/add-base-tools", "", &base)
	if len(base) == 0 {
		t.Error("no base tools")
	}
	var models []map[string]any
	c.ok("GET", "/v1/models/", "", &models)
	if len(models) != 1 || models[0]["handle"] != "openai/gpt-4o-mini" || models[0]["max_context_window"] != 128000.0 ||
		models[0]["model"] != "gpt-4o-mini" || models[0]["model_endpoint_type"] != "openai" {
		t.Errorf("models %v", models)
	}
	a := c.createAgent(`{"agent_type":"letta_v1_agent","name":"letta-code","system":"You code.","memory_blocks":[{"label":"persona","value":"coder"}],"include_base_tools":false,"tools":["web_search","fetch_webpage"],"compaction_settings":{"mode":"sliding_window"}}`)
	var secrets []any
	c.ok("GET", "/v1/agents/"+a.ID+"/secrets", "", &secrets)
	if len(secrets) != 0 {
		t.Errorf("secrets %v, want none", secrets)
	}
	var conv letta.Conversation
	c.ok("POST", "/v1/conversations/?agent_id="+a.ID, `{}`, &conv)
	if !letta.ValidID("conv", conv.ID) || conv.AgentID != a.ID {
		t.Fatalf("conversation %+v", conv)
	}
	c.ok("GET", "/v1/conversations/"+conv.ID, "", &conv)
	var msgs []any
	c.ok("GET", "/v1/conversations/"+conv.ID+"/messages?limit=50&order=desc", "", &msgs)
	c.expect(404, "GET", "/v1/agents/"+a.ID+"/mcp-servers", "")
	req := `{"messages":[{"role":"user","content":[{"type":"text","text":"ping"}],"otid":"o-lc-1"}],"streaming":true,"stream_tokens":true,"include_pings":true,"background":true,` +
		`"client_tools":[{"name":"Bash","description":"Run a command","parameters":{"type":"object","properties":{"command":{"type":"string"}},"required":["command"]}}]}`
	body, _ := c.stream("POST", "/v1/conversations/"+conv.ID+"/messages", req)
	if !strings.Contains(body, `"message_type":"approval_request_message"`) || !strings.Contains(body, `"tool_call":{"name":"Bash","arguments":"{\"command\":\"echo pong\"}","tool_call_id":"toolu_1"}`) ||
		!strings.Contains(body, `data: {"message_type":"stop_reason","stop_reason":"requires_approval"}`) || !strings.HasSuffix(body, "data: [DONE]\n\n") {
		t.Fatalf("first stream:\n%s", body)
	}
	approval := `{"messages":[{"type":"approval","approvals":[{"type":"tool","tool_call_id":"toolu_1","tool_return":"pong\n","status":"success"}]}],"streaming":true,"stream_tokens":true,` +
		`"client_tools":[{"name":"Bash","parameters":{"type":"object","properties":{"command":{"type":"string"}}}}]}`
	body, _ = c.stream("POST", "/v1/conversations/"+conv.ID+"/messages", approval)
	if !strings.Contains(body, `"message_type":"tool_return_message"`) || !strings.Contains(body, `"content":"pong"`) ||
		!strings.Contains(body, `"stop_reason":"end_turn"`) {
		t.Fatalf("approval stream:\n%s", body)
	}
	var repos repositoriesBody
	c.ok("GET", "/v1/agents/"+a.ID+"/repositories", "", &repos)
	if len(repos.Repositories) != 0 {
		t.Errorf("repositories of an agent without MemFS: %+v", repos.Repositories)
	}

	c.ok("GET", "/v1/conversations/"+conv.ID+"/messages?order=asc", "", &msgs)
	var kinds []string
	for _, m := range msgs {
		kinds = append(kinds, m.(map[string]any)["message_type"].(string))
	}
	if !slices.Equal(kinds, []string{"system_message", "user_message", "approval_request_message", "tool_return_message", "assistant_message"}) {
		t.Errorf("conversation history %v", kinds)
	}
	c.ok("GET", "/v1/conversations/"+conv.ID+"/messages?order=asc&include_return_message_types=user_message&include_return_message_types=assistant_message&include_return_message_types=event_message", "", &msgs)
	if len(msgs) != 2 {
		t.Errorf("filtered history %v", msgs)
	}
	// The agent's tools: letta-code turned the base tools off and asked
	// for the web tools, which exist but say they are unavailable.
	var tools []letta.Tool
	c.ok("GET", "/v1/agents/"+a.ID+"/tools", "", &tools)
	if names := toolNames(tools); len(names) != 2 || !slices.Contains(names, "web_search") || !slices.Contains(names, "fetch_webpage") {
		t.Errorf("agent tools %v", names)
	}
	// The conversation has no run in progress to resume (Letta's 400); a
	// finished run's stream replays by its id, after a seq_id.
	c.expect(400, "POST", "/v1/conversations/"+conv.ID+"/stream", `{"starting_after":1,"include_pings":false}`)
	var runs []letta.Run
	c.ok("GET", "/v1/runs?conversation_id="+conv.ID, "", &runs)
	if len(runs) != 2 {
		t.Fatalf("runs %v", runs)
	}
	body, _ = c.stream("POST", "/v1/runs/"+runs[0].ID+"/stream", `{"starting_after":1,"include_pings":false}`)
	if strings.Contains(body, `"seq_id":1,`) || !strings.Contains(body, `"seq_id":2,`) || !strings.HasSuffix(body, "data: [DONE]\n\n") {
		t.Errorf("resumed stream:\n%s", body)
	}
	body, _ = c.stream("POST", "/v1/runs/"+runs[1].ID+"/stream", `{}`)
	if !strings.Contains(body, "requires_approval") {
		t.Errorf("run stream:\n%s", body)
	}
}

func TestConversationRoutes(t *testing.T) {
	p := &scripted{}
	c, _ := newTurnServer(t, p, Options{})
	a := c.createAgent(`{"name":"convo"}`)
	c.expect(422, "POST", "/v1/conversations", `{}`)
	c.expect(422, "GET", "/v1/conversations/conv-1", "")
	c.expect(404, "GET", "/v1/conversations/conv-123e4567-e89b-42d3-8456-426614174000", "")
	var conv letta.Conversation
	c.ok("POST", "/v1/conversations?agent_id="+a.ID, "", &conv)
	c.ok("PATCH", "/v1/conversations/"+conv.ID, `{"summary":"about tea"}`, &conv)
	if deref(conv.Summary) != "about tea" {
		t.Errorf("summary %v", conv.Summary)
	}
	var list []letta.Conversation
	c.ok("GET", "/v1/conversations?agent_id="+a.ID, "", &list)
	if len(list) != 1 || list[0].ID != conv.ID {
		t.Errorf("list %v", list)
	}
	// Non-streaming in a conversation, and the default conversation.
	var resp letta.Response
	var raw json.RawMessage
	c.ok("POST", "/v1/conversations/"+conv.ID+"/messages", `{"input":"hi","streaming":false}`, &raw)
	if !strings.Contains(string(raw), `"stop_reason":"end_turn"`) {
		t.Errorf("conversation answer %s", raw)
	}
	body, _ := c.stream("POST", "/v1/conversations/default/messages", `{"input":"hello default","agent_id":"`+a.ID+`","include_pings":false}`)
	if !strings.Contains(body, `"content":"ok"`) {
		t.Errorf("default conversation stream %s", body)
	}
	var hist []map[string]any
	c.ok("GET", "/v1/conversations/default/messages?agent_id="+a.ID+"&order=asc", "", &hist)
	if len(hist) != 3 || hist[0]["message_type"] != "system_message" || hist[1]["content"] != "hello default" {
		t.Errorf("default history %v", hist)
	}
	c.ok("GET", "/v1/conversations/"+conv.ID+"/messages?order=asc", "", &hist)
	if len(hist) != 3 || hist[0]["message_type"] != "system_message" || hist[1]["content"] != "hi" {
		t.Errorf("conversation history %v", hist)
	}
	var cancelled map[string]string
	c.ok("POST", "/v1/conversations/"+conv.ID+"/cancel", "", &cancelled)
	c.ok("POST", "/v1/agents/"+a.ID+"/messages/cancel", `{"run_ids":["run-x"]}`, &cancelled)
	if len(cancelled) != 0 {
		t.Errorf("nothing to cancel, got %v", cancelled)
	}
	_ = resp
}

func TestArchivalMemoryRoutes(t *testing.T) {
	c, _ := newTurnServer(t, nil, Options{})
	a := c.createAgent(`{"name":"archivist"}`)
	path := "/v1/agents/" + a.ID + "/archival-memory"
	var created []letta.Passage
	c.ok("POST", path, `{"text":"The cat is called Pixel.","tags":["pets"]}`, &created)
	if len(created) != 1 || !regexp.MustCompile(`^passage-`).MatchString(created[0].ID) || created[0].Text != "The cat is called Pixel." {
		t.Fatalf("created %+v", created)
	}
	c.ok("POST", path, `{"text":"Tea at four."}`, nil)
	var list []letta.Passage
	c.ok("GET", path, "", &list)
	if len(list) != 2 || list[0].Text != "The cat is called Pixel." {
		t.Errorf("list %+v", list)
	}
	c.ok("GET", path+"?ascending=false&limit=1", "", &list)
	if len(list) != 1 || list[0].Text != "Tea at four." {
		t.Errorf("newest %+v", list)
	}
	var found letta.ArchivalSearchResponse
	c.ok("GET", path+"/search?query=cat&tags=pets", "", &found)
	if found.Count != 1 || found.Results[0].Content != "The cat is called Pixel." || found.Results[0].ID != created[0].ID {
		t.Errorf("search %+v", found)
	}
	c.ok("GET", path+"/search?query=tea", "", &found)
	if found.Count != 1 {
		t.Errorf("search tea %+v", found)
	}
	c.expect(422, "GET", path+"/search?query=x&top_k=zero", "")
	c.expect(400, "POST", path, `{"text":""}`)
	c.ok("DELETE", path+"/"+created[0].ID, "", nil)
	c.expect(404, "DELETE", path+"/"+created[0].ID, "")
	c.expect(422, "DELETE", path+"/passage-1", "")
	c.ok("GET", path, "", &list)
	if len(list) != 1 {
		t.Errorf("after delete %+v", list)
	}
}
