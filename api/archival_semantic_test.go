package api

import (
	"strings"
	"testing"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/llm/llmtest"
)

// newEmbeddingServer is a test server whose model and embeddings are the
// llmtest double's, over HTTP.
func newEmbeddingServer(t *testing.T) (*client, *llmtest.Server) {
	t.Helper()
	double := llmtest.NewServer(t)
	c, _ := newTurnServer(t, double.OpenAIProvider(), Options{}, func(cfg *agent.Config) { cfg.Embedder = double.EmbeddingRegistry() })
	return c, double
}

// Spec: with an embedding provider, a passage is stored with its
// embedding (returned on create and list, with its embedding_config), and
// search finds passages near the query in meaning though they share no
// word with it as written, saying it searched by meaning and words.
func TestArchivalSemanticSearch(t *testing.T) {
	c, double := newEmbeddingServer(t)
	a := c.createAgent(`{"name":"semantic"}`)
	path := "/v1/agents/" + a.ID + "/archival-memory"
	var created []letta.Passage
	c.ok("POST", path, `{"text":"The cat is called Pixel.","tags":["pets"]}`, &created)
	c.ok("POST", path, `{"text":"Tea at four every day."}`, nil)
	p := created[0]
	if len(p.Embedding) != 1536 || p.EmbeddingConfig == nil || p.EmbeddingConfig.EmbeddingModel != "text-embedding-3-small" || p.EmbeddingConfig.EmbeddingDim != 1536 {
		t.Fatalf("created passage: %d dims, config %+v", len(p.Embedding), p.EmbeddingConfig)
	}
	want := llmtest.Embed(p.Text, 1536)
	for i := range want {
		if d := p.Embedding[i] - float64(want[i]); d > 1e-6 || d < -1e-6 {
			t.Fatalf("embedding[%d] = %v, want the double's %v", i, p.Embedding[i], want[i])
		}
	}
	var list []letta.Passage
	c.ok("GET", path, "", &list)
	if len(list) != 2 || len(list[0].Embedding) != 1536 || list[0].EmbeddingConfig == nil {
		t.Errorf("listed passages lack their embeddings: %+v", list)
	}
	if reqs, texts := double.EmbeddingCalls(); reqs != 2 || texts != 2 {
		t.Errorf("%d embeddings requests of %d texts, want 2 of 2", reqs, texts)
	}
	// "CAT? PIXEL!" contains neither "cat." nor any whole word as written
	// (lexical search reads "cat?" and "pixel!"), but means the first.
	var found letta.ArchivalSearchResponse
	c.ok("GET", path+"/search?query=CAT%3F%20PIXEL!", "", &found)
	if found.Count < 1 || found.Results[0].ID != p.ID || found.SearchMode != "hybrid" || found.Note != "" {
		t.Errorf("semantic search: %+v", found)
	}
	c.ok("GET", path+"/search?query=CAT%3F%20PIXEL!&tags=nosuchtag", "", &found)
	if found.Count != 0 {
		t.Errorf("tag filter: %+v", found)
	}
}

// Spec: without an embedding provider, passages are stored without
// embeddings and search ranks by words, saying so.
func TestArchivalLexicalFallback(t *testing.T) {
	c, _ := newTurnServer(t, nil, Options{})
	a := c.createAgent(`{"name":"lexical"}`)
	path := "/v1/agents/" + a.ID + "/archival-memory"
	var created []letta.Passage
	c.ok("POST", path, `{"text":"The cat is called Pixel."}`, &created)
	if created[0].Embedding != nil || created[0].EmbeddingConfig != nil {
		t.Errorf("embedding without a provider: %+v", created[0])
	}
	var found letta.ArchivalSearchResponse
	c.ok("GET", path+"/search?query=pixel", "", &found)
	if found.Count != 1 || found.SearchMode != "lexical" || !strings.Contains(found.Note, "no embedding provider") {
		t.Errorf("lexical search: %+v", found)
	}
	var hits []letta.PassageSearchResult
	c.ok("POST", "/v1/passages/search", `{"query":"pixel","agent_id":"`+a.ID+`"}`, &hits)
	if len(hits) != 1 || hits[0].Metadata["search_mode"] != "lexical" || !strings.Contains(hits[0].Metadata["note"].(string), "no embedding provider") {
		t.Errorf("passages/search: %+v", hits)
	}
}

// Spec: when the embedding provider refuses a passage's text, the create
// fails with a 5xx naming the provider's answer and stores nothing.
func TestArchivalEmbeddingFailureStoresNothing(t *testing.T) {
	c, _ := newEmbeddingServer(t)
	a := c.createAgent(`{"name":"unknown-embedding","embedding":"openai/no-such-embedding-model"}`)
	path := "/v1/agents/" + a.ID + "/archival-memory"
	body := c.expect(503, "POST", path, `{"text":"lost"}`)
	if !strings.Contains(body, "no-such-embedding-model") || !strings.Contains(body, "404") {
		t.Errorf("error body: %s", body)
	}
	var list []letta.Passage
	c.ok("GET", path, "", &list)
	if len(list) != 0 {
		t.Errorf("a refused create stored %+v", list)
	}
	// Search still answers, by words, and says why.
	var found letta.ArchivalSearchResponse
	c.ok("GET", path+"/search?query=lost", "", &found)
	if found.SearchMode != "lexical" || !strings.Contains(found.Note, "no-such-embedding-model") {
		t.Errorf("search with a failing provider: %+v", found)
	}
}

// Spec: POST /v1/passages/search searches one agent's passages or every
// agent's, best first with scores and how each was found; Letta's 422s for
// bad limits and tag modes.
func TestPassagesSearchRoute(t *testing.T) {
	c, _ := newEmbeddingServer(t)
	a := c.createAgent(`{"name":"one"}`)
	b := c.createAgent(`{"name":"two"}`)
	c.ok("POST", "/v1/agents/"+a.ID+"/archival-memory", `{"text":"Ada likes green tea.","tags":["drinks"]}`, nil)
	c.ok("POST", "/v1/agents/"+a.ID+"/archival-memory", `{"text":"The meeting moved to Tuesday."}`, nil)
	c.ok("POST", "/v1/agents/"+b.ID+"/archival-memory", `{"text":"Bob likes black coffee.","tags":["drinks"]}`, nil)
	var hits []letta.PassageSearchResult
	c.ok("POST", "/v1/passages/search", `{"query":"which drinks does Ada like?","agent_id":"`+a.ID+`"}`, &hits)
	if len(hits) == 0 || hits[0].Passage.Text != "Ada likes green tea." || hits[0].Score <= 0 || hits[0].Metadata["search_mode"] != "hybrid" || len(hits[0].Passage.Embedding) != 1536 {
		t.Fatalf("agent search: %+v", hits)
	}
	for _, h := range hits {
		if strings.Contains(h.Passage.Text, "Bob") {
			t.Errorf("agent search found another agent's passage: %+v", h)
		}
	}
	c.ok("POST", "/v1/passages/search", `{"query":"likes","tags":["drinks"],"tag_match_mode":"all","limit":5}`, &hits)
	if len(hits) != 2 {
		t.Errorf("search across agents: %d hits, want 2: %+v", len(hits), hits)
	}
	c.ok("POST", "/v1/passages/search", `{"query":"likes","limit":1}`, &hits)
	if len(hits) != 1 {
		t.Errorf("limit 1: %d hits", len(hits))
	}
	for bad, field := range map[string]string{`{"limit":0}`: "limit", `{"limit":101}`: "limit", `{"tag_match_mode":"some"}`: "tag_match_mode"} {
		if body := c.expect(422, "POST", "/v1/passages/search", bad); !strings.Contains(body, "('body', '"+field+"')") {
			t.Errorf("%s: %s", bad, body)
		}
	}
	c.expect(404, "POST", "/v1/passages/search", `{"query":"x","agent_id":"agent-123e4567-e89b-42d3-8456-426614174000"}`)
}

// Spec: the agent's archival tools embed through the provider before the
// step commits: a passage the agent saves has its embedding, and its
// search finds by meaning.
func TestArchivalToolsUseEmbeddings(t *testing.T) {
	c, double := newEmbeddingServer(t)
	a := c.createAgent(`{"name":"toolsy"}`)
	double.Script(
		llmtest.Reply{ToolCalls: []llm.ToolCall{{ID: "call_1", Name: "archival_memory_insert", Arguments: `{"content":"The spare key is under the blue flowerpot."}`}}},
		llmtest.Reply{ToolCalls: []llm.ToolCall{{ID: "call_2", Name: "archival_memory_search", Arguments: `{"query":"KEY? FLOWERPOT?"}`}}},
		llmtest.Reply{Text: "Found it."},
	)
	c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"messages":[{"role":"user","content":"Remember where the key is, then look it up."}]}`, nil)
	var list []letta.Passage
	c.ok("GET", "/v1/agents/"+a.ID+"/archival-memory", "", &list)
	if len(list) != 1 || len(list[0].Embedding) != 1536 {
		t.Fatalf("the tool's passage: %+v", list)
	}
	var result string
	for _, r := range double.Requests() {
		for _, m := range r.Messages {
			if m.ToolCallID == "call_2" {
				result = m.Content
			}
		}
	}
	if !strings.Contains(result, "spare key") || !strings.Contains(result, `"search_mode":"hybrid"`) {
		t.Errorf("search tool result: %s", result)
	}
}

// Spec: an approved archival_memory_insert is embedded before the commit
// that runs it, like one the model calls without approval.
func TestApprovedArchivalInsertIsEmbedded(t *testing.T) {
	c, double := newEmbeddingServer(t)
	a := c.createAgent(`{"tool_rules":[{"tool_name":"archival_memory_insert","type":"requires_approval"}]}`)
	double.Script(
		llmtest.Reply{ToolCalls: []llm.ToolCall{{ID: "call_ok", Name: "archival_memory_insert", Arguments: `{"content":"Ada likes tea."}`}}},
		llmtest.Reply{Text: "Saved."},
	)
	var resp map[string]any
	c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"messages":[{"role":"user","content":"remember tea"}]}`, &resp)
	if sr := resp["stop_reason"].(map[string]any)["stop_reason"]; sr != "requires_approval" {
		t.Fatalf("stop %v", sr)
	}
	c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"messages":[{"type":"approval","approvals":[{"type":"approval","tool_call_id":"call_ok","approve":true}]}]}`, &resp)
	var list []letta.Passage
	c.ok("GET", "/v1/agents/"+a.ID+"/archival-memory", "", &list)
	if len(list) != 1 || len(list[0].Embedding) != 1536 {
		t.Errorf("the approved insert's passage: %+v", list)
	}
}
