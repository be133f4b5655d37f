package schema

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func fullMessage() *Message {
	name, sender := "ada", "agent-2"
	return &Message{
		ID: "message-1", AgentID: "agent-1", Seq: 7, ConversationID: "conv-1", Role: RoleAssistant,
		Content: []byte(`[{"type":"text","text":"hi"}]`), Text: "hello", ThoughtsInText: true, Reasoning: "why",
		ToolCalls:  []ToolCall{{ID: "call-1", Name: "send", Arguments: `{"a":1}`, Client: true}},
		ToolCallID: "call-0", ToolName: "t", ToolStatus: "success", Stdout: "out", Stderr: "err", Otid: "o",
		Name: &name, SenderID: &sender, RunID: "run-1", StepID: "step-1",
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Input: true,
	}
}

// Spec: a message decoded again is equal to its first decoding, and each
// caller's copy is its own: changing every mutable part of one changes no
// later decoding. Rewritten bytes decode to the rewritten message.
func TestDecodeMessageRepeated(t *testing.T) {
	data, err := Encode(fullMessage())
	if err != nil {
		t.Fatal(err)
	}
	first, err := DecodeMessage(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(first, fullMessage()) {
		t.Fatalf("decoded %+v, want %+v", first, fullMessage())
	}
	first.Text, first.Content[0], first.ToolCalls[0].Name, *first.Name, *first.SenderID = "x", 'x', "x", "x", "x"
	first.ToolCalls = append(first.ToolCalls, ToolCall{ID: "call-2"})
	for range 2 {
		again, err := DecodeMessage(data)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(again, fullMessage()) {
			t.Fatalf("decoded again after a caller's change: %+v, want %+v", again, fullMessage())
		}
	}

	edited := fullMessage()
	edited.Text = "edited"
	data2, err := Encode(edited)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeMessage(data2)
	if err != nil || !reflect.DeepEqual(got, edited) {
		t.Fatalf("rewritten message decoded as %+v (%v), want %+v", got, err, edited)
	}
	if _, err := DecodeMessage(data[:len(data)-1]); err == nil {
		t.Fatal("a truncated message decoded")
	}
}

// Spec: clone copies every field of Message that could be shared (a
// pointer, slice, map, ...): adding one to Message fails this test until
// clone copies it too. ToolCall holds only values, so copying the slice
// copies the calls.
func TestMessageCloneSharesNothing(t *testing.T) {
	copied := []string{"Content", "ToolCalls", "Name", "SenderID"}
	var refs []string
	mt := reflect.TypeFor[Message]()
	for i := range mt.NumField() {
		if isReference(mt.Field(i).Type) {
			refs = append(refs, mt.Field(i).Name)
		}
	}
	if !slices.Equal(refs, copied) {
		t.Fatalf("Message's reference fields are %v; clone copies %v", refs, copied)
	}
	tt := reflect.TypeFor[ToolCall]()
	for i := range tt.NumField() {
		if isReference(tt.Field(i).Type) {
			t.Fatalf("ToolCall.%s is a reference: clone must copy it", tt.Field(i).Name)
		}
	}
	m := fullMessage()
	c := m.clone()
	if &c.Content[0] == &m.Content[0] || &c.ToolCalls[0] == &m.ToolCalls[0] || c.Name == m.Name || c.SenderID == m.SenderID {
		t.Fatal("clone shares memory with its original")
	}
	if !reflect.DeepEqual(c, m) {
		t.Fatalf("clone %+v differs from %+v", c, m)
	}
}

func isReference(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return true
	}
	return false
}

// Spec: the cache keeps at most MessageCacheBytes of stored messages, and
// none larger than maxCachedRecordBytes; the messages read most recently
// stay.
func TestMessageCacheBounded(t *testing.T) {
	c := newDecodeCache[Message](MessageCacheBytes)
	m := fullMessage()
	kept := func() int {
		n := 0
		for k := range c.cur {
			n += len(k)
		}
		for k := range c.prev {
			n += len(k)
		}
		return n
	}
	recent := []byte("recent")
	c.put(recent, m)
	entry := strings.Repeat("x", 1000)
	for i := range 3 * MessageCacheBytes / len(entry) {
		c.put(fmt.Appendf(nil, "%08d%s", i, entry), m)
		if i%1000 == 0 && c.get(recent) == nil {
			t.Fatalf("a message read every 1000 puts was dropped after %d", i)
		}
	}
	if n := kept(); n > MessageCacheBytes {
		t.Fatalf("the cache keeps %d bytes, over %d", n, MessageCacheBytes)
	}
	big := make([]byte, maxCachedRecordBytes+1)
	c.put(big, m)
	if c.get(big) != nil {
		t.Fatal("a message over maxCachedRecordBytes was kept")
	}
}
