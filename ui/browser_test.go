package ui

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kelpie/kelpie/internal/kelpietest"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/llm/llmtest"
)

// browserTimeout bounds the whole browser session: a guard against a hung
// browser, not a performance assertion.
const browserTimeout = 2 * time.Minute

// TestBrowser drives Debian's chromium through the inspector as a person
// would: log in, find an agent by name, edit a block (and see the edit
// through the API), open a conversation with a tool call and its run. It
// saves a screenshot of each page in $KELPIE_TEST_ARTIFACTS (if set).
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	chrome := kelpietest.NeedTool(t, "chromium")
	const key = "browser-test-key"
	s := newServer(t, Options{APIKey: key})
	var a letta.AgentState
	s.api("POST", "/v1/agents", key, `{"name":"other"}`, nil)
	s.api("POST", "/v1/agents", key, `{"name":"browsed","tags":["demo"],"memory_blocks":[{"label":"human","value":"Name: Ada"}]}`, &a)
	s.llm.Script(
		llmtest.Reply{ToolCalls: []llm.ToolCall{{Name: "archival_memory_insert", Arguments: `{"content":"Ada likes tea"}`}}},
		llmtest.Reply{Text: "Noted: you like tea."},
	)
	s.api("POST", "/v1/agents/"+a.ID+"/messages", key, `{"messages":[{"role":"user","content":"remember that I like tea"}]}`, nil)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.NoSandbox, // root in CI
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1200, 900),
	)
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()
	ctx, cancel = chromedp.NewExecAllocator(ctx, opts...)
	defer cancel()
	ctx, cancel = chromedp.NewContext(ctx)
	defer cancel()

	shots := os.Getenv("KELPIE_TEST_ARTIFACTS")
	if shots != "" {
		shots = filepath.Join(shots, "ui")
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// shot saves a screenshot of the page as name.png.
	shot := func(name string) {
		t.Helper()
		if shots == "" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err == nil {
			err = os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644)
		}
		if err != nil {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("the text of %s: %v", sel, err)
		}
		return s
	}

	do("open the login form",
		chromedp.Navigate(s.URL+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS(`input[name=key]`)),
	)
	shot("1-login")
	do("log in",
		chromedp.SendKeys(chromedp.CSS(`input[name=key]`), key),
		chromedp.Submit(chromedp.CSS(`input[name=key]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[role=search]`)),
	)
	do("find the agent by name",
		chromedp.SendKeys(chromedp.CSS(`input[name=name]`), "browsed"),
		chromedp.Submit(chromedp.CSS(`input[name=name]`)),
		chromedp.WaitVisible(`//h1[contains(., "matching")]`),
	)
	shot("2-agents")
	if got := text(`table`); !strings.Contains(got, "browsed") || strings.Contains(got, "other") {
		t.Fatalf("the search by name shows:\n%s", got)
	}
	do("edit a block",
		chromedp.Click(`//a[text()="browsed"]`),
		chromedp.WaitVisible(chromedp.CSS(`form[aria-label="block human"] textarea`)),
		chromedp.SetValue(chromedp.CSS(`form[aria-label="block human"] textarea`), "Name: Ada\nEdited in a browser"),
		chromedp.Click(chromedp.CSS(`form[aria-label="block human"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`p.notice`)),
	)
	shot("3-agent-saved")
	if got := text(`p.notice`); !strings.Contains(got, `Saved block "human"`) {
		t.Errorf("after saving, the page says %q", got)
	}
	var b letta.Block
	s.api("GET", "/v1/agents/"+a.ID+"/core-memory/blocks/human", key, "", &b)
	if b.Value != "Name: Ada\nEdited in a browser" {
		t.Errorf("after the browser's edit, the API has %q", b.Value)
	}
	do("open the conversation",
		chromedp.Click(`//a[text()="Default conversation"]`),
		chromedp.WaitVisible(chromedp.CSS(`li.tool_call_message`)),
	)
	shot("4-conversation")
	conv := text(`ol.msgs`)
	for _, want := range []string{"remember that I like tea", `archival_memory_insert({"content":"Ada likes tea"})`, "Saved to archival memory.", "Noted: you like tea."} {
		if !strings.Contains(conv, want) {
			t.Errorf("the conversation lacks %q:\n%s", want, conv)
		}
	}
	do("open its run",
		chromedp.Click(chromedp.CSS(`li.tool_call_message a`)),
		chromedp.WaitVisible(chromedp.CSS(`section.step`)),
	)
	shot("5-run")
	if got := text(`dl.facts`); !strings.Contains(got, "completed") || !strings.Contains(got, "Steps\n2") {
		t.Errorf("the run page shows:\n%s", got)
	}
	do("open the live figures",
		chromedp.Click(`//a[text()="Status"]`),
		chromedp.WaitVisible(chromedp.CSS(`table.figures`)),
	)
	shot("6-status")
	if got := text(`table.figures`); !strings.Contains(got, "Agents\t2") {
		t.Errorf("the status page shows:\n%q", got)
	}
}
