package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/internal/kelpietest"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/llm/llmtest"
)

// everythingMain is the entry point of @modelcontextprotocol/server-everything,
// installed from npm (package.json pins it) by npmInstall.
var everythingMain = filepath.Join("node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js")

// everythingStartTimeout bounds how long the npm server takes to listen; it
// guards against hangs and is not a performance assertion.
const everythingStartTimeout = 30 * time.Second

// startEverythingHTTP runs the npm server with transport (sse or
// streamableHttp) on a free loopback port and returns its port once it
// listens; the test's end stops it.
func startEverythingHTTP(t *testing.T, node, transport string) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cmd := command(t, ctx, node, everythingMain, transport)
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	ready := make(chan string, 1)
	go func() {
		var seen strings.Builder
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			seen.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), fmt.Sprint(port)) {
				ready <- ""
				io.Copy(io.Discard, stderr)
				return
			}
		}
		ready <- seen.String()
	}()
	select {
	case out := <-ready:
		if out != "" {
			t.Fatalf("server-everything %s exited before listening:\n%s", transport, out)
		}
	case <-time.After(everythingStartTimeout):
		t.Fatalf("server-everything %s did not listen within %v", transport, everythingStartTimeout)
	}
	return port
}

// call sends a JSON request to kelpie and decodes a 200 answer into out.
func call(t *testing.T, method, url, body string, out any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, data)
		}
	}
}

// TestNPMEverythingMCPServer registers the reference MCP server from npm
// (@modelcontextprotocol/server-everything) with Kelpie over stdio, SSE
// and streamable HTTP on loopback: its tools are listed, its echo tool is
// attached to an agent, the model (the LLM double) calls it in a turn and
// the server's answer reaches the model.
func TestNPMEverythingMCPServer(t *testing.T) {
	node := kelpietest.NeedTool(t, "node")
	npmInstall(t)
	main, err := filepath.Abs(everythingMain)
	if err != nil {
		t.Fatal(err)
	}
	llmSrv := llmtest.NewServer(t)
	k := kelpietest.Start(t, kelpieBin(t), []string{
		"OPENAI_BASE_URL=" + llmSrv.OpenAIBaseURL(),
		"OPENAI_API_KEY=" + llmAPIKey,
	}, "--storage", "memory", "--mcp-allow-private-urls")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kelpie logs:\n%s", k.Logs())
		}
	})
	configs := map[string]map[string]any{
		"stdio":           {"mcp_server_type": "stdio", "command": node, "args": []string{main, "stdio"}},
		"streamable_http": {"mcp_server_type": "streamable_http", "server_url": fmt.Sprintf("http://127.0.0.1:%d/mcp", startEverythingHTTP(t, node, "streamableHttp"))},
		"sse":             {"mcp_server_type": "sse", "server_url": fmt.Sprintf("http://127.0.0.1:%d/sse", startEverythingHTTP(t, node, "sse"))},
	}
	for _, transport := range []string{"stdio", "streamable_http", "sse"} {
		t.Run(transport, func(t *testing.T) {
			cfg, _ := json.Marshal(configs[transport])
			var srv struct {
				ID string `json:"id"`
			}
			call(t, "POST", k.URL+"/v1/mcp-servers/", fmt.Sprintf(`{"server_name":"everything-%s","config":%s}`, transport, cfg), &srv)
			var raw []map[string]any
			call(t, "GET", k.URL+"/v1/mcp-servers/"+srv.ID+"/tools", "", &raw)
			ids := map[string]string{}
			for _, tl := range raw {
				ids[tl["name"].(string)], _ = tl["id"].(string)
				if tl["tool_type"] != "external_mcp" {
					t.Errorf("tool %v has type %v", tl["name"], tl["tool_type"])
				}
			}
			if ids["echo"] == "" || ids["get-sum"] == "" {
				t.Fatalf("the server's tools lack echo or get-sum: %v", ids)
			}
			var agent struct {
				ID string `json:"id"`
			}
			call(t, "POST", k.URL+"/v1/agents", fmt.Sprintf(`{"model":"openai/gpt-4o-mini","embedding":"openai/text-embedding-3-small","include_base_tools":false,"tool_ids":[%q,%q]}`, ids["echo"], ids["get-sum"]), &agent)

			before := len(llmSrv.Requests())
			llmSrv.Script(
				llmtest.Reply{ToolCalls: []llm.ToolCall{{ID: "call_echo", Name: "echo", Arguments: `{"message":"hello from kelpie"}`}}},
				llmtest.Reply{ToolCalls: []llm.ToolCall{{ID: "call_sum", Name: "get-sum", Arguments: `{"a":2,"b":40}`}}},
				llmtest.Reply{Text: "done"})
			var resp struct {
				Messages   []map[string]any `json:"messages"`
				StopReason map[string]any   `json:"stop_reason"`
			}
			call(t, "POST", k.URL+"/v1/agents/"+agent.ID+"/messages", `{"messages":[{"role":"user","content":"echo and add"}]}`, &resp)
			returns := map[string]any{}
			for _, m := range resp.Messages {
				if m["message_type"] == "tool_return_message" {
					returns[m["tool_call_id"].(string)] = m["tool_return"]
					if m["status"] != "success" {
						t.Errorf("call %v failed: %v", m["tool_call_id"], m["tool_return"])
					}
				}
			}
			if returns["call_echo"] != "Echo: hello from kelpie" || !strings.Contains(fmt.Sprint(returns["call_sum"]), "42") {
				t.Errorf("results %v (stop %v)", returns, resp.StopReason)
			}
			reqs := llmSrv.Requests()[before:]
			if len(reqs) != 3 {
				t.Fatalf("%d model requests, want 3", len(reqs))
			}
			last := reqs[1].Messages[len(reqs[1].Messages)-1]
			if last.Role != "tool" || last.Content != "Echo: hello from kelpie" {
				t.Errorf("the echo result did not reach the model: %+v", last)
			}
			checkLLMRequests(t, reqs, "gpt-4o-mini")
			if resp.StopReason["stop_reason"] != "end_turn" {
				t.Errorf("stop reason %v", resp.StopReason)
			}
		})
	}
}
