package message

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

func types(ms []letta.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Base().MessageType
	}
	return out
}

// Spec: a stored message renders as Letta's messages: reasoning, then
// text, then one message per tool call; send_message calls are what the
// agent said, client tools wait for approval, memgpt text is thinking.
func TestRender(t *testing.T) {
	now := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	asst := &schema.Message{ID: "message-a", Role: schema.RoleAssistant, Reasoning: "hmm", Text: "hello", CreatedAt: now,
		ToolCalls: []schema.ToolCall{
			{ID: "c1", Name: SendMessageTool, Arguments: `{"message":"hi there"}`},
			{ID: "c2", Name: "client_tool", Client: true},
			{ID: "c3", Name: "memory_insert", Arguments: `{}`},
		}}
	got := Render(asst)
	want := []string{letta.TypeReasoning, letta.TypeAssistant, letta.TypeAssistant, letta.TypeApprovalRequest, letta.TypeToolCall}
	if !slices.Equal(types(got), want) {
		t.Fatalf("rendered %v, want %v", types(got), want)
	}
	if said := got[2].(*letta.AssistantMessage).Content; said != "hi there" {
		t.Errorf("send_message shows %q", said)
	}
	otids := map[string]bool{}
	for _, m := range got {
		b := m.Base()
		if b.ID != asst.ID || b.Otid == nil || otids[*b.Otid] {
			t.Errorf("part %s: id %s otid %v", b.MessageType, b.ID, b.Otid)
		}
		otids[*b.Otid] = true
	}
	if *got[1].Base().Otid != SubOtid(asst.ID, SlotText) {
		t.Error("text part's otid is not the slot's: a streamed delta would not match it")
	}
	asst.ThoughtsInText = true
	if r, ok := Render(asst)[1].(*letta.ReasoningMessage); !ok || r.Reasoning != "hello" {
		t.Errorf("memgpt text renders as %T", Render(asst)[1])
	}
	user := &schema.Message{ID: "message-u", Role: schema.RoleUser, Text: "hi", Content: json.RawMessage(`[{"type":"text","text":"hi"}]`), Otid: "client-otid"}
	if u := Render(user)[0].(*letta.UserMessage); string(u.Content) != string(user.Content) || *u.Otid != "client-otid" {
		t.Errorf("user message %+v", u)
	}
	tool := &schema.Message{ID: "message-t", Role: schema.RoleTool, Text: "done", ToolCallID: "c3"}
	if r := Render(tool)[0].(*letta.ToolReturnMessage); r.Status != "success" || len(r.ToolReturns) != 1 {
		t.Errorf("tool return %+v", r)
	}
}

// Spec: descending, a listing reverses everything, each message's parts
// too; a page's cursors are exclusive and relative to its order.
func TestShowAndPage(t *testing.T) {
	var ms []*schema.Message
	for _, id := range []string{"m1", "m2", "m3", "m4"} {
		ms = append(ms, &schema.Message{ID: id, Role: schema.RoleAssistant, Reasoning: "r", Text: "t"})
	}
	ids := func(out []letta.Message) []string {
		var s []string
		for _, m := range out {
			s = append(s, m.Base().ID+":"+m.Base().MessageType[:1])
		}
		return s
	}
	if got := ids(Show(ms[:2], letta.Asc)); !slices.Equal(got, []string{"m1:r", "m1:a", "m2:r", "m2:a"}) {
		t.Errorf("asc %v", got)
	}
	if got := ids(Show([]*schema.Message{ms[1], ms[0]}, letta.Desc)); !slices.Equal(got, []string{"m2:a", "m2:r", "m1:a", "m1:r"}) {
		t.Errorf("desc %v", got)
	}
	// A message that shows nothing takes no room in a page.
	ms = append(ms[:2:2], append([]*schema.Message{{ID: "m-empty", Role: schema.RoleAssistant}}, ms[2:]...)...)
	page := func(p letta.Page) []string {
		var s []string
		for _, m := range Page(ms, p) {
			if m.Base().MessageType == letta.TypeAssistant {
				s = append(s, m.Base().ID)
			}
		}
		return s
	}
	cases := []struct {
		p    letta.Page
		want []string
	}{
		{letta.Page{Order: letta.Asc, Limit: 2}, []string{"m1", "m2"}},
		{letta.Page{Order: letta.Asc, Limit: 2, After: "m2"}, []string{"m3", "m4"}},
		{letta.Page{Order: letta.Asc, Limit: 1, After: "m2"}, []string{"m3"}},
		{letta.Page{Order: letta.Desc, Limit: 2, After: "m3"}, []string{"m2", "m1"}},
		{letta.Page{Order: letta.Asc, Limit: 10, After: "m1", Before: "m4"}, []string{"m2", "m3"}},
		{letta.Page{Order: letta.Asc, Limit: 10, After: "unknown"}, []string{"m1", "m2", "m3", "m4"}},
	}
	for _, c := range cases {
		if got := page(c.p); !slices.Equal(got, c.want) {
			t.Errorf("%+v: %v, want %v", c.p, got, c.want)
		}
	}
}
