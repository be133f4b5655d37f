package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kelpie/kelpie/llm"
)

// The simulated model provider. It answers every model handle, in process,
// without HTTP or the wall clock: each reply is drawn from the run's seeded
// randomness (a stream of its own) and shaped by the request — the tools
// offered, the memory blocks in the system prompt, how many steps the turn
// has taken. A reply is plain text (with reasoning sometimes), one to three
// tool calls (memory edits whose arguments sometimes cannot apply,
// conversation_search, archival memory) or, for a memgpt agent, the
// send_message call that ends its turn; several replies in a row make a
// multi-step tool chain. With a streaming caller it streams the text as
// deltas. The LLM faults of the profile make a request fail (a retryable
// server error, a rate limit, a timeout) or spoil its reply.
//
// Everything a reply writes into memory is a fresh marker token
// ("llm-N"): a block value holding one was written by a memory tool, one
// without one by a client. A send_message call names its own call id in its
// message ("[call:ID]"), so that a history listing, which shows the call as
// an assistant message, still tells which call it was.

// toolMarker starts every token a model reply writes.
const toolMarker = "llm-"

// Memory tools, as the agent names them.
const (
	toolSendMessage        = "send_message"
	toolCoreMemoryAppend   = "core_memory_append"
	toolCoreMemoryReplace  = "core_memory_replace"
	toolMemoryInsert       = "memory_insert"
	toolMemoryReplace      = "memory_replace"
	toolConversationSearch = "conversation_search"
	toolArchivalInsert     = "archival_memory_insert"
	toolArchivalSearch     = "archival_memory_search"
	toolSimNote            = simNoteTool // the workload's custom tool
	toolSimLookup          = simMCPTool  // the simulated MCP server's tool
)

var memoryTools = []string{toolMemoryReplace, toolMemoryInsert, toolCoreMemoryAppend, toolCoreMemoryReplace}

func isMemoryTool(name string) bool { return slices.Contains(memoryTools, name) }

// scriptedLLM is the run's model: its random stream outlives incarnations.
type scriptedLLM struct {
	sys *system

	mu  sync.Mutex
	rng *rand.Rand
	n   int // markers and call ids handed out
	// transcripts are what each summary it wrote summarised, by the
	// summary's text (compaction.go).
	transcripts map[string]string
}

func newScriptedLLM(s *system) *scriptedLLM {
	return &scriptedLLM{sys: s, rng: newRand(s.cfg.Seed, streamLLM), transcripts: map[string]string{}}
}

// llmProvider is one incarnation's provider and resolver: a request may
// crash the incarnation it runs in.
type llmProvider struct {
	m   *scriptedLLM
	inc *incarnation
}

// Resolve serves every handle.
func (p *llmProvider) Resolve(handle string) (llm.Provider, string, error) {
	_, model, ok := strings.Cut(handle, "/")
	if !ok || model == "" {
		return nil, "", fmt.Errorf("sim: model handle %q: want provider/model", handle)
	}
	return p, model, nil
}

// Name implements llm.Provider.
func (p *llmProvider) Name() string { return "sim" }

// Complete implements llm.Provider.
func (p *llmProvider) Complete(ctx context.Context, req llm.Request, onDelta func(llm.Delta)) (*llm.Response, error) {
	s := p.m.sys
	v := viewRequest(req)
	op := "complete"
	if onDelta != nil {
		op = "stream"
	}
	key := []byte(v.agentID)
	inj := s.inj
	// A crash in the middle of a turn: soon, while this step runs or
	// commits.
	if inj.fire(ProcessCrash, "", key) {
		inc, delay := p.inc, time.Duration(inj.intn(300))*time.Microsecond
		go func() {
			time.Sleep(delay)
			s.crash(inc, "process_crash")
		}()
	}
	partial := func() {
		if onDelta != nil && inj.intn(2) == 0 {
			onDelta(llm.Delta{Content: "partial " + p.m.token()})
		}
	}
	switch {
	case inj.fire(LLMRateLimit, op, key):
		s.notePath(ctx, pathLLM, "llm_rate_limit: 429 on a %s request", op)
		return nil, &llm.Error{Provider: "sim", Status: 429, Retryable: true, Code: "rate_limit_exceeded",
			Message: "rate limit exceeded", RetryAfter: time.Duration(1+inj.intn(30)) * time.Millisecond}
	case inj.fire(LLMError, op, key):
		status := []int{500, 502, 503, 529}[inj.intn(4)]
		s.notePath(ctx, pathLLM, "llm_error: %d on a %s request", status, op)
		partial()
		return nil, &llm.Error{Provider: "sim", Status: status, Retryable: true, Code: "server_error", Message: "the model server failed"}
	case inj.fire(LLMTimeout, op, key):
		s.notePath(ctx, pathLLM, "llm_timeout on a %s request", op)
		partial()
		d := time.Duration(1+inj.intn(5)) * time.Millisecond
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("llm sim: %w", ctx.Err())
		case <-s.clock.After(d):
		}
		return nil, &llm.Error{Provider: "sim", Retryable: true, Message: "request timed out", Err: context.DeadlineExceeded}
	}
	bad := inj.fire(LLMBadResponse, op, key)
	if bad {
		s.notePath(ctx, pathBadLLM, "llm_bad_response to a %s request", op)
	}
	resp, pieces := p.m.reply(v, bad, onDelta != nil, req.StreamToolCalls)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("llm sim: %w", err)
	}
	for _, d := range pieces {
		onDelta(d)
	}
	return resp, nil
}

// reqView is what a reply depends on.
type reqView struct {
	agentID string
	blocks  []memBlock // from the system prompt
	tools   []string
	memgpt  bool
	steps   int      // model responses since the user's message
	words   []string // of the user's message
	oldIDs  []string // ids of the tool calls of earlier turns
	// transcript is the last message's text: for a summary request, what
	// it is to summarise.
	transcript string
}

type memBlock struct{ label, value string }

var (
	agentIDLine = regexp.MustCompile(`(?m)^- AGENT_ID: (\S+)$`)
	blockRe     = regexp.MustCompile(`(?s)<([^<>\n/]+)>\n<description>\n.*?\n</description>\n<metadata>\n.*?</metadata>\n<value>\n(.*?)\n</value>\n</([^<>\n]+)>`)
)

func viewRequest(req llm.Request) *reqView {
	v := &reqView{}
	if n := len(req.Messages); n > 0 {
		v.transcript = req.Messages[n-1].Content
	}
	if len(req.Messages) > 0 && req.Messages[0].Role == llm.RoleSystem {
		sys := req.Messages[0].Content
		if m := agentIDLine.FindStringSubmatch(sys); m != nil {
			v.agentID = m[1]
		}
		if i := strings.Index(sys, "<memory_blocks>"); i >= 0 {
			if j := strings.Index(sys[i:], "</memory_blocks>"); j >= 0 {
				for _, m := range blockRe.FindAllStringSubmatch(sys[i:i+j], -1) {
					if m[1] == m[3] {
						v.blocks = append(v.blocks, memBlock{label: m[1], value: m[2]})
					}
				}
			}
		}
	}
	for _, t := range req.Tools {
		v.tools = append(v.tools, t.Name)
	}
	v.memgpt = slices.Contains(v.tools, toolSendMessage)
	user := -1
	for i := len(req.Messages) - 1; i >= 0; i-- {
		m := req.Messages[i]
		if m.Role == llm.RoleUser {
			v.words = strings.Fields(m.Content)
			user = i
			break
		}
		if m.Role == llm.RoleAssistant {
			v.steps++
		}
	}
	for i := 0; i < user; i++ {
		for _, tc := range req.Messages[i].ToolCalls {
			v.oldIDs = append(v.oldIDs, tc.ID)
		}
	}
	return v
}

func (v *reqView) offers(name string) bool { return slices.Contains(v.tools, name) }

// token returns a fresh marker.
func (m *scriptedLLM) token() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tokenLocked()
}

func (m *scriptedLLM) tokenLocked() string {
	m.n++
	return fmt.Sprintf("%s%d", toolMarker, m.n)
}

func (m *scriptedLLM) callID() string {
	m.n++
	return fmt.Sprintf("call_%d_%04x", m.n, m.rng.IntN(1<<16))
}

func args(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// reply draws the response to v, and the deltas that stream it.
func (m *scriptedLLM) reply(v *reqView, bad, stream, streamCalls bool) (*llm.Response, []llm.Delta) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rng
	resp := &llm.Response{}
	final := v.steps >= 4 || r.Float64() < 0.3+0.15*float64(v.steps)
	switch {
	case len(v.tools) == 0:
		// Only a compaction asks without tools: for a summary.
		resp.Content = "summary " + m.tokenLocked()
		m.transcripts[resp.Content] = v.transcript
	case final && v.memgpt && r.IntN(10) > 0:
		if r.IntN(2) == 0 {
			resp.Content = "thinking " + m.tokenLocked()
		}
		if r.IntN(8) == 0 {
			// A tool and the answer at once.
			resp.ToolCalls = append(resp.ToolCalls, m.toolCall(v))
		}
		id := m.callID()
		resp.ToolCalls = append(resp.ToolCalls, llm.ToolCall{ID: id, Name: toolSendMessage,
			Arguments: args(map[string]string{"message": fmt.Sprintf("reply %s [call:%s]", m.tokenLocked(), id)})})
	case final:
		resp.Content = "reply " + m.tokenLocked()
		if r.IntN(3) == 0 {
			resp.Reasoning = "reasoning " + m.tokenLocked()
		}
		if r.IntN(20) == 0 {
			resp.StopReason = llm.StopMaxTokens
		}
	default:
		n := 1
		if r.IntN(3) == 0 {
			n += 1 + r.IntN(2)
		}
		for range n {
			resp.ToolCalls = append(resp.ToolCalls, m.toolCall(v))
		}
		if r.IntN(3) == 0 {
			resp.Content = "working " + m.tokenLocked()
		}
	}
	if bad {
		m.spoil(v, resp)
	}
	if resp.StopReason == "" {
		resp.StopReason = llm.StopEndTurn
		if len(resp.ToolCalls) > 0 {
			resp.StopReason = llm.StopToolCalls
		}
	}
	resp.Usage = llm.Usage{PromptTokens: 100 + 10*v.steps, CompletionTokens: 5 + len(resp.Content)/4 + 10*len(resp.ToolCalls)}
	if !stream {
		return resp, nil
	}
	return resp, m.deltas(resp, streamCalls)
}

// deltas draws how resp streams: its reasoning and text in pieces, and its
// tool calls' arguments too when streamCalls. Called with m.mu held.
func (m *scriptedLLM) deltas(resp *llm.Response, streamCalls bool) []llm.Delta {
	r := m.rng
	var pieces []llm.Delta
	for _, p := range split(r, resp.Reasoning) {
		pieces = append(pieces, llm.Delta{Reasoning: p})
	}
	for _, p := range split(r, resp.Content) {
		pieces = append(pieces, llm.Delta{Content: p})
	}
	if !streamCalls {
		return pieces
	}
	for i, tc := range resp.ToolCalls {
		a := split(r, tc.Arguments)
		if len(a) == 0 {
			a = []string{""}
		}
		for j, p := range a {
			d := &llm.ToolCallDelta{Index: i, Arguments: p}
			if j == 0 {
				d.ID, d.Name = tc.ID, tc.Name
			}
			pieces = append(pieces, llm.Delta{ToolCall: d})
		}
	}
	return pieces
}

// split cuts s into one to three non-empty pieces.
func split(r *rand.Rand, s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for n := 1 + r.IntN(3); n > 1 && len(s) > 1; n-- {
		at := 1 + r.IntN(len(s)-1)
		out = append(out, s[:at])
		s = s[at:]
	}
	return append(out, s)
}

// toolCall draws one call of a tool the agent offers (not send_message).
// Called with m.mu held.
func (m *scriptedLLM) toolCall(v *reqView) llm.ToolCall {
	r := m.rng
	var mem, other []string
	for _, t := range v.tools {
		switch {
		case isMemoryTool(t):
			mem = append(mem, t)
		case t == toolConversationSearch, t == toolArchivalInsert, t == toolArchivalSearch:
			other = append(other, t)
		}
	}
	name := ""
	switch x := r.IntN(100); {
	case v.offers(toolSimNote) && x < 40:
		name = toolSimNote
	case v.offers(toolSimLookup) && x < 55:
		name = toolSimLookup
	case len(mem) > 0 && (x < 65 || len(other) == 0):
		name = mem[r.IntN(len(mem))]
	case len(other) > 0:
		name = other[r.IntN(len(other))]
		if name != toolConversationSearch && r.IntN(2) == 0 {
			name = toolConversationSearch
		}
		if !v.offers(name) {
			name = other[0]
		}
	default:
		return llm.ToolCall{ID: m.callID(), Name: "no_tools_offered", Arguments: "{}"}
	}
	return llm.ToolCall{ID: m.callID(), Name: name, Arguments: m.toolArgs(v, name)}
}

// toolArgs draws the arguments of a call of name: mostly ones that apply,
// sometimes ones that cannot (a missing block, text not in the block or in
// it twice, a line out of range, a missing argument). Called with m.mu held.
func (m *scriptedLLM) toolArgs(v *reqView, name string) string {
	r := m.rng
	label, value := "nolabel-"+m.tokenLocked(), ""
	if len(v.blocks) > 0 && r.IntN(7) > 0 {
		b := v.blocks[r.IntN(len(v.blocks))]
		label, value = b.label, b.value
	}
	fresh := m.tokenLocked()
	if r.IntN(6) == 0 {
		fresh += "\n" + m.tokenLocked()
	}
	// Made first whatever the tool: under wasm, each new map draws from
	// the seeded random source, so moving it would change every run.
	a := map[string]any{"label": label}
	switch name {
	case toolConversationSearch:
		return m.searchArgs(v)
	case toolArchivalInsert:
		return args(map[string]any{"content": "note " + fresh, "tags": []string{"sim"}})
	case toolArchivalSearch:
		return args(map[string]any{"query": "note"})
	case toolSimNote:
		return args(map[string]any{"note": fresh})
	case toolSimLookup:
		return args(map[string]any{"key": fresh})
	}
	switch name {
	case toolMemoryReplace:
		a["old_str"], a["new_str"] = m.oldText(value), fresh
	case toolCoreMemoryReplace:
		a["old_content"], a["new_content"] = m.oldText(value), fresh
	case toolCoreMemoryAppend:
		a["content"] = fresh
	case toolMemoryInsert:
		a["new_str"] = fresh
		m.insertLine(a, value)
	}
	if r.IntN(12) == 0 {
		// A required argument left out. (Never new_str of memory_replace
		// or new_content of core_memory_replace, which are optional: left
		// out, they delete text, and what a tool writes always has a
		// fresh marker.)
		delete(a, map[string]string{toolMemoryReplace: "old_str", toolCoreMemoryReplace: "old_content",
			toolCoreMemoryAppend: "content", toolMemoryInsert: "new_str"}[name])
	}
	return args(a)
}

// oldText draws the text a replace names: mostly a word found once in
// value, sometimes one not there or there more than once, or none. Called
// with m.mu held.
func (m *scriptedLLM) oldText(value string) string {
	r := m.rng
	switch x := r.IntN(20); {
	case x < 14:
		var once []string
		for _, w := range strings.FieldsFunc(value, func(c rune) bool { return c == '\n' || c == ' ' }) {
			if strings.Count(value, w) == 1 {
				once = append(once, w)
			}
		}
		if len(once) > 0 {
			return once[r.IntN(len(once))]
		}
		return value
	case x < 17:
		return "absent-" + m.tokenLocked()
	case x < 19:
		return "-" // usually in the block more than once
	}
	return ""
}

// insertLine draws where a memory_insert goes, into a: the end (no
// argument), a line of value, a line past its end, or -1. Called with m.mu
// held.
func (m *scriptedLLM) insertLine(a map[string]any, value string) {
	r := m.rng
	lines := 0
	if value != "" {
		lines = strings.Count(value, "\n") + 1
	}
	switch x := r.IntN(20); {
	case x < 8:
	case x < 16:
		a["insert_line"] = r.IntN(lines + 1)
	case x < 18:
		a["insert_line"] = lines + 1 + r.IntN(3)
	default:
		a["insert_line"] = -1
	}
}

// searchArgs draws the arguments of a conversation_search. Called with m.mu
// held.
func (m *scriptedLLM) searchArgs(v *reqView) string {
	r := m.rng
	q := "llm"
	if len(v.words) > 0 && r.IntN(3) > 0 {
		q = v.words[r.IntN(len(v.words))]
	}
	search := map[string]any{"query": q}
	switch r.IntN(8) {
	case 0:
		search["roles"] = []string{"user"}
	case 1:
		search["limit"] = 0 // out of range
	}
	return args(search)
}

// spoil makes resp a response a model should not give. Called with m.mu
// held.
func (m *scriptedLLM) spoil(v *reqView, resp *llm.Response) {
	r := m.rng
	memCall := func(id string) llm.ToolCall {
		name := toolMemoryInsert
		if len(v.tools) > 0 {
			for _, t := range v.tools {
				if isMemoryTool(t) {
					name = t
				}
			}
		}
		return llm.ToolCall{ID: id, Name: name, Arguments: m.toolArgs(v, name)}
	}
	switch r.IntN(8) {
	case 0: // a tool that does not exist
		resp.ToolCalls = append(resp.ToolCalls, llm.ToolCall{ID: m.callID(), Name: "no_such_tool", Arguments: `{"x":1}`})
	case 1: // a built-in tool this agent is not given
		for _, t := range []string{toolCoreMemoryAppend, toolMemoryInsert, toolSendMessage, toolArchivalSearch} {
			if !v.offers(t) {
				id := m.callID()
				a := m.toolArgs(v, t)
				if t == toolSendMessage {
					a = args(map[string]string{"message": fmt.Sprintf("stray %s [call:%s]", m.tokenLocked(), id)})
				}
				resp.ToolCalls = append(resp.ToolCalls, llm.ToolCall{ID: id, Name: t, Arguments: a})
				break
			}
		}
	case 2: // arguments that are not JSON
		if len(resp.ToolCalls) == 0 {
			resp.ToolCalls = append(resp.ToolCalls, memCall(m.callID()))
		}
		i := r.IntN(len(resp.ToolCalls))
		a := resp.ToolCalls[i].Arguments
		resp.ToolCalls[i].Arguments = a[:r.IntN(len(a))]
	case 3: // arguments of the wrong types
		tc := memCall(m.callID())
		tc.Arguments = `{"label":7,"new_str":["x"],"content":false,"old_str":{},"insert_line":"2"}`
		resp.ToolCalls = append(resp.ToolCalls, tc)
	case 4: // a call without an id: the agent names it
		resp.ToolCalls = append(resp.ToolCalls, memCall(""))
	case 5: // nothing at all
		resp.Content, resp.Reasoning, resp.ToolCalls = "", "", nil
	case 6: // two calls with one id
		tc := memCall(m.callID())
		dup := memCall(tc.ID)
		resp.ToolCalls = append(resp.ToolCalls, tc, dup)
	case 7: // the id of a call of an earlier turn
		id := m.callID()
		if len(v.oldIDs) > 0 {
			id = v.oldIDs[r.IntN(len(v.oldIDs))]
		}
		resp.ToolCalls = append(resp.ToolCalls, memCall(id))
	}
}
