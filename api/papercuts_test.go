package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/internal/kelpietest"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/llm/llmtest"
)

// Papercuts real clients met (issue 12), one test each.

// TestAutoModel: letta/auto, letta-code-sdk's default model handle, names
// the server's default model, on create, update and message override.
func TestAutoModel(t *testing.T) {
	p := &scripted{}
	c, _ := newTurnServer(t, p, Options{})
	a := c.createAgent(`{"name":"auto","model":"letta/auto"}`)
	if deref(a.Model) != "openai/gpt-4o-mini" || a.LLMConfig.Model != "gpt-4o-mini" {
		t.Errorf("letta/auto on create: model %v, llm_config %+v", deref(a.Model), a.LLMConfig)
	}
	b := c.createAgent(`{"name":"other","model":"anthropic/claude-sonnet-4"}`)
	var st letta.AgentState
	c.ok("PATCH", "/v1/agents/"+b.ID, `{"model":"letta/auto"}`, &st)
	if deref(st.Model) != "openai/gpt-4o-mini" {
		t.Errorf("letta/auto on update: model %v", deref(st.Model))
	}
	// b's own model has no provider here; the override picks the default.
	if stop := sendStop(c, "/v1/agents/"+b.ID+"/messages", `{"input":"hi","override_model":"letta/auto"}`); stop != "end_turn" {
		t.Errorf("override letta/auto: stop reason %q", stop)
	}
	// Without a default model, letta/auto is a bad request.
	svc, err := agent.New(agent.Config{Store: kv.NewMemDB()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(context.Background()) })
	srv := httptest.NewServer(NewHandler(svc, Options{Logger: quietLogger()}))
	t.Cleanup(srv.Close)
	bare := &client{t: t, base: srv.URL, header: http.Header{}}
	bare.expect(400, "POST", "/v1/agents", `{"model":"letta/auto"}`)
}

// sendStop sends a non-streamed message and returns its stop reason.
func sendStop(c *client, path, body string) string {
	c.t.Helper()
	var resp struct {
		StopReason struct {
			StopReason string `json:"stop_reason"`
		} `json:"stop_reason"`
	}
	c.ok("POST", path, body, &resp)
	return resp.StopReason.StopReason
}

// TestUnknownOverrideModel: a message override naming a model no provider
// serves is Letta's 404 for an unknown handle, before any turn starts.
func TestUnknownOverrideModel(t *testing.T) {
	p := &scripted{}
	c, _ := newTurnServer(t, p, Options{})
	a := c.createAgent(`{"name":"override"}`)
	detail := c.expect(404, "POST", "/v1/agents/"+a.ID+"/messages", `{"input":"hi","override_model":"anthropic/claude-nope"}`)
	if detail != "NOT_FOUND: Handle anthropic/claude-nope not found, must be one of []" {
		t.Errorf("detail %q", detail)
	}
	c.expect(404, "POST", "/v1/agents/"+a.ID+"/messages", `{"input":"hi","streaming":true,"override_model":"anthropic/claude-nope"}`)
	var runs []letta.Run
	c.ok("GET", "/v1/runs?agent_id="+a.ID, "", &runs)
	if len(runs) != 0 || p.calls != 0 {
		t.Errorf("a refused override started %d runs and %d model calls", len(runs), p.calls)
	}
}

// TestSelfHostedPolls: the routes letta-code polls on start get an answer
// it accepts rather than a 404 it retries.
func TestSelfHostedPolls(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	r := c.do("GET", "/v1/shared-agents?limit=20&order=desc&orderBy=last_run_completion", "")
	if r.status != 200 || string(r.body) != `{"agents":[],"nextCursor":null}` {
		t.Errorf("shared agents: %d %s", r.status, r.body)
	}
	var u map[string]any
	c.ok("GET", "/v1/metadata/user", "", &u)
	if u["id"] != defaultUserID || u["organization_id"] != defaultOrgID || u["name"] != defaultUserName {
		t.Errorf("user %v", u)
	}
	r = c.do("GET", "/v1/metadata/balance", "")
	if r.status != http.StatusNotImplemented || r.header.Get("X-Should-Retry") != "false" || !strings.Contains(string(r.body), "Letta Cloud") {
		t.Errorf("balance: %d %v %s", r.status, r.header, r.body)
	}
}

// TestLastRunFields: an agent records when its last run ended, how long
// it took and why it stopped, with the run's end.
func TestLastRunFields(t *testing.T) {
	clk := kelpietest.NewStepClock(testNow)
	p := &scripted{}
	p.add(func(ctx context.Context, req llm.Request, onDelta func(llm.Delta)) (*llm.Response, error) {
		clk.Advance(1500 * time.Millisecond)
		return textReply("done")(ctx, req, onDelta)
	})
	c, _ := newTurnServerAt(t, p, clk, Options{})
	a := c.createAgent(`{"name":"timed"}`)
	if a.LastRunCompletion != nil || a.LastRunDurationMS != nil || a.LastStopReason != nil {
		t.Errorf("a new agent has a last run: %v %v %v", a.LastRunCompletion, a.LastRunDurationMS, a.LastStopReason)
	}
	sendStop(c, "/v1/agents/"+a.ID+"/messages", `{"input":"hi"}`)
	st := c.getAgent(a.ID)
	if st.LastRunCompletion == nil || !st.LastRunCompletion.Equal(testNow.Add(1500*time.Millisecond)) ||
		deref(st.LastRunDurationMS) != 1500 || deref(st.LastStopReason) != "end_turn" {
		t.Errorf("after a run: completion %v duration %v stop %v", st.LastRunCompletion, st.LastRunDurationMS, st.LastStopReason)
	}
}

// TestDefaultEmbedding: an agent created without an embedding has Letta's
// default embedding config, not null.
func TestDefaultEmbedding(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	a := c.createAgent(`{"name":"plain"}`)
	e := a.EmbeddingConfig
	if e == nil || e.EmbeddingModel != "text-embedding-3-small" || e.EmbeddingEndpointType != "openai" || e.EmbeddingDim != 1536 ||
		deref(e.EmbeddingChunkSize) != 300 || deref(a.Embedding) != "openai/text-embedding-3-small" {
		t.Errorf("default embedding %+v (embedding %v)", e, deref(a.Embedding))
	}
	b := c.createAgent(`{"name":"large","embedding":"openai/text-embedding-3-large"}`)
	if b.EmbeddingConfig.EmbeddingModel != "text-embedding-3-large" {
		t.Errorf("given embedding replaced: %+v", b.EmbeddingConfig)
	}
}

// TestBlockUpdateOverLimit: an update giving a value over the limit it
// also gives is Letta's request-validation 422 and changes nothing; a value
// over the block's stored limit is Letta's 400.
func TestBlockUpdateOverLimit(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	a := c.createAgent(`{"name":"lim","memory_blocks":[{"label":"human","value":"Ada","limit":20}]}`)
	b := c.createBlock(`{"label":"notes","value":"short","limit":20}`)
	before := c.snapshot()
	for _, path := range []string{"/v1/blocks/" + b.ID, "/v1/agents/" + a.ID + "/core-memory/blocks/human"} {
		r := c.do("PATCH", path, `{"value":"0123456789","limit":5}`)
		var body validationBody
		if err := json.Unmarshal(r.body, &body); err != nil || r.status != 422 {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		want := `[{'type': 'value_error', 'loc': ('body',), 'msg': 'Value error, Edit failed: Exceeds 5 character limit (requested 10)', ` +
			`'input': {'value': '0123456789', 'limit': 5}, 'ctx': {'error': ValueError('Edit failed: Exceeds 5 character limit (requested 10)')}}]`
		if body.Detail != want {
			t.Errorf("%s: detail\n%s\nwant\n%s", path, body.Detail, want)
		}
		c.expect(400, "PATCH", path, `{"value":"`+strings.Repeat("x", 21)+`"}`)
	}
	if c.snapshot() != before {
		t.Errorf("a refused update changed something")
	}
	c.ok("PATCH", "/v1/blocks/"+b.ID, `{"value":"0123456789","limit":10}`, nil)
}

// TestConversationBusy: a non-streaming message to a conversation with a
// turn in progress is Letta's 409 CONVERSATION_BUSY, naming the run; a
// stream resume finds that run, and none once it ended (Letta's 400).
func TestConversationBusy(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	p := &scripted{}
	p.add(func(ctx context.Context, req llm.Request, onDelta func(llm.Delta)) (*llm.Response, error) {
		close(started)
		<-release
		return textReply("first")(ctx, req, onDelta)
	})
	c, _ := newTurnServer(t, p, Options{})
	a := c.createAgent(`{"name":"busy"}`)
	var conv letta.Conversation
	c.ok("POST", "/v1/conversations?agent_id="+a.ID, "", &conv)
	detail := c.expect(400, "POST", "/v1/conversations/"+conv.ID+"/stream", "")
	if detail != "INVALID_ARGUMENT: No active runs found for this conversation." {
		t.Errorf("resume without runs: %q", detail)
	}
	c.expect(400, "POST", "/v1/conversations/default/stream", `{"agent_id":"`+a.ID+`"}`)

	first := make(chan response, 1)
	go func() {
		first <- c.do("POST", "/v1/conversations/"+conv.ID+"/messages", `{"input":"one","streaming":false}`)
	}()
	<-started
	var runs []letta.Run
	c.ok("GET", "/v1/runs?agent_id="+a.ID+"&active=true", "", &runs)
	if len(runs) != 1 {
		t.Fatalf("active runs %v", runs)
	}
	r := c.do("POST", "/v1/conversations/"+conv.ID+"/messages", `{"input":"two","streaming":false}`)
	var busy map[string]string
	if err := json.Unmarshal(r.body, &busy); err != nil || r.status != http.StatusConflict {
		t.Fatalf("second send: %d %s", r.status, r.body)
	}
	want := "CONFLICT: Cannot send a new message: Another request (run_id=" + runs[0].ID + ") is currently being processed for this conversation. Please wait for it to complete."
	if busy["detail"] != want || busy["run_id"] != runs[0].ID || len(busy) != 2 {
		t.Errorf("busy body %v", busy)
	}
	// The default conversation is another conversation.
	second := make(chan response, 1)
	go func() {
		second <- c.do("POST", "/v1/conversations/default/messages", `{"agent_id":"`+a.ID+`","input":"other","streaming":false}`)
	}()
	resumed := make(chan string, 1)
	go func() {
		body, _ := c.stream("POST", "/v1/conversations/"+conv.ID+"/stream", `{"include_pings":false}`)
		resumed <- body
	}()
	time.Sleep(50 * time.Millisecond) // let the resume attach before the turn ends
	close(release)
	if r := <-first; r.status != 200 || !strings.Contains(string(r.body), `"first"`) {
		t.Errorf("first send: %d %s", r.status, r.body)
	}
	if r := <-second; r.status != 200 {
		t.Errorf("send to the default conversation: %d %s", r.status, r.body)
	}
	if body := <-resumed; !strings.Contains(body, `"content":"first"`) || !strings.HasSuffix(body, "data: [DONE]\n\n") {
		t.Errorf("resumed stream:\n%s", body)
	}
	c.expect(400, "POST", "/v1/conversations/"+conv.ID+"/stream", "")
	c.ok("POST", "/v1/conversations/"+conv.ID+"/messages", `{"input":"three","streaming":false}`, nil)
}

// TestImagesReachProviders: image parts of a user message (a URL and
// inline base64) are stored with it and sent to OpenAI and Anthropic in
// their own wire formats, on its turn and on later ones.
func TestImagesReachProviders(t *testing.T) {
	const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
	content := `[{"type":"text","text":"What is this?"},{"type":"image","source":{"type":"url","url":"https://example.com/cat.png"}},` +
		`{"type":"image","source":{"type":"base64","media_type":"image/png","data":"` + png + `"}}]`
	want := map[string]string{
		"openai": `[{"text":"What is this?","type":"text"},{"image_url":{"url":"https://example.com/cat.png"},"type":"image_url"},` +
			`{"image_url":{"url":"data:image/png;base64,` + png + `"},"type":"image_url"}]`,
		"anthropic": `[{"text":"What is this?","type":"text"},{"source":{"type":"url","url":"https://example.com/cat.png"},"type":"image"},` +
			`{"source":{"data":"` + png + `","media_type":"image/png","type":"base64"},"type":"image"}]`,
	}
	for _, model := range []string{"openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5"} {
		provider := strings.Split(model, "/")[0]
		t.Run(provider, func(t *testing.T) {
			c, double := newDoubleServer(t, Options{})
			a := c.createAgent(`{"name":"eyes","model":"` + model + `"}`)
			double.Script(llmtest.Reply{Text: "A cat."}, llmtest.Reply{Text: "Still a cat."})
			if stop := sendStop(c, "/v1/agents/"+a.ID+"/messages", `{"messages":[{"role":"user","content":`+content+`}]}`); stop != "end_turn" {
				t.Fatalf("stop reason %q", stop)
			}
			sendStop(c, "/v1/agents/"+a.ID+"/messages", `{"input":"And now?"}`)
			checkAccepted(t, double)
			reqs := double.Requests()
			if len(reqs) != 2 {
				t.Fatalf("%d model requests", len(reqs))
			}
			for i, r := range reqs {
				if got := userContentWith(t, r.Body, "What is this?"); got != want[provider] {
					t.Errorf("request %d sent the image message as\n%s\nwant\n%s", i, got, want[provider])
				}
			}
			var msgs []map[string]any
			c.ok("GET", "/v1/agents/"+a.ID+"/messages?order=asc&limit=2", "", &msgs) // the system message, then it
			if parts, _ := msgs[1]["content"].([]any); len(msgs) != 2 || len(parts) != 3 {
				t.Errorf("stored user message %v", msgs)
			}
		})
	}
}

// userContentWith returns, as canonical JSON, the content of the first
// user message of a request body whose text includes text.
func userContentWith(t *testing.T, body []byte, text string) string {
	t.Helper()
	var req struct {
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatal(err)
	}
	for _, m := range req.Messages {
		if m.Role != "user" || !strings.Contains(string(m.Content), text) {
			continue
		}
		var v any
		if err := json.Unmarshal(m.Content, &v); err != nil {
			t.Fatal(err)
		}
		canon, _ := json.Marshal(v)
		return string(canon)
	}
	return ""
}

// TestImageValidation: image parts are checked before anything is stored.
func TestImageValidation(t *testing.T) {
	c, _ := newTurnServer(t, &scripted{}, Options{})
	a := c.createAgent(`{"name":"strict"}`)
	for _, part := range []string{
		`{"type":"image"}`,
		`{"type":"image","source":{"type":"url","url":"file:///etc/passwd"}}`,
		`{"type":"image","source":{"type":"base64","media_type":"image/tiff","data":"AAAA"}}`,
		`{"type":"image","source":{"type":"base64","media_type":"image/png","data":"not base64!"}}`,
		`{"type":"image","source":{"type":"letta","file_id":"file-1"}}`,
		`{"type":"document","text":"x"}`,
	} {
		c.expect(400, "POST", "/v1/agents/"+a.ID+"/messages", `{"messages":[{"role":"user","content":[`+part+`]}]}`)
	}
	c.expect(400, "POST", "/v1/agents/"+a.ID+"/messages", `{"messages":[{"role":"system","content":[{"type":"image","source":{"type":"url","url":"https://example.com/a.png"}}]}]}`)
	var msgs []any
	c.ok("GET", "/v1/agents/"+a.ID+"/messages", "", &msgs)
	if len(msgs) != 1 { // the system message
		t.Errorf("refused messages were stored: %v", msgs)
	}
}

// TestCloudRoutes: every Letta Cloud route answers a self-hosted client
// with a definite answer: a 501 not to be retried, or an empty listing.
func TestCloudRoutes(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	a := c.createAgent(`{"name":"cloudless"}`)
	for _, r := range cloudRoutes {
		path := strings.NewReplacer("{agent_id}", a.ID, "{", "", "}", "").Replace(r.pattern)
		body := ""
		if r.method != "GET" && r.method != "DELETE" {
			body = "{}"
		}
		resp := c.do(r.method, path, body)
		if resp.status != http.StatusNotImplemented || resp.header.Get("X-Should-Retry") != "false" {
			t.Errorf("%s %s: %d %v %s", r.method, path, resp.status, resp.header, resp.body)
		}
	}
	for path, want := range map[string]string{
		"/v1/client-side-access-tokens":    `{"hasNextPage":false,"tokens":[]}`,
		"/v1/environments":                 `{"connections":[],"hasNextPage":false}`,
		"/v1/agents/" + a.ID + "/schedule": `{"has_next_page":false,"scheduled_messages":[]}`,
	} {
		if resp := c.do("GET", path, ""); resp.status != 200 || string(resp.body) != want {
			t.Errorf("GET %s: %d %s", path, resp.status, resp.body)
		}
	}
	c.expect(404, "GET", "/v1/agents/agent-123e4567-e89b-42d3-8456-426614174000/schedule", "")
	if resp := c.do("POST", "/v1/tools/search", `{"query":"weather"}`); resp.status != 400 || !strings.Contains(string(resp.body), toolSearchUnavailable) {
		t.Errorf("POST /v1/tools/search: %d %s; want Letta's self-hosted 400", resp.status, resp.body)
	}
}

// TestToolReturnImages: a client tool's result may show images; Anthropic
// gets them inside the tool_result block, OpenAI (whose tool messages hold
// text only) as a user message right after the tool results.
func TestToolReturnImages(t *testing.T) {
	const gif = "R0lGODlhAQABAAAAACw="
	want := map[string]string{
		"openai":    `[{"text":"` + "Images returned by the tool calls above:" + `","type":"text"},{"image_url":{"url":"data:image/gif;base64,` + gif + `"},"type":"image_url"}]`,
		"anthropic": `[{"text":"shot taken","type":"text"},{"source":{"data":"` + gif + `","media_type":"image/gif","type":"base64"},"type":"image"}]`,
	}
	tools := `"client_tools":[{"name":"Screenshot","parameters":{"type":"object","properties":{}}}]`
	for _, model := range []string{"openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5"} {
		provider := strings.Split(model, "/")[0]
		t.Run(provider, func(t *testing.T) {
			c, double := newDoubleServer(t, Options{})
			a := c.createAgent(`{"name":"shots","model":"` + model + `"}`)
			double.Script(llmtest.Reply{ToolCalls: []llm.ToolCall{{ID: "toolu_shot", Name: "Screenshot", Arguments: `{}`}}}, llmtest.Reply{Text: "A tiny picture."})
			if stop := sendStop(c, "/v1/agents/"+a.ID+"/messages", `{"input":"take a screenshot",`+tools+`}`); stop != "requires_approval" {
				t.Fatalf("stop reason %q", stop)
			}
			reply := `{"messages":[{"type":"approval","approvals":[{"type":"tool","tool_call_id":"toolu_shot","status":"success","tool_return":` +
				`[{"type":"text","text":"shot taken"},{"type":"image","source":{"type":"base64","media_type":"image/gif","data":"` + gif + `"}}]}]}],` + tools + `}`
			if stop := sendStop(c, "/v1/agents/"+a.ID+"/messages", reply); stop != "end_turn" {
				t.Fatalf("after the tool result: stop reason %q", stop)
			}
			checkAccepted(t, double)
			reqs := double.Requests()
			body := reqs[len(reqs)-1].Body
			var got string
			if provider == "anthropic" {
				got = anthropicToolResultContent(t, body)
			} else {
				got = userContentWith(t, body, "Images returned")
			}
			if got != want[provider] {
				t.Errorf("sent\n%s\nwant\n%s", got, want[provider])
			}
		})
	}
}

// anthropicToolResultContent returns, as canonical JSON, the content of the
// first tool_result block of an Anthropic request body.
func anthropicToolResultContent(t *testing.T, body []byte) string {
	t.Helper()
	var req struct {
		Messages []struct {
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatal(err)
	}
	for _, m := range req.Messages {
		var blocks []map[string]any
		if json.Unmarshal(m.Content, &blocks) != nil {
			continue
		}
		for _, b := range blocks {
			if b["type"] == "tool_result" {
				canon, _ := json.Marshal(b["content"])
				return string(canon)
			}
		}
	}
	return ""
}
