package ui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
)

// agentsPage is the agents listing.
type agentsPage struct {
	Name, Tag string
	Agents    []*letta.AgentState
	Count     int
	// Next is the address of the next page; "" on the last.
	Next string
}

// agents lists agents, newest first, by exact name or tag. An id typed
// into the search box opens that agent.
func (h *handler) agents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if id := strings.TrimSpace(q.Get("id")); id != "" {
		http.Redirect(w, r, "/ui/agents/"+url.PathEscape(id), http.StatusSeeOther)
		return
	}
	f := agent.AgentFilter{Name: strings.TrimSpace(q.Get("name"))}
	tag := strings.TrimSpace(q.Get("tag"))
	if tag != "" {
		f.Tags = []string{tag}
	}
	// One more than a page tells whether there is a next one.
	list, err := h.svc.Agents.List(r.Context(), f, letta.Page{Limit: PageSize + 1, After: q.Get("after"), Order: letta.Desc})
	if err != nil {
		h.failService(w, r, err)
		return
	}
	count, err := h.svc.Agents.Count(r.Context(), f)
	if err != nil {
		h.failService(w, r, err)
		return
	}
	p := agentsPage{Name: f.Name, Tag: tag, Agents: list, Count: count}
	if len(list) > PageSize {
		p.Agents = list[:PageSize]
		next := url.Values{"after": {list[PageSize-1].ID}}
		if f.Name != "" {
			next.Set("name", f.Name)
		}
		if tag != "" {
			next.Set("tag", tag)
		}
		p.Next = "/ui/?" + next.Encode()
	}
	h.render(w, r, http.StatusOK, "agents.html", page{Title: "Agents", Data: p})
}

// agentPage is one agent with its blocks, conversations and recent runs.
type agentPage struct {
	Agent         *letta.AgentState
	Conversations []*letta.Conversation
	Runs          []*letta.Run
}

func (h *handler) agent(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("agent_id")
	st, err := h.svc.Agents.Get(r.Context(), id, true)
	if err != nil {
		h.failService(w, r, err)
		return
	}
	convs, err := h.svc.Conversations.List(r.Context(), id, letta.Page{Limit: PageSize, Order: letta.Desc})
	if err != nil {
		h.failService(w, r, err)
		return
	}
	runs, err := h.svc.Runs.List(r.Context(), agent.RunFilter{AgentID: id}, letta.Page{Limit: PageSize, Order: letta.Desc})
	if err != nil {
		h.failService(w, r, err)
		return
	}
	notice := ""
	if saved := r.URL.Query().Get("saved"); saved != "" {
		notice = fmt.Sprintf("Saved block %q.", saved)
	}
	h.render(w, r, http.StatusOK, "agent.html", page{Title: st.Name, Notice: notice, Data: agentPage{Agent: st, Conversations: convs, Runs: runs}})
}

// editBlock replaces the value of one of an agent's blocks, as PATCH
// /v1/agents/{id}/core-memory/blocks/{label} does.
func (h *handler) editBlock(w http.ResponseWriter, r *http.Request) {
	id, label := r.PathValue("agent_id"), r.PathValue("label")
	if _, ok := r.PostForm["value"]; !ok {
		h.fail(w, r, http.StatusBadRequest, fmt.Errorf("the form has no value for block %q", label))
		return
	}
	// Browsers send textarea line ends as CRLF; the API's clients send LF.
	value := strings.ReplaceAll(r.PostForm.Get("value"), "\r\n", "\n")
	if _, err := h.svc.Agents.UpdateBlock(r.Context(), id, label, letta.BlockUpdate{Value: &value}); err != nil {
		h.failService(w, r, err)
		return
	}
	http.Redirect(w, r, "/ui/agents/"+url.PathEscape(id)+"?saved="+url.QueryEscape(label), http.StatusSeeOther)
}

// messagesPage is a page of one conversation's messages, oldest first.
type messagesPage struct {
	Agent          *letta.AgentState
	ConversationID string
	Messages       []letta.Message
	// Older is the address of the page before this one; "" at the start.
	Older string
}

func (h *handler) messages(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("agent_id")
	q := r.URL.Query()
	st, err := h.svc.Agents.Get(r.Context(), id, false)
	if err != nil {
		h.failService(w, r, err)
		return
	}
	f := agent.MessageFilter{ConversationID: q.Get("conversation_id")}
	if f.ConversationID == "" {
		f.DefaultOnly = true
	}
	// Newest first, then shown oldest first: the page ends at the newest
	// message (or at the cursor) and goes back PageSize stored messages.
	list, err := h.svc.Messages.List(r.Context(), id, f, letta.Page{Limit: PageSize + 1, After: q.Get("after"), Order: letta.Desc})
	if err != nil {
		h.failService(w, r, err)
		return
	}
	p := messagesPage{Agent: st, ConversationID: f.ConversationID}
	list, more := trimMessages(list, PageSize)
	if more {
		older := url.Values{"after": {list[len(list)-1].Base().ID}}
		if f.ConversationID != "" {
			older.Set("conversation_id", f.ConversationID)
		}
		p.Older = "/ui/agents/" + url.PathEscape(id) + "/messages?" + older.Encode()
	}
	slices.Reverse(list)
	p.Messages = list
	h.render(w, r, http.StatusOK, "messages.html", page{Title: "Messages of " + st.Name, Data: p})
}

// trimMessages keeps the messages of the first n stored messages of list
// (a stored message may show as several sharing its id) and reports
// whether list held more.
func trimMessages(list []letta.Message, n int) ([]letta.Message, bool) {
	seen := 0
	for i, m := range list {
		if i == 0 || m.Base().ID != list[i-1].Base().ID {
			seen++
		}
		if seen > n {
			return list[:i], true
		}
	}
	return list, false
}

// runPage is one run: its record, usage and messages grouped by step.
type runPage struct {
	Run   *letta.Run
	Usage *letta.UsageStatistics
	Steps []step
}

// step is the messages of one step of a run ("" for the run's input).
type step struct {
	ID       string
	Messages []letta.Message
}

func (h *handler) run(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("run_id")
	run, err := h.svc.Runs.Get(r.Context(), id)
	if err != nil {
		h.failService(w, r, err)
		return
	}
	usage, err := h.svc.Runs.Usage(r.Context(), id)
	if err != nil {
		h.failService(w, r, err)
		return
	}
	msgs, err := h.svc.Runs.Messages(r.Context(), id, letta.Page{Limit: PageSize, Order: letta.Asc})
	if err != nil {
		h.failService(w, r, err)
		return
	}
	var steps []step
	for _, m := range msgs {
		sid := deref(m.Base().StepID)
		if len(steps) == 0 || steps[len(steps)-1].ID != sid {
			steps = append(steps, step{ID: sid})
		}
		steps[len(steps)-1].Messages = append(steps[len(steps)-1].Messages, m)
	}
	h.render(w, r, http.StatusOK, "run.html", page{Title: "Run " + run.ID, Data: runPage{Run: run, Usage: usage, Steps: steps}})
}

// status shows the server's live figures.
func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	agents, err := h.svc.Agents.Count(r.Context(), agent.AgentFilter{})
	if err != nil {
		h.failService(w, r, err)
		return
	}
	blocks, err := h.svc.Blocks.Count(r.Context())
	if err != nil {
		h.failService(w, r, err)
		return
	}
	turns := h.svc.Stats()
	figs := []Figure{
		{"Agents", strconv.Itoa(agents)},
		{"Blocks", strconv.Itoa(blocks)},
		{"Turns running", strconv.Itoa(turns.Running)},
		{"Agents in a turn", strconv.Itoa(turns.LocksHeld)},
		{"Requests waiting for an agent's turn", strconv.Itoa(turns.Waiting)},
	}
	if h.opts.Figures != nil {
		figs = append(figs, h.opts.Figures(r.Context())...)
	}
	h.render(w, r, http.StatusOK, "status.html", page{Title: "Status", Refresh: int(statusRefresh / time.Second), Data: figs})
}

// Template helpers.

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func when(t letta.Timestamp) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// ago is a run's completion as "3m0s ago" at now; "never" for nil.
func ago(now time.Time, t *letta.Timestamp) string {
	if t == nil {
		return "never"
	}
	return now.Sub(t.Time).Truncate(time.Second).String() + " ago"
}

func nsDuration(ns *int64) string {
	if ns == nil {
		return "—"
	}
	return time.Duration(*ns).Round(time.Microsecond).String()
}

// messageView is a message as a page shows it.
type messageView struct {
	ID, Kind, Date, RunID, StepID string
	// Lines are its text: what was said, or a tool call with its
	// arguments, or a tool's result.
	Lines []string
	// Failed marks a tool result that is an error.
	Failed bool
}

// view renders a message of any type.
func view(m letta.Message) messageView {
	b := m.Base()
	v := messageView{ID: b.ID, Kind: b.MessageType, Date: b.Date.UTC().Format("2006-01-02 15:04:05"), RunID: deref(b.RunID), StepID: deref(b.StepID)}
	calls := func(cs []letta.ToolCall) {
		for _, c := range cs {
			v.Lines = append(v.Lines, fmt.Sprintf("%s(%s)  [%s]", c.Name, c.Arguments, c.ToolCallID))
		}
	}
	switch m := m.(type) {
	case *letta.SystemMessage:
		v.Lines = []string{m.Content}
	case *letta.UserMessage:
		v.Lines = []string{userContent(m.Content)}
	case *letta.AssistantMessage:
		v.Lines = []string{m.Content}
	case *letta.ReasoningMessage:
		v.Lines = []string{m.Reasoning}
	case *letta.ToolCallMessage:
		calls(m.ToolCalls)
	case *letta.ApprovalRequestMessage:
		calls(m.ToolCalls)
	case *letta.ToolReturnMessage:
		v.Lines = []string{fmt.Sprintf("%s  [%s, %s]", m.ToolReturn, m.Status, m.ToolCallID)}
		v.Failed = m.Status == "error"
	default:
		data, err := json.Marshal(m)
		if err != nil {
			data = []byte(err.Error())
		}
		v.Lines = []string{string(data)}
	}
	return v
}

// userContent is the text of a user message's content: a string, or the
// text of its parts (other parts named by their type).
func userContent(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(raw, &parts) != nil {
		return string(raw)
	}
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteString("\n")
		}
		if p.Type == "text" {
			b.WriteString(p.Text)
		} else {
			fmt.Fprintf(&b, "[%s]", p.Type)
		}
	}
	return b.String()
}
