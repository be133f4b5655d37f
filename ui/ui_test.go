package ui

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/llm/llmtest"
)

func TestKeyGuardsEveryPage(t *testing.T) {
	const key = "sekret-key"
	s := newServer(t, Options{APIKey: key})
	var a letta.AgentState
	s.api("POST", "/v1/agents", key, `{"name":"guarded"}`, &a)

	for _, path := range []string{"/ui/", "/ui/agents/" + a.ID, "/ui/agents/" + a.ID + "/messages", "/ui/status"} {
		if p := s.get(path); p.status != http.StatusSeeOther || p.location != "/ui/login" {
			t.Errorf("GET %s without a session: %d to %q, want a redirect to the login form", path, p.status, p.location)
		}
	}
	if p := s.post("/ui/agents/"+a.ID+"/blocks/human", url.Values{"value": {"x"}}); p.status != http.StatusUnauthorized {
		t.Errorf("POST without a session: %d", p.status)
	}
	if p := s.get("/ui/static/style.css"); p.status != http.StatusOK {
		t.Errorf("the stylesheet: %d", p.status)
	}

	if p := s.post("/ui/login", url.Values{"key": {"wrong"}}); p.status != http.StatusUnauthorized || !strings.Contains(p.body, "not the server&#39;s API key") {
		t.Errorf("a wrong key: %d %s", p.status, p.body)
	}
	if p := s.get("/ui/"); p.status != http.StatusSeeOther {
		t.Errorf("after a wrong key: %d", p.status)
	}
	if p := s.post("/ui/login", url.Values{"key": {key}}); p.status != http.StatusSeeOther || p.location != "/ui/" {
		t.Fatalf("the right key: %d to %q", p.status, p.location)
	}
	u, _ := url.Parse(s.URL + "/ui/")
	for _, c := range s.browser.Jar.Cookies(u) {
		if strings.Contains(c.Value, key) {
			t.Errorf("the session cookie holds the key: %s", c.Value)
		}
	}
	p := s.get("/ui/")
	if p.status != http.StatusOK || !strings.Contains(p.body, "guarded") {
		t.Fatalf("with a session: %d %s", p.status, p.body)
	}
	// Logging out ends the session.
	if q := s.post("/ui/logout", url.Values{"csrf": {p.csrf(t)}}); q.status != http.StatusSeeOther {
		t.Errorf("log out: %d", q.status)
	}
	if q := s.get("/ui/"); q.status != http.StatusSeeOther {
		t.Errorf("after logging out: %d", q.status)
	}

	// The API's bearer header opens pages too (scripts, curl).
	req, _ := http.NewRequest("GET", s.URL+"/ui/status", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("with the bearer key: %d", resp.StatusCode)
	}
}

func TestEditBlockIsTheAPIsEdit(t *testing.T) {
	s := newServer(t, Options{})
	var a letta.AgentState
	s.api("POST", "/v1/agents", "", `{"name":"editor","memory_blocks":[{"label":"human","value":"Name: Ada","limit":40},{"label":"fixed","value":"keep","read_only":true}]}`, &a)
	p := s.get("/ui/agents/" + a.ID)
	if p.status != http.StatusOK || !strings.Contains(p.body, "Name: Ada") || !strings.Contains(p.body, "9 of 40 characters") {
		t.Fatalf("agent page: %d %s", p.status, p.body)
	}
	token := p.csrf(t)
	block := func(label string) string {
		var b letta.Block
		s.api("GET", "/v1/agents/"+a.ID+"/core-memory/blocks/"+label, "", "", &b)
		return b.Value
	}

	// A form from elsewhere (no token, or another) changes nothing.
	for _, form := range []url.Values{{"value": {"forged"}}, {"value": {"forged"}, "csrf": {strings.Repeat("0", len(token))}}} {
		if q := s.post("/ui/agents/"+a.ID+"/blocks/human", form); q.status != http.StatusForbidden {
			t.Errorf("forged form: %d", q.status)
		}
	}
	if v := block("human"); v != "Name: Ada" {
		t.Fatalf("a forged form changed the block: %q", v)
	}

	// A saved edit is the API's value at once; CRLF from the textarea is LF.
	q := s.post("/ui/agents/"+a.ID+"/blocks/human", url.Values{"csrf": {token}, "value": {"Name: Ada\r\nLikes: tea"}})
	if q.status != http.StatusSeeOther || !strings.HasSuffix(q.location, "?saved=human") {
		t.Fatalf("save: %d to %q: %s", q.status, q.location, q.body)
	}
	if v := block("human"); v != "Name: Ada\nLikes: tea" {
		t.Errorf("after saving, the API has %q", v)
	}
	if r := s.get(q.location); !strings.Contains(r.body, `Saved block &#34;human&#34;.`) {
		t.Errorf("no confirmation after saving: %s", r.body)
	}

	// Rejected edits say why and change nothing.
	for _, c := range []struct {
		label, value string
		status       int
		says         string
	}{
		{"human", strings.Repeat("x", 41), http.StatusBadRequest, "limit"},
		{"nope", "x", http.StatusNotFound, "nope"},
	} {
		r := s.post("/ui/agents/"+a.ID+"/blocks/"+c.label, url.Values{"csrf": {token}, "value": {c.value}})
		if r.status != c.status || !strings.Contains(strings.ToLower(html.UnescapeString(r.body)), c.says) {
			t.Errorf("edit %s to %d chars: %d, want %d saying %q: %s", c.label, len(c.value), r.status, c.status, c.says, r.body)
		}
	}
	if v := block("human"); v != "Name: Ada\nLikes: tea" {
		t.Errorf("a rejected edit changed the block: %q", v)
	}
	// Read-only is for the agent's tools: people edit such a block, as
	// through the API.
	if !strings.Contains(p.body, "read-only for the agent") {
		t.Errorf("the page does not say the block is read-only for the agent")
	}
	if r := s.post("/ui/agents/"+a.ID+"/blocks/fixed", url.Values{"csrf": {token}, "value": {"changed"}}); r.status != http.StatusSeeOther || block("fixed") != "changed" {
		t.Errorf("editing a read-only block: %d, now %q", r.status, block("fixed"))
	}
	if r := s.post("/ui/agents/"+a.ID+"/blocks/human", url.Values{"csrf": {token}}); r.status != http.StatusBadRequest {
		t.Errorf("a form without a value: %d", r.status)
	}
}

var agentName = regexp.MustCompile(`>(a\d{3})</a>`)

func TestAgentsPageByPageAndByTag(t *testing.T) {
	s := newServer(t, Options{})
	const n = PageSize + 7
	for i := range n {
		tag := "even"
		if i%2 == 1 {
			tag = "odd"
		}
		s.api("POST", "/v1/agents", "", fmt.Sprintf(`{"name":"a%03d","tags":[%q]}`, i, tag), nil)
	}
	first := s.get("/ui/")
	if first.status != http.StatusOK || !strings.Contains(first.body, fmt.Sprintf("<small>%d</small>", n)) {
		t.Fatalf("first page: %d %s", first.status, first.body)
	}
	seen := map[string]bool{}
	names := func(p answer) []string {
		var out []string
		for _, m := range agentName.FindAllStringSubmatch(p.body, -1) {
			out = append(out, m[1])
			seen[m[1]] = true
		}
		return out
	}
	if got := names(first); len(got) != PageSize || got[0] != fmt.Sprintf("a%03d", n-1) {
		t.Fatalf("first page lists %d agents from %v, want %d newest first", len(got), got[:1], PageSize)
	}
	next := strings.Split(strings.Split(first.body, `rel="next" href="`)[1], `"`)[0]
	second := s.get(html.UnescapeString(next))
	if got := names(second); len(got) != n-PageSize || strings.Contains(second.body, `rel="next"`) {
		t.Errorf("second page lists %d agents (next link: %v)", len(got), strings.Contains(second.body, `rel="next"`))
	}
	if len(seen) != n {
		t.Errorf("two pages showed %d distinct agents of %d", len(seen), n)
	}

	odd := s.get("/ui/?tag=odd")
	if got := names(odd); len(got) != n/2 || !strings.Contains(odd.body, fmt.Sprintf("<small>%d matching</small>", n/2)) {
		t.Errorf("tag odd lists %d agents", len(got))
	}
	byName := s.get("/ui/?name=a007")
	if got := names(byName); len(got) != 1 || got[0] != "a007" {
		t.Errorf("name a007 lists %v", got)
	}
	var a letta.AgentState
	s.api("GET", "/v1/agents?name=a003", "", "", &[]*letta.AgentState{&a})
	if p := s.get("/ui/?id=" + a.ID); p.status != http.StatusSeeOther || p.location != "/ui/agents/"+a.ID {
		t.Errorf("open by id: %d to %q", p.status, p.location)
	}
	if p := s.get("/ui/agents/agent-00000000-0000-4000-8000-000000000000"); p.status != http.StatusNotFound {
		t.Errorf("a missing agent: %d", p.status)
	}
}

// TestConversationShowsToolCalls runs a turn in which the model calls a
// tool, and reads it back on the messages and run pages.
func TestConversationShowsToolCalls(t *testing.T) {
	s := newServer(t, Options{})
	var a letta.AgentState
	s.api("POST", "/v1/agents", "", `{"name":"toolish","memory_blocks":[{"label":"human","value":"Name: Ada"}]}`, &a)
	s.llm.Script(
		llmtest.Reply{ToolCalls: []llm.ToolCall{{Name: "archival_memory_insert", Arguments: `{"content":"Ada likes tea"}`}}, Usage: &llm.Usage{PromptTokens: 120, CompletionTokens: 12}},
		llmtest.Reply{Text: "Noted: you like tea.", Usage: &llm.Usage{PromptTokens: 150, CompletionTokens: 8}},
	)
	s.api("POST", "/v1/agents/"+a.ID+"/messages", "", `{"messages":[{"role":"user","content":"remember that I like tea"}]}`, nil)

	p := s.get("/ui/agents/" + a.ID + "/messages")
	for _, want := range []string{"remember that I like tea", "archival_memory_insert", "Ada likes tea", "tool_return_message", "Noted: you like tea."} {
		if !strings.Contains(html.UnescapeString(p.body), want) {
			t.Errorf("the messages page lacks %q:\n%s", want, p.body)
		}
	}
	runID := strings.Split(strings.Split(p.body, `href="/ui/runs/`)[1], `"`)[0]
	r := s.get("/ui/runs/" + runID)
	body := html.UnescapeString(r.body)
	// The run's tokens are both steps' together.
	for _, want := range []string{"completed", "270 prompt + 20 completion = 290", "archival_memory_insert"} {
		if !strings.Contains(body, want) {
			t.Errorf("the run page lacks %q:\n%s", want, r.body)
		}
	}
	if n := strings.Count(r.body, "<section class=\"step\">"); n != 3 {
		t.Errorf("the run page shows %d sections, want the input and two steps", n)
	}
	agentPage := s.get("/ui/agents/" + a.ID)
	if !strings.Contains(agentPage.body, runID) {
		t.Errorf("the agent page does not list run %s", runID)
	}
}

// TestMessagesPageBack pages back through a conversation longer than a
// page: each page is oldest first, and together they hold every message
// once.
func TestMessagesPageBack(t *testing.T) {
	s := newServer(t, Options{})
	var a letta.AgentState
	s.api("POST", "/v1/agents", "", `{"name":"chatty"}`, &a)
	const turns = PageSize/2 + 5
	for i := range turns {
		s.llm.Script(llmtest.Reply{Text: fmt.Sprintf("reply %02d", i)})
		s.api("POST", "/v1/agents/"+a.ID+"/messages", "", fmt.Sprintf(`{"messages":[{"role":"user","content":"ask %02d"}]}`, i), nil)
	}
	said := regexp.MustCompile(`<pre>((?:ask|reply) \d\d)</pre>`)
	var all []string
	path := "/ui/agents/" + a.ID + "/messages"
	for pages := 0; path != ""; pages++ {
		if pages > 2 {
			t.Fatal("more pages than the messages fill")
		}
		p := s.get(path)
		var got []string
		for _, m := range said.FindAllStringSubmatch(p.body, -1) {
			got = append(got, m[1])
		}
		all = append(got, all...)
		path = ""
		if parts := strings.Split(p.body, `rel="prev" href="`); len(parts) > 1 {
			path = html.UnescapeString(strings.Split(parts[1], `"`)[0])
		}
	}
	if len(all) != 2*turns {
		t.Fatalf("the pages hold %d messages, want %d: %v", len(all), 2*turns, all)
	}
	for i := range turns {
		if all[2*i] != fmt.Sprintf("ask %02d", i) || all[2*i+1] != fmt.Sprintf("reply %02d", i) {
			t.Fatalf("message %d is %q: %v", 2*i, all[2*i], all)
		}
	}
}
